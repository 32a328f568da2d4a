"""check_report_html (tests/browser.py: Selenium driving the system Chromium through chromedriver) on a
small Snakemake report built here (.html and .zip).

The report holds what the workflow's report holds: a workflow description, an HTML comparison table
(from :func:`se_lib.report.tables.write_comparison`) and a PNG plot, each marked with ``report()``
(caption, category, subcategory, labels). Skipped, saying what is missing, when Chromium or chromedriver
is not installed (Debian: ``apt-get install chromium chromium-driver``; ``make test`` does it as root).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser import BrowserUnavailable, check_layout, check_report_html, find_browser, summarize
from se_lib.report.names import METRICS
from se_lib.report.plots import plot_metric_vs_snr
from se_lib.report.tables import write_comparison

REPO = Path(__file__).resolve().parent.parent
MODELS = ("conv_tasnet", "ic_conv_tasnet", "dprnn", "wave_u_net")

pytestmark = pytest.mark.timeout(300)


def _browser_or_skip() -> tuple[str, str]:
    try:
        return find_browser()
    except BrowserUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    _browser_or_skip()
    wf = tmp_path_factory.mktemp("wf")
    src = wf / "src"
    src.mkdir()
    for name, si_sdr in (("noisy", 2.0), ("convtasnet", 9.0)):
        rows = [
            {"metric": "si_sdr", "mean": si_sdr, "ci95": 0.5, "count": 20, "nan_count": 0},
            {"metric": "pesq_wb", "mean": si_sdr / 4, "ci95": 0.1, "count": 20, "nan_count": 0},
        ]
        pd.DataFrame(rows).to_csv(src / f"{name}.tsv", sep="\t", index=False)
    (src / "stats.json").write_text(json.dumps({"parameters": 123456, "real_time_factor": 0.01}))
    write_comparison(
        {"noisy": src / "noisy.tsv", "convtasnet": src / "convtasnet.tsv"},
        {"noisy": None, "convtasnet": src / "stats.json"},
        src / "comparison.tsv",
        src / "comparison.html",
    )
    per_file = {
        "noisy": pd.DataFrame({"snr_db": [-5.0, 0.0, 5.0, 10.0], "si_sdr": [-4.0, 1.0, 6.0, 9.0]}),
        "convtasnet": pd.DataFrame({"snr_db": [-5.0, 0.0, 5.0, 10.0], "si_sdr": [4.0, 8.0, 12.0, 15.0]}),
    }
    plot_metric_vs_snr(per_file, "si_sdr", src / "si_sdr.png", n_bins=2)
    (wf / "workflow.rst").write_text("Tiny workflow\n=============\n\nExperiment **{{ snakemake.config['name'] }}**.\n")
    (wf / "table.rst").write_text("Comparison table on the {{ snakemake.wildcards.split }} split.\n")
    (wf / "snr.rst").write_text("SI-SDR versus input SNR.\n")
    (wf / "Snakefile").write_text(
        textwrap.dedent("""
        config["name"] = "browser-check"
        report: "workflow.rst"

        rule all:
            input: "out/test/comparison.html", "out/test/comparison.tsv", "out/test/si_sdr.png"

        rule table:
            input: html="src/comparison.html", tsv="src/comparison.tsv"
            output:
                html=report("out/{split}/comparison.html", caption="table.rst", category="Comparison",
                            subcategory="Table", labels={"split": "{split}", "format": "HTML"}),
                tsv=report("out/{split}/comparison.tsv", caption="table.rst", category="Comparison",
                           subcategory="Table", labels={"split": "{split}", "format": "TSV"}),
            shell: "cp {input.html} {output.html} && cp {input.tsv} {output.tsv}"

        rule plot:
            input: "src/si_sdr.png"
            output:
                report("out/{split}/si_sdr.png", caption="snr.rst", category="Comparison",
                       subcategory="Metric vs input SNR", labels={"split": "{split}", "metric": "SI-SDR [dB]"})
            shell: "cp {input} {output}"
        """)
    )
    smk = [sys.executable, "-m", "snakemake", "--cores", "1", "--quiet", "all"]
    for extra in (["--report", "report.html", "--report-after-run"], ["--report", "report.zip"]):
        res = subprocess.run(smk + extra, cwd=wf, capture_output=True, text=True, timeout=240)
        assert res.returncode == 0, res.stderr[-3000:]
    return {"html": wf / "report.html", "zip": wf / "report.zip"}


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> Path:
    """A report as the workflow renders it, without running it: the real report/workflow.rst with the real
    config and a matching provenance record (its longest form: every model's run listed), and the
    comparison table of the demo's four models + noisy with every metric."""
    _browser_or_skip()
    import yaml

    from se_lib.config import load_config
    from se_lib.report.provenance import provenance_record

    wf = tmp_path_factory.mktemp("full")
    src = wf / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    summaries, stats = {}, {}
    for name in ("noisy", *MODELS):
        rows = [
            {"metric": m, "mean": rng.uniform(-2.0, 12.0), "ci95": rng.uniform(0.1, 1.5), "count": 20, "nan_count": 0}
            for m in METRICS
        ]
        pd.DataFrame(rows).to_csv(src / f"{name}.tsv", sep="\t", index=False)
        summaries[name] = src / f"{name}.tsv"
        if name != "noisy":
            (src / f"{name}.json").write_text(json.dumps({"parameters": 10_264_085, "real_time_factor": 0.0123}))
        stats[name] = None if name == "noisy" else src / f"{name}.json"
    write_comparison(summaries, stats, src / "comparison.tsv", src / "comparison.html")
    config = load_config(REPO / "config" / "config.yaml")
    runs = {m: {"git_commit": "a" * 40, "run_id": "r" * 32, "experiment": config["experiment"]} for m in MODELS}
    record = provenance_record(config, ["config/config.yaml"], runs, "d" * 64)
    (wf / "provenance.json").write_text(json.dumps(record))
    (wf / "config.yaml").write_text(yaml.safe_dump(config))
    (wf / "table.rst").write_text((REPO / "report" / "comparison.rst").read_text())
    (wf / "Snakefile").write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from se_lib.report.provenance import CONTEXT_KEY, report_context

        configfile: "config.yaml"
        config[CONTEXT_KEY] = report_context(config, ["config/config.yaml"], "provenance.json")
        report: {str(REPO / "report" / "workflow.rst")!r}

        rule all:
            input: "out/test/comparison.html"

        rule table:
            input: "src/comparison.html"
            output:
                report("out/{{split}}/comparison.html", caption="table.rst", category="Comparison",
                       subcategory="Table", labels={{"split": "{{split}}", "format": "HTML"}}),
            shell: "cp {{input}} {{output}}"
        """)
    )
    smk = [sys.executable, "-m", "snakemake", "--cores", "1", "--quiet", "all", "--report", "report.html"]
    res = subprocess.run([*smk, "--report-after-run"], cwd=wf, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    return wf / "report.html"


@pytest.mark.parametrize("size", [(1280, 800), (1400, 1000)])
def test_landing_title_visible_and_table_fits(full_report, size, tmp_path):
    """The landing page's title is not cut off at the top, and the 10-system x 9-metric comparison table
    fits its frame without a horizontal scroll bar, at 1280x800 and 1400x1000."""
    found = check_layout(full_report, *size, screenshot_dir=tmp_path)
    landing = found["landing"]
    assert landing["found"] and landing["text"] == "Multichannel speech-enhancement workflow", landing
    width, height = size
    assert 0 <= landing["top"] and landing["bottom"] <= height and landing["on_top"], landing
    assert 0 <= landing["left"] and landing["right"] <= width, landing
    table = found["tables"]["comparison.html"]
    assert table["displayed"] and table["frame_right"] <= width, table
    assert table["scroll_width"] <= table["frame_width"], table
    assert [t["right"] for t in table["tables"]] and max(t["right"] for t in table["tables"]) <= table["frame_width"]


@pytest.mark.parametrize("kind", ["html", "zip"])
def test_report_shows_table_and_plot(reports, kind, tmp_path):
    found = check_report_html(reports[kind], screenshot_dir=tmp_path)
    info = summarize(found)
    assert found["app_rendered"], info
    assert found["errors"] == [], info
    assert "Tiny workflow" in found["workflow_description"] and "browser-check" in found["workflow_description"]
    by_name = {r["name"]: r for r in found["results"]}
    assert set(by_name) == {"comparison.html", "comparison.tsv", "si_sdr.png"}, info
    html = by_name["comparison.html"]
    assert html["displayed"] and html["caption"] == "Comparison table on the test split."
    assert html["labels"] == {"split": "test", "format": "HTML"}
    table = html["tables"][0]
    assert table["caption"] == "Model comparison on the test split"
    assert table["headers"][:3] == ["system", "files", "SI-SDR [dB]"] and "RTF" in table["headers"]
    assert [row[0] for row in table["rows"]] == ["noisy", "convtasnet"]
    assert table["rows"][1][2] == "9.00 ± 0.50"  # mean and interval (the interval on its own line)
    png = by_name["si_sdr.png"]
    assert png["displayed"] and png["image_size"][0] > 300 and png["image_size"][1] > 200, info
    assert found["images"] == ["si_sdr.png"]
    comparison = found["categories"]["Comparison"]["subcategories"]
    assert all(item["listed"] for items in comparison.values() for item in items), found["categories"]
    assert set(comparison) == {"Table", "Metric vs input SNR"}
    shots = [Path(p) for p in found["screenshots"]]
    assert shots and all(p.stat().st_size > 5000 for p in shots)


def test_broken_report_is_reported(reports, tmp_path):
    """A report whose result data is corrupt shows no image: the check must say so, not pass."""
    text = reports["html"].read_text(encoding="utf-8")
    marker = "filename=si_sdr.png;base64,"
    start = text.index(marker) + len(marker)
    broken = tmp_path / "broken.html"
    broken.write_text(text[:start] + "AAAA" + text[start + 4000 :], encoding="utf-8")
    found = check_report_html(broken)
    assert found["app_rendered"]
    assert found["images"] == [] and [r["image_size"] for r in found["results"] if r["name"] == "si_sdr.png"] == [None]


def test_page_errors_are_reported(reports, tmp_path):
    """An uncaught exception and a console error in the page end up in ``errors``."""
    text = reports["html"].read_text(encoding="utf-8")
    end = text.rindex("</body>")
    script = (
        '<script>console.error("se-check console error");'
        'setTimeout(() => { throw new Error("se-check uncaught"); }, 0);</script>'
    )
    noisy = tmp_path / "noisy.html"
    noisy.write_text(text[:end] + script + text[end:], encoding="utf-8")
    found = check_report_html(noisy)
    assert found["app_rendered"], summarize(found)
    assert any("se-check console error" in e for e in found["errors"]), found["errors"]
    assert any("se-check uncaught" in e for e in found["errors"]), found["errors"]


def test_bad_report_paths(tmp_path):
    """Checked before any browser is looked for, so this runs without Chromium too."""
    with pytest.raises(FileNotFoundError, match="nope.html"):
        check_report_html(tmp_path / "nope.html")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="html or .zip"):
        check_report_html(tmp_path / "x.txt")
    (tmp_path / "empty.zip").write_bytes(b"")
    with pytest.raises(zipfile.BadZipFile):
        check_report_html(tmp_path / "empty.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("data/readme.txt", "no report here")
    with pytest.raises(ValueError, match="no report.html inside"):
        check_report_html(tmp_path / "other.zip")


def test_unavailable_browser_is_named(monkeypatch, tmp_path):
    """With neither binary reachable, the check says which are missing and how to get them."""
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no chromium, no chromedriver
    monkeypatch.delenv("SE_CHROMIUM", raising=False)
    monkeypatch.delenv("SE_CHROMEDRIVER", raising=False)
    with pytest.raises(BrowserUnavailable, match="apt-get install chromium-driver") as err:
        find_browser()
    assert "apt-get install chromium," in str(err.value)
    (tmp_path / "report.html").write_text("<html></html>")
    with pytest.raises(BrowserUnavailable, match="Chromium"):
        check_report_html(tmp_path / "report.html")
