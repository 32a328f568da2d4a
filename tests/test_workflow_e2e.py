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


def test_training_logs_progress_live_speech_metrics_and_diagnosis(workflow_run):
    """Each training job's log has one line per epoch and the stop reason; the run's MLflow history holds
    val_pesq / val_stoi / val_dnsmos_ovrl next to val_si_sdr (config/tiny.yaml: 2 mixtures, first epoch);
    the report's diagnosis is the run's tag se.diagnosis."""
    import math

    import pandas as pd

    workdir, _ = workflow_run
    client = mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    diagnosis = pd.read_csv(workdir / "results/report/diagnosis.tsv", sep="\t").set_index("model")
    for model in MODELS:
        log = (workdir / "logs/train" / f"{model}.log").read_text()
        lines = [line for line in log.splitlines() if "[progress]" in line]
        epochs = [line for line in lines if "[progress] epoch " in line]
        assert [line.split("[progress] epoch ")[1].split()[0] for line in epochs] == ["1/2", "2/2"], lines
        assert all(" val_si_sdr " in line and " lr " in line and " eta " in line for line in epochs), epochs
        assert "val_pesq" in epochs[0] and "val_pesq" not in epochs[1], epochs  # every_n_epochs 2
        assert lines[-1].endswith("[progress] stopped: max_epochs reached (2 epochs)"), lines
        run_id = json.loads((workdir / "results/models" / model / "run.json").read_text())["run_id"]
        sdr_steps = {m.step for m in client.get_metric_history(run_id, "val_si_sdr")}
        for key, low, high in (("val_pesq", 1.0, 4.7), ("val_stoi", 0.0, 1.0), ("val_dnsmos_ovrl", 1.0, 5.0)):
            hist = client.get_metric_history(run_id, key)
            assert len(hist) == 1 and hist[0].step in sdr_steps, (model, key, hist)
            assert math.isfinite(hist[0].value) and low <= hist[0].value <= high, (model, key, hist[0].value)
        share = client.get_metric_history(run_id, "time/live_metrics_share")
        assert len(share) == 1 and 0 < share[0].value < 1
        run = client.get_run(run_id)
        assert len(run.data.params["live_metrics/mids"].split(",")) == 2
        assert run.data.tags["se.diagnosis"] == diagnosis.at[model, "diagnosis"] == "undetermined"  # 2 epochs


def test_every_report_figure_has_its_data_as_csv(workflow_run):
    import pandas as pd

    workdir, _ = workflow_run
    report = workdir / "results/report"
    pngs = sorted(report.rglob("*.png"))
    assert len(pngs) >= 3 + 9, pngs
    for png in pngs:
        csv = png.with_suffix(".csv") if png.parent.name != "spectrograms" else png.parent / "examples.csv"
        assert csv.is_file() and len(pd.read_csv(csv)) > 0, csv
    curves = pd.read_csv(report / "learning_curves.csv")
    assert {"val_pesq", "val_stoi", "val_dnsmos_ovrl", "val_si_sdr"} <= set(curves["metric"])


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
    from browser import check_layout, check_report_html
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
    assert any(t["id"] == "diagnosis" for t in found["tables"]), found["tables"]
    # readable at 1280x800: the landing page's title in view, the comparison table without side scrolling
    layout = check_layout(workdir / "report.html", 1280, 800)
    title = layout["landing"]
    assert title["found"] and title["top"] >= 0 and title["bottom"] <= 800 and title["on_top"], title
    table = layout["tables"]["comparison.html"]
    assert table["frame_right"] <= 1280 and table["scroll_width"] <= table["frame_width"], table
