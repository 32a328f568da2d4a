"""Tiny end-to-end run of the whole Snakemake workflow on CPU (config/tiny.yaml), in a copy of the
source tree (the session fixture ``workflow_run`` of conftest.py, shared with test_code_inputs.py).

Real code paths throughout: eSpeak corpus, pyroomacoustics rooms, SQLite mixture DB, LightningCLI
training of all four models, prediction, scoring, the report, and one MLflow sqlite store.
"""

import json
import zipfile

import mlflow
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_data_stage_outputs(workflow_run):
    workdir, _ = workflow_run
    assert (workdir / "results/corpus/speech.tsv").exists()
    assert (workdir / "results/rooms/rooms.tsv").exists()
    assert (workdir / "results/db/mixtures.sqlite").exists()
    digest = (workdir / "results/db/digest.txt").read_text().split()[0]
    assert len(digest) == 64


def test_every_model_trained_and_registered(workflow_run):
    workdir, _ = workflow_run
    client = mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    for model in ("conv_tasnet", "ic_conv_tasnet", "dprnn", "wave_u_net"):
        d = workdir / "results/models" / model
        assert (d / "best.ckpt").stat().st_size > 0 and (d / "last.ckpt").exists()
        info = json.loads((d / "run.json").read_text())
        run = client.get_run(info["run_id"])
        assert run.data.tags["snakemake.rule"] == "train"
        assert run.data.tags["snakemake.wildcards.model"] == model
        assert "val_loss_epoch" in run.data.metrics and "train_loss_epoch" in run.data.metrics
        versions = client.search_model_versions(f"name='se-{model}'")
        assert any(v.run_id == info["run_id"] for v in versions)


def test_every_rule_wrote_one_mlflow_run_with_the_invocation_id(workflow_run):
    workdir, _ = workflow_run
    client = mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    exp = client.get_experiment_by_name("tiny_smoke")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    rules = [r.data.tags.get("snakemake.rule") for r in runs]
    for rule in ("corpus", "rooms", "mixture_db"):
        assert rules.count(rule) == 1, rules
    assert rules.count("train") == len(MODELS) + len(SWEEP_POINTS)
    invocations = {r.data.tags["se.invocation_id"] for r in runs}
    assert len(invocations) == 1
    digests = {r.data.tags["se.db_digest"] for r in runs if r.data.tags.get("snakemake.rule") == "train"}
    assert digests == {(workdir / "results/db/digest.txt").read_text().split()[0]}


def test_nothing_left_to_do_afterwards(workflow_run, run_snakemake):
    workdir, _ = workflow_run
    out = run_snakemake(workdir, "-n")
    assert "Nothing to be done" in out.stdout + out.stderr


MODELS = ("conv_tasnet", "ic_conv_tasnet", "dprnn", "wave_u_net")
SWEEP_POINTS = ("conv_tasnet--lr1em3", "conv_tasnet--lr3em3")  # config/tiny.yaml's sweep (tests/test_sweep.py)


def test_predictions_are_named_after_db_rows(workflow_run):
    from se_lib.data.db import find_mixture
    from se_lib.data.naming import parse_mixture_filename

    workdir, _ = workflow_run
    url = f"sqlite:///{workdir}/results/db/mixtures.sqlite"
    for model in MODELS:
        wavs = sorted((workdir / "results/predictions" / model / "test").glob("*.wav"))
        kinds = {parse_mixture_filename(p.name)["kind"] for p in wavs}
        assert kinds == {"noisy", "enhanced", "target"}
        enhanced = [p for p in wavs if p.name.endswith("_enhanced.wav")]
        assert len(enhanced) == 3  # tiny config: 3 test mixtures
        for p in enhanced:
            assert find_mixture(url, parse_mixture_filename(p.name)) is not None


def test_scores_and_report(workflow_run):
    import pandas as pd

    workdir, _ = workflow_run
    for name in (*MODELS, "noisy"):
        per_file = pd.read_csv(workdir / f"results/scores/{name}/test.tsv", sep="\t")
        assert len(per_file) == 3 and {"si_sdr", "pesq_wb", "stoi", "dnsmos_ovrl"} <= set(per_file.columns)
        summary = pd.read_csv(workdir / f"results/scores/{name}/test_summary.tsv", sep="\t")
        assert {"metric", "mean", "ci95", "count", "nan_count"} <= set(summary.columns)
    table = pd.read_csv(workdir / "results/report/test/comparison.tsv", sep="\t")
    assert len(table) == len(MODELS) + len(SWEEP_POINTS) + 1
    for png in ("results/report/learning_curves.png", "results/report/hparams_parallel.png"):
        assert (workdir / png).stat().st_size > 1000


def test_snakemake_report_html_and_zip_show_table_and_plots(workflow_run, run_snakemake):
    from browser import BrowserUnavailable as BrowserError
    from browser import check_report_html
    from browser import find_browser as find_chromium

    workdir, _ = workflow_run
    run_snakemake(workdir, "--report", "report.html")
    run_snakemake(workdir, "--report", "report.zip")
    assert (workdir / "report.zip").stat().st_size > 0
    with zipfile.ZipFile(workdir / "report.zip") as zf:
        names = zf.namelist()
    for figure in ("parallel.png", "scatter.png"):  # the sweep views (tests/test_sweep.py)
        assert any(n.endswith(f"/{figure}") for n in names), sorted(names)
    try:
        find_chromium()
    except BrowserError as exc:  # `make test` installs chromium when run as root (CI)
        pytest.skip(str(exc))
    found = check_report_html(workdir / "report.html")
    assert found["app_rendered"], found.get("errors")
    assert found["tables"], "comparison table not rendered in the report"
    assert any("learning_curves" in name for name in found["images"]), found["images"]
