"""Open a Snakemake report in headless Chromium and return what the rendered page shows.

The Snakemake report is a React application whose data (results, categories, captions, embedded
files) lives in ``<script>`` blocks; only a browser running the JavaScript shows whether the table
and the figures really appear. :func:`check_report_html` starts Chromium (Debian package
``chromium``; ``$SE_CHROMIUM`` overrides the binary) with the DevTools protocol over a pipe
(``--remote-debugging-pipe``: no port is opened, nothing leaves the machine), loads the report
(``.html``, or the ``report.html`` of an unpacked ``.zip``), and drives the app as a user would:

* it waits for the app to render its navigation, reads the workflow description;
* it opens every category (``app.showCategory``) and records which result names the menu lists;
* it shows every image result (``content: "img"``) and records the decoded image size;
* it shows every HTML result in the report's iframe and reads the tables rendered in that frame
  (caption, header cells, row count) through an isolated world of the frame;
* it collects uncaught JavaScript exceptions and console errors, and optionally screenshots.

Chromium flags: ``--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
--disable-background-networking --disable-component-update --disable-sync`` and a throw-away
``--user-data-dir``.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shlex
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["BrowserError", "check_report_html", "find_chromium"]

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


class BrowserError(RuntimeError):
    """Chromium missing, crashed or did not answer in time; the message says which."""


def find_chromium(explicit: str | None = None) -> str:
    """Path of a Chromium/Chrome binary (``explicit``, ``$SE_CHROMIUM``, then the usual names)."""
    for name in (explicit, os.environ.get("SE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable", "chrome"):
        if name and (path := shutil.which(name)):
            return path
    raise BrowserError("no Chromium found: install the Debian package `chromium` or set SE_CHROMIUM")


class _DevTools:
    """Minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (NUL-framed JSON)."""

    def __init__(self, binary: str, user_data_dir: str, timeout: float) -> None:
        self.timeout = timeout
        cmd_r, self._cmd_w = os.pipe()  # we write commands -> chromium reads fd 3
        self._res_r, res_w = os.pipe()  # chromium writes fd 4 -> we read
        args = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe",
                "about:blank"]
        # Chromium expects the pipe on fds 3 and 4; bash (unlike dash) redirects from fds above 9.
        shell = f"exec {shlex.join(args)} 3<&{cmd_r} 4>&{res_w}"
        bash = shutil.which("bash")
        if bash is None:
            raise BrowserError("bash is needed to hand the DevTools pipe to Chromium")
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([bash, "-c", shell], pass_fds=(cmd_r, res_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().decode(errors="replace").splitlines() if "dbus" not in ln]
        return "\n".join(lines[-15:])

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._res_r], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise BrowserError(f"Chromium exited with code {self.proc.returncode}:\n{self._stderr_tail()}")
                continue
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the DevTools pipe:\n{self._stderr_tail()}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise BrowserError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=5)
                except (BrowserError, OSError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._cmd_w, self._res_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._stderr.close()


# JavaScript run in the report page: waits for the app, then walks categories and results.
_WALK_JS = r"""
(async () => {
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
  const show = async (view) => { app.setView({navbarMode: 'menu'}); await sleep(60); app.setView(view); await sleep(120); };
  const listed = (shown, r) => shown.includes(r.name) ||
      (r.labels && Object.keys(r.labels).length > 0 && Object.values(r.labels).every(v => shown.includes(String(v))));
  for (const cat of catNames) {
    const subNames = Object.keys(categories[cat]);
    const single = subNames.length == 1;
    await show({navbarMode: single ? 'subcategory' : 'category', category: cat, subcategory: single ? subNames[0] : undefined});
    const menuText = document.querySelector('#app nav').innerText;
    const subcats = {};
    for (const sub of subNames) {
      if (!single) await show({navbarMode: 'subcategory', category: cat, subcategory: sub});
      const shown = document.querySelector('#app nav').innerText;
      subcats[sub] = categories[cat][sub].map(p => ({path: p, name: results[p].name, listed: listed(shown, results[p])}));
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
      item.displayed = null;  // the frame's tables are read by the caller through DevTools
    }
    out.results.push(item);
  }
  return out;
})()
"""

_SHOW_HTML_JS = r"""
(async (path) => {
  const r = results[path];
  app.setView({content: 'html', contentPath: r.data_uri, resultPath: path});
  for (let i = 0; i < 100; i++) {
    await new Promise(res => setTimeout(res, 30));
    if (document.querySelector('#app iframe')) break;
  }
  return document.querySelector('#app iframe') ? r.data_uri : null;
})
"""

_TABLES_JS = r"""
(() => [...document.querySelectorAll('table')].map(t => ({
  id: t.id || null,
  caption: t.caption ? t.caption.textContent.trim() : null,
  headers: [...t.querySelectorAll('thead th')].map(th => th.textContent.trim()),
  rows: [...t.querySelectorAll('tbody tr')].map(tr => [...tr.children].map(c => c.textContent.trim())),
})))()
"""


def _report_file(path: Path, workdir: Path) -> Path:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                target = (workdir / member).resolve()
                if not str(target).startswith(str(workdir.resolve())):
                    raise ValueError(f"{path}: unsafe member path {member!r}")
            zf.extractall(workdir)
        found = sorted(workdir.glob("*/report.html")) or sorted(workdir.glob("report.html"))
        if not found:
            raise ValueError(f"{path}: no report.html inside the zip")
        return found[0]
    if path.suffix != ".html":
        raise ValueError(f"{path}: expected a .html or .zip Snakemake report")
    return path


def _child_frames(tree: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for child in tree.get("childFrames", []) or []:
        out.append(child["frame"])
        out.extend(_child_frames(child))
    return out


def _evaluate(dt: _DevTools, session: str, expression: str, context_id: int | None = None,
              timeout: float | None = None) -> Any:
    params: dict[str, Any] = {"expression": expression, "awaitPromise": True, "returnByValue": True}
    if context_id is not None:
        params["contextId"] = context_id
    res = dt.send("Runtime.evaluate", params, session, timeout=timeout)
    if "exceptionDetails" in res:
        raise BrowserError(f"script failed in the report page: {res['exceptionDetails'].get('text')} "
                           f"{res['exceptionDetails'].get('exception', {}).get('description', '')}")
    return res.get("result", {}).get("value")


def _frame_tables(dt: _DevTools, session: str, uri: str, timeout: float) -> list[dict[str, Any]]:
    """Tables rendered in the child frame showing ``uri`` (the report's html iframe) once it loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = _child_frames(dt.send("Page.getFrameTree", session=session)["frameTree"])
        for frame in frames:
            url = frame.get("url", "")
            if url != uri and not (not uri.startswith("data:") and url.endswith("/" + uri.lstrip("./"))):
                continue
            world = dt.send("Page.createIsolatedWorld", {"frameId": frame["id"], "worldName": "se-check"}, session)
            ctx = world["executionContextId"]
            if _evaluate(dt, session, "document.readyState", ctx) == "complete":
                return _evaluate(dt, session, _TABLES_JS, ctx) or []
        time.sleep(0.1)
    return []


def check_report_html(
    path: str | os.PathLike,
    *,
    screenshot_dir: str | os.PathLike | None = None,
    timeout: float = 90.0,
    chromium: str | None = None,
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

    Raises :class:`BrowserError` when Chromium is missing or fails, ValueError for a bad path.
    """
    report = Path(path)
    if not report.is_file():
        raise FileNotFoundError(f"report {report} not found")
    binary = find_chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="se-report-check-") as tmp:
        tmpdir = Path(tmp)
        page = _report_file(report.resolve(), tmpdir / "unzipped")
        dt = _DevTools(binary, str(tmpdir / "profile"), timeout)
        try:
            target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
                dt.send(domain, session=session)
            dt.send("Page.navigate", {"url": page.as_uri()}, session)
            dt.wait_event("Page.loadEventFired")
            out = _evaluate(dt, session, _WALK_JS, timeout=timeout)
            shots: list[str] = []

            def shoot(name: str) -> None:
                if screenshot_dir is None:
                    return
                data = dt.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
                dest = Path(screenshot_dir) / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(base64.b64decode(data))
                shots.append(str(dest))

            for i, item in enumerate(out.get("results", [])):
                if item["mime"] == "text/html":
                    shown = _evaluate(dt, session, f"({_SHOW_HTML_JS})({json.dumps(item['path'])})")
                    item["displayed"] = bool(shown)
                    item["tables"] = _frame_tables(dt, session, shown, timeout=min(20.0, timeout)) if shown else []
                    shoot(f"result_{i:02d}_html.png")
                elif item["mime"].startswith("image/") and item.get("displayed"):
                    _evaluate(dt, session, f"app.setView({{content: 'img', contentPath: results[{json.dumps(item['path'])}].data_uri}})")
                    time.sleep(0.2)
                    shoot(f"result_{i:02d}_img.png")
            if out.get("app_rendered"):
                _evaluate(dt, session, "app.setView({content: 'rulegraph', navbarMode: 'menu'})")
                time.sleep(0.3)
                shoot("overview.png")
            errors = []
            for ev in dt.events:
                method, params = ev.get("method"), ev.get("params", {})
                if method == "Runtime.exceptionThrown":
                    d = params.get("exceptionDetails", {})
                    errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
                elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                    errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
                elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                    errors.append(params["entry"].get("text", ""))
        finally:
            dt.close()
    out["errors"] = errors
    out["screenshots"] = shots
    out["images"] = [r["name"] for r in out.get("results", []) if r.get("image_size") and min(r["image_size"]) > 0]
    out["tables"] = [t for r in out.get("results", []) for t in r.get("tables", [])]
    return out


def summarize(found: dict[str, Any], keys: Sequence[str] = ("app_rendered", "images", "tables", "errors")) -> str:
    """Short human-readable text of :func:`check_report_html`'s result (for logs and test failures)."""
    return json.dumps({k: found.get(k) for k in keys}, indent=1, default=str)[:4000]
