"""Report provenance (se_lib/report/provenance.py, rule report_provenance, report/workflow.rst).

The workflow description is rendered here as ``snakemake --report`` renders it (Jinja with
``trim_blocks``/``lstrip_blocks`` and only ``snakemake.config`` in the context, then docutils to HTML), for
the three cases: no record of the run that produced the results, a matching one, and one written under
another config (the tiny overlay) while the report is rendered with config/config.yaml.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from docutils.core import publish_parts
from jinja2 import Environment

from se_lib.config import load_config
from se_lib.report.provenance import CONTEXT_KEY, config_digest, provenance_record, report_context, shown_paths

REPO = Path(__file__).resolve().parent.parent
LINKS = "\n\n.. _Comparison: #c\n.. _Training: #t\n.. _Examples: #e\n"


def render(config: dict) -> str:
    class Snakemake:
        pass

    Snakemake.config = config
    text = (REPO / "report" / "workflow.rst").read_text() + LINKS
    rst = Environment(trim_blocks=True, lstrip_blocks=True).from_string(text).render(snakemake=Snakemake)
    html = publish_parts(rst, writer="html", settings_overrides={"report_level": 2, "halt_level": 2})
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html["html_body"]))


@pytest.fixture(scope="module")
def configs():
    import yaml

    main = load_config(REPO / "config" / "config.yaml")
    tiny = load_config(REPO / "config" / "config.yaml", yaml.safe_load((REPO / "config" / "tiny.yaml").read_text()))
    return main, tiny


def test_digest_ignores_private_keys_and_sees_any_change(configs):
    main, tiny = configs
    assert config_digest(main) == config_digest({**main, CONTEXT_KEY: {"x": 1}})
    assert config_digest(main) != config_digest(tiny)
    changed = copy.deepcopy(main)
    changed["mixtures"]["snr_range"] = [-5, 6]
    assert config_digest(changed) != config_digest(main)
    assert shown_paths([str(REPO / "config" / "tiny.yaml"), "/elsewhere/x.yaml"], REPO) == [
        "config/tiny.yaml",
        "/elsewhere/x.yaml",
    ]
    # as Snakemake lists them (--configfile first) -> in the order they apply
    listed = [str(REPO / "config" / "tiny.yaml"), "config/config.yaml"]
    assert shown_paths(listed, REPO, overrides=listed[:1]) == ["config/config.yaml", "config/tiny.yaml"]


def test_workflow_description_says_which_config_made_the_results(configs, tmp_path):
    main, tiny = configs
    record_path = tmp_path / "provenance.json"
    runs = {"dprnn": {"git_commit": "a" * 40, "run_id": "r" * 32, "experiment": "tiny_smoke"}}
    files_tiny = ["config/config.yaml", "config/tiny.yaml"]

    # no record yet
    cfg = {**main, CONTEXT_KEY: report_context(main, ["config/config.yaml"], record_path)}
    text = render(cfg)
    assert "rendered with the config files config/config.yaml (experiment baseline_verification" in text
    assert "No provenance record" in text and "mismatch" not in text

    # results made by the tiny run; report rendered with the same files: they match, models listed
    record_path.write_text(json.dumps(provenance_record(tiny, files_tiny, runs, "d" * 64)))
    cfg = {**tiny, CONTEXT_KEY: report_context(tiny, files_tiny, record_path)}
    assert cfg[CONTEXT_KEY]["matches"] is True
    text = render(cfg)
    assert "config/config.yaml, config/tiny.yaml (experiment tiny_smoke" in text
    assert "has the same config digest" in text
    assert "mismatch" not in text and "d" * 64 in text and "dprnn: commit " + "a" * 12 in text
    assert "r" * 32 in text

    # the same results, report rendered without the tiny overlay: a warning naming both
    cfg = {**main, CONTEXT_KEY: report_context(main, ["config/config.yaml"], record_path)}
    assert cfg[CONTEXT_KEY]["matches"] is False
    text = render(cfg)
    assert "Configuration mismatch" in text
    assert "produced with the config files config/config.yaml, config/tiny.yaml (experiment tiny_smoke" in text
    assert f"experiment baseline_verification, digest {config_digest(main)}" in text
    assert "snakemake --report report.html --configfile config/tiny.yaml" in text


@pytest.mark.timeout(1800)  # the first user of the session's tiny workflow run starts it
def test_tiny_run_records_its_config_and_a_report_with_another_config_says_so(workflow_run, snakemake_env):
    """On the shared tiny run: provenance.json names config/tiny.yaml and each model's commit; a report
    rendered without ``--configfile config/tiny.yaml`` (as `make report` would be) warns of the mismatch."""
    import subprocess
    import sys

    workdir, _ = workflow_run
    record = json.loads((workdir / "results" / "report" / "provenance.json").read_text())
    assert record["configfiles"] == ["config/config.yaml", "config/tiny.yaml"]
    assert record["experiment"] == "tiny_smoke"
    assert record["db_digest"] == (workdir / "results" / "db" / "digest.txt").read_text().split()[0]
    for model, info in record["models"].items():
        run = json.loads((workdir / "results" / "models" / model / "run.json").read_text())
        assert info == {"commit": run["git_commit"], "run_id": run["run_id"], "experiment": "tiny_smoke"}
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), "--directory", str(workdir)]
        + ["--report", str(workdir / "report_other.html")],
        cwd=workdir,
        env=snakemake_env(workdir),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    html = (workdir / "report_other.html").read_text()
    assert "Configuration mismatch" in html and record["config_digest"] in html
