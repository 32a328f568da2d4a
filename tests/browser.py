"""Open a Snakemake report in headless Chromium (Selenium + chromedriver) and return what the page shows.

Test tooling only (``tests/test_report_browser.py``, ``tests/test_workflow_e2e.py``; the MLflow UI check
``tests/test_mlflow_ui.py`` uses :func:`chromium` and :func:`wait_for_script`). The Snakemake
report is a React application whose data (results, categories, captions, embedded files) lives in
``<script>`` blocks; only a browser running the JavaScript shows whether the table and the figures
really appear. :func:`check_report_html` drives the system Chromium through Selenium WebDriver and the
system ``chromedriver`` (Debian packages ``chromium`` and ``chromium-driver``; ``$SE_CHROMIUM`` /
``$SE_CHROMEDRIVER`` override the binaries). Both paths are given to Selenium explicitly, so Selenium
Manager never runs and nothing is downloaded; the browser gets a fresh, empty profile and flags that
keep it off the network. It loads the report (``.html``, or the ``report.html`` of an unpacked
``.zip``) and drives the app as a user would:

* it waits for the app to render its navigation, reads the workflow description;
* it opens every category (``app.showCategory``) and records which result names the menu lists;
* it shows every image result (``content: "img"``) and records the decoded image size;
* it shows every HTML result in the report's iframe and reads the tables rendered in that frame
  (caption, header cells, row count);
* it collects uncaught JavaScript exceptions and console errors (the browser log), and optionally
  takes screenshots.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "BrowserUnavailable",
    "check_layout",
    "check_report_html",
    "chromium",
    "find_browser",
    "summarize",
    "wait_for_script",
]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1400,1000",
)


class BrowserUnavailable(RuntimeError):
    """Chromium, chromedriver or the ``selenium`` package is missing; the message says which."""


def _which(env: str, names: Sequence[str]) -> str | None:
    for name in (os.environ.get(env), *names):
        if name and (path := shutil.which(name)):
            return path
    return None


def find_browser() -> tuple[str, str]:
    """Paths ``(chromium, chromedriver)``: ``$SE_CHROMIUM`` / ``$SE_CHROMEDRIVER``, then the usual names.

    Raises :class:`BrowserUnavailable` naming what is missing and how to install it.
    """
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (dev dependency: uv sync)")
    chromium = _which("SE_CHROMIUM", ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"))
    driver = _which("SE_CHROMEDRIVER", ("chromedriver",))
    if chromium is None:
        missing.append("Chromium (Debian: apt-get install chromium, or set SE_CHROMIUM)")
    if driver is None:
        missing.append("chromedriver (Debian: apt-get install chromium-driver, or set SE_CHROMEDRIVER)")
    if missing:
        raise BrowserUnavailable("headless-browser check unavailable, missing: " + "; ".join(missing))
    return chromium, driver


@contextmanager
def chromium(workdir: str | os.PathLike, timeout: float = 90.0) -> Iterator[Any]:
    """A headless Chromium WebDriver (:func:`find_browser`; fresh profile under ``workdir``, browser log
    kept for :func:`_page_errors`), page-load and script timeouts ``timeout``; quit on exit."""
    chromium_path, chromedriver = find_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    workdir = Path(workdir)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager is skipped (it would otherwise look for downloads)
    service = Service(executable_path=chromedriver, log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(timeout)
        driver.set_script_timeout(timeout)
        yield driver
    finally:
        driver.quit()


def wait_for_script(driver, script: str, *args: Any, timeout: float = 60.0, interval: float = 0.25) -> Any:
    """Run ``script`` (a function body returning a value) until it returns something truthy; that value,
    or the last (falsy) one after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# JavaScript run in the report page (the W3C "execute script" command awaits the returned promise):
# waits for the app, then walks categories and results.
_WALK_JS = r"""
return (async () => {
  const sleep = (ms) => new Promise(r => setTimeout(r, ms));
  const text = (h) => { const d = document.createElement('div'); d.innerHTML = h || ''; return d.textContent.trim(); };
  for (let i = 0; i < 200 && !(typeof app !== 'undefined' && document.querySelector('#app nav')); i++) await sleep(50);
  const out = {app_rendered: !!document.querySelector('#app nav'), title: document.title,
               workflow_description: typeof workflow_desc !== 'undefined' ? text(workflow_desc) : null,
               categories: {}, results: []};
  if (!out.app_rendered) return out;
  const catNames = Object.keys(categories);
  // The results list keeps its first data when React reuses it, so go back to the menu in between
  // (as a user clicking "Results" does) before every category/subcategory view.
  const show = async (view) => {
    app.setView({navbarMode: 'menu'}); await sleep(60); app.setView(view); await sleep(120);
  };
  const listed = (shown, r) => shown.includes(r.name) ||
      (r.labels && Object.keys(r.labels).length > 0 && Object.values(r.labels).every(v => shown.includes(String(v))));
  for (const cat of catNames) {
    const subNames = Object.keys(categories[cat]);
    const single = subNames.length == 1;
    await show({navbarMode: single ? 'subcategory' : 'category', category: cat,
                subcategory: single ? subNames[0] : undefined});
    const menuText = document.querySelector('#app nav').innerText;
    const subcats = {};
    for (const sub of subNames) {
      if (!single) await show({navbarMode: 'subcategory', category: cat, subcategory: sub});
      const shown = document.querySelector('#app nav').innerText;
      subcats[sub] = categories[cat][sub].map(
          p => ({path: p, name: results[p].name, listed: listed(shown, results[p])}));
    }
    out.categories[cat] = {menu_text: menuText, subcategories: subcats};
  }
  for (const [path, r] of Object.entries(results)) {
    const item = {path, name: r.name, mime: r.mime_type, labels: r.labels, caption: text(r.caption),
                  size: r.size, rule: r.job_properties ? r.job_properties.rule : null};
    if (r.mime_type && r.mime_type.startsWith('image/')) {
      app.setView({content: 'img', contentPath: r.data_uri, resultPath: path});
      let img = null;
      for (let i = 0; i < 100; i++) {
        await sleep(30);
        img = [...document.querySelectorAll('#app img')].find(x => x.getAttribute('src') === r.data_uri);
        if (img && img.complete) break;
      }
      item.displayed = !!img;
      item.image_size = img && img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;
    } else if (r.mime_type === 'text/html') {
      item.displayed = null;  // the frame's tables are read by the caller (switching into the iframe)
    }
    out.results.push(item);
  }
  return out;
})();
"""

# Shows the HTML result arguments[0] in the report's iframe; returns its URI once the iframe exists.
_SHOW_HTML_JS = r"""
return (async (path) => {
  const r = results[path];
  app.setView({content: 'html', contentPath: r.data_uri, resultPath: path});
  for (let i = 0; i < 100; i++) {
    await new Promise(res => setTimeout(res, 30));
    if (document.querySelector('#app iframe')) break;
  }
  return document.querySelector('#app iframe') ? r.data_uri : null;
})(arguments[0]);
"""

# Inside the iframe: has the document of URI arguments[0] (a data: URI, or a path relative to the report)
# finished loading?
_FRAME_READY_JS = r"""
const uri = arguments[0], href = location.href;
const same = href === uri || (!uri.startsWith('data:') && href.endsWith('/' + uri.replace(/^\.\//, '')));
return same && document.readyState === 'complete';
"""

_TABLES_JS = r"""
return [...document.querySelectorAll('table')].map(t => ({
  id: t.id || null,
  caption: t.caption ? t.caption.textContent.trim() : null,
  headers: [...t.querySelectorAll('thead th')].map(th => th.textContent.trim()),
  rows: [...t.querySelectorAll('tbody tr')].map(tr => [...tr.children].map(c => c.textContent.trim())),
}));
"""


def _report_file(path: Path, workdir: Path) -> Path:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                target = (workdir / member).resolve()
                if not target.is_relative_to(workdir.resolve()):
                    raise ValueError(f"{path}: unsafe member path {member!r}")
            zf.extractall(workdir)
        found = sorted(workdir.glob("*/report.html")) or sorted(workdir.glob("report.html"))
        if not found:
            raise ValueError(f"{path}: no report.html inside the zip")
        return found[0]
    if path.suffix != ".html":
        raise ValueError(f"{path}: expected a .html or .zip Snakemake report")
    return path


def _frame_tables(driver, uri: str, timeout: float) -> list[dict[str, Any]]:
    """Tables rendered in the report's iframe once it shows ``uri``; [] if it never does in ``timeout``."""
    from selenium.common.exceptions import NoSuchElementException, NoSuchFrameException, WebDriverException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, "#app iframe"))
            try:
                if driver.execute_script(_FRAME_READY_JS, uri):
                    return driver.execute_script(_TABLES_JS) or []
            finally:
                driver.switch_to.default_content()
        except (NoSuchElementException, NoSuchFrameException):
            pass  # React is still (re)building the view
        except WebDriverException as exc:  # e.g. a stale iframe replaced while we switched into it
            if "stale" not in str(exc).lower():
                raise
        time.sleep(0.1)
    return []


def _page_errors(driver) -> list[str]:
    """Uncaught exceptions and console errors (Chromium's browser log, level SEVERE) since the last call."""
    return [entry.get("message", "") for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def check_report_html(
    path: str | os.PathLike,
    *,
    screenshot_dir: str | os.PathLike | None = None,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Load a Snakemake report (``.html`` or ``.zip``) in headless Chromium and describe what it shows.

    Returns a dict:

    * ``app_rendered`` (the React app drew its navigation), ``title``, ``workflow_description``;
    * ``categories``: ``{category: {"menu_text", "subcategories": {sub: [{path, name, listed}]}}}``;
    * ``results``: one dict per result (``path, name, mime, labels, caption, size, rule``), images
      with ``displayed`` and ``image_size`` (natural width/height once decoded, None if it failed),
      HTML results with ``displayed`` and ``tables`` (``id, caption, headers, rows`` as rendered);
    * ``images`` / ``tables``: shortcuts (names of decoded images; every table found);
    * ``errors``: uncaught exceptions and console errors of the page; ``screenshots``: PNG paths.

    Raises FileNotFoundError / ValueError / ``zipfile.BadZipFile`` for a missing or unusable report
    (checked before any browser is looked for), :class:`BrowserUnavailable` when Chromium, chromedriver
    or selenium is missing, and Selenium's ``WebDriverException`` when the browser fails.
    """
    report = Path(path)
    if not report.is_file():
        raise FileNotFoundError(f"report {report} not found")
    if report.suffix not in (".html", ".zip"):
        raise ValueError(f"{report}: expected a .html or .zip Snakemake report")
    with tempfile.TemporaryDirectory(prefix="se-report-check-") as tmp:
        tmpdir = Path(tmp)
        page = _report_file(report.resolve(), tmpdir / "unzipped")
        shots: list[str] = []
        with chromium(tmpdir, timeout) as driver:
            driver.get(page.as_uri())
            out = driver.execute_script(_WALK_JS)

            def shoot(name: str) -> None:
                if screenshot_dir is None:
                    return
                dest = Path(screenshot_dir) / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(driver.get_screenshot_as_png())
                shots.append(str(dest))

            for i, item in enumerate(out.get("results", [])):
                if item["mime"] == "text/html":
                    shown = driver.execute_script(_SHOW_HTML_JS, item["path"])
                    item["displayed"] = bool(shown)
                    item["tables"] = _frame_tables(driver, shown, timeout=min(20.0, timeout)) if shown else []
                    shoot(f"result_{i:02d}_html.png")
                elif item["mime"].startswith("image/") and item.get("displayed"):
                    driver.execute_script(
                        "app.setView({content: 'img', contentPath: results[arguments[0]].data_uri})", item["path"]
                    )
                    time.sleep(0.2)
                    shoot(f"result_{i:02d}_img.png")
            if out.get("app_rendered"):
                driver.execute_script("app.setView({content: 'rulegraph', navbarMode: 'menu'})")
                time.sleep(0.3)
                shoot("overview.png")
            errors = _page_errors(driver)
    out["errors"] = errors
    out["screenshots"] = shots
    out["images"] = [r["name"] for r in out.get("results", []) if r.get("image_size") and min(r["image_size"]) > 0]
    out["tables"] = [t for r in out.get("results", []) for t in r.get("tables", [])]
    return out


def summarize(found: dict[str, Any], keys: Sequence[str] = ("app_rendered", "images", "tables", "errors")) -> str:
    """Short human-readable text of :func:`check_report_html`'s result (for logs and test failures)."""
    return json.dumps({k: found.get(k) for k in keys}, indent=1, default=str)[:4000]


# The landing view (workflow description + rule graph) and where its title sits in the viewport.
_LANDING_JS = r"""
return (async () => {
  const sleep = (ms) => new Promise(r => setTimeout(r, ms));
  for (let i = 0; i < 200 && !(typeof app !== 'undefined' && document.querySelector('#app nav')); i++) await sleep(50);
  app.setView({content: 'rulegraph', navbarMode: 'menu'});
  let title = null;
  for (let i = 0; i < 100 && !title; i++) {
    await sleep(30);
    title = document.querySelector('#app .prose h1, #app .prose .title');
  }
  if (!title) return {found: false};
  const r = title.getBoundingClientRect();
  const hit = document.elementFromPoint(Math.min(Math.max(r.left + 5, 0), innerWidth - 1),
                                        Math.min(Math.max(r.top + r.height / 2, 0), innerHeight - 1));
  return {found: true, text: title.textContent.trim(), top: r.top, bottom: r.bottom, left: r.left, right: r.right,
          viewport: [innerWidth, innerHeight], on_top: !!hit && (hit === title || title.contains(hit))};
})();
"""

# Inside the iframe: widths of its tables against the frame's own width.
_TABLE_FIT_JS = r"""
const doc = document.documentElement;
return {frame_width: doc.clientWidth, scroll_width: doc.scrollWidth,
        tables: [...document.querySelectorAll('table')].map(t => ({id: t.id || null,
                 width: t.getBoundingClientRect().width, right: t.getBoundingClientRect().right}))};
"""


def check_layout(
    path: str | os.PathLike,
    width: int = 1280,
    height: int = 800,
    *,
    screenshot_dir: str | os.PathLike | None = None,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Load a Snakemake report in a ``width`` x ``height`` viewport and measure what a reader sees.

    Returns ``{"landing": {...}, "tables": {result name: {...}}}``: ``landing`` holds the workflow
    description's title (``found``, ``text``, its box ``top/bottom/left/right`` in viewport pixels,
    ``viewport`` and ``on_top``: the title is the element drawn at its own position); each HTML result's
    entry holds the iframe's box (``frame_left/frame_right``) and, inside it, ``frame_width`` and
    ``scroll_width`` (wider means a horizontal scroll bar) and every table's ``width``/``right``.
    """
    report = Path(path)
    if not report.is_file():
        raise FileNotFoundError(f"report {report} not found")
    with tempfile.TemporaryDirectory(prefix="se-report-layout-") as tmp:
        tmpdir = Path(tmp)
        page = _report_file(report.resolve(), tmpdir / "unzipped")
        with chromium(tmpdir, timeout) as driver:
            metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            driver.get(page.as_uri())
            landing = driver.execute_script(_LANDING_JS)
            if screenshot_dir is not None:
                Path(screenshot_dir).mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(Path(screenshot_dir) / f"landing_{width}x{height}.png"))
            names = driver.execute_script(
                "return Object.entries(results).filter(([p, r]) => r.mime_type === 'text/html')"
                ".map(([p, r]) => [p, r.name]);"
            )
            tables: dict[str, Any] = {}
            for result_path, name in names:
                uri = driver.execute_script(_SHOW_HTML_JS, result_path)
                if not uri:
                    tables[name] = {"displayed": False}
                    continue
                box = driver.execute_script(
                    "const r = document.querySelector('#app iframe').getBoundingClientRect();"
                    "return {frame_left: r.left, frame_right: r.right};"
                )
                _frame_tables(driver, uri, timeout=min(20.0, timeout))  # waits for the frame's document
                from selenium.webdriver.common.by import By

                driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, "#app iframe"))
                try:
                    fit = driver.execute_script(_TABLE_FIT_JS)
                finally:
                    driver.switch_to.default_content()
                tables[name] = {"displayed": True, **box, **fit}
                if screenshot_dir is not None:
                    driver.save_screenshot(str(Path(screenshot_dir) / f"{Path(name).stem}_{width}x{height}.png"))
    return {"landing": landing, "tables": tables}
