"""Public test sets end to end: the tiny workflow's trained models scored on a VoiceBank-DEMAND-layout and two
CHiME-4-layout test sets (simulated, and real recordings scored against the close-talk mic: approximate), added
after training (config `test_sets`), with their comparison tables and the published rows in the report.

The session fixture ``incremental_run`` (tests/conftest.py, tests/incremental.py) copies the finished shared tiny
run (``workflow_run``: the models are trained once per session), points the copy's MLflow store at the copy's own
artifact folder, builds the two stand-ins (tests/corpus_standins.py) and runs Snakemake again with one more config
file naming them and the recording sets of tests/test_recordings.py (one run adds both). Adding a test set must
not retrain anything: only the test sets' corpus, DB, prediction, scoring and report jobs run for them.
"""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from incremental import rule_runs
from se_lib.data import db as mixture_db
from se_lib.data.naming import parse_mixture_filename
from se_lib.report.published import PUBLISHED_LABEL

APPROX = ("si_sdr_approx", "si_sdri_approx", "pesq_wb_approx", "stoi_approx", "estoi_approx")


@pytest.fixture(scope="module")
def test_sets_run(incremental_run):
    """``(workdir, trained, vbd, chime)`` of the shared ``incremental_run``."""
    run = incremental_run
    return run.workdir, run.trained, run.vbd, run.chime


def test_adding_test_sets_retrains_nothing(test_sets_run):
    workdir, trained, _, _ = test_sets_run
    assert {r.info.run_id for r in rule_runs(workdir, "train")} == trained
    for rule in ("test_set_corpus", "test_set_db"):
        names = sorted(r.info.run_name for r in rule_runs(workdir, rule))
        assert names == sorted(f"{rule}[test_set={n}]" for n in ("chime4", "chime4-real", "vbd")), names


def test_channel_count_decides_which_models_run_on_a_test_set(test_sets_run):
    workdir, *_ = test_sets_run
    by_split: dict[str, set[str]] = {}
    for p in (workdir / "results" / "predictions").glob("*/test_*"):
        if p.is_dir():
            by_split.setdefault(p.name, set()).add(p.parent.name)
    # VB-DEMAND is mono: only the one-channel networks (Conv-TasNet and its sweep points, DPRNN) take it
    assert by_split["test_vbd"] == {"conv_tasnet", "dprnn"} | {
        s for s in by_split["test_chime4"] if s.startswith("conv_tasnet--")
    }
    # the 4-channel CHiME-4 choice: every system, the 4-microphone networks included
    assert {"ic_conv_tasnet", "wave_u_net", "conv_tasnet", "dprnn"} <= by_split["test_chime4"]


def test_prediction_names_keep_the_corpus_stems_and_parse_back(test_sets_run):
    workdir, _, vbd, _ = test_sets_run
    url = f"sqlite:///{workdir}/results/test_sets/vbd/db/mixtures.sqlite"
    enhanced = sorted((workdir / "results/predictions/conv_tasnet/test_vbd").glob("*_enhanced.wav"))
    assert len(enhanced) == 2
    stems = {p.stem for p in (vbd.root / "noisy_testset_wav").glob("*.wav")}
    for path in enhanced:
        row = mixture_db.find_mixture(url, parse_mixture_filename(path.name))
        assert row["sid"] in stems and row["sid"] in path.name  # e.g. sid_p232_001_nids_living_none_rid_vbd-test_...
    chime = sorted((workdir / "results/predictions/ic_conv_tasnet/test_chime4").glob("*_noisy.wav"))
    assert len(chime) == 4 and all("-simu_nids_" in p.name for p in chime)


def test_each_test_set_has_its_table_with_published_rows_under_ours(test_sets_run):
    workdir, *_ = test_sets_run
    html = (workdir / "results/report/test_vbd/comparison.html").read_text()
    assert PUBLISHED_LABEL.capitalize() in html and "Wave-U-Net" in html and "Table 1" in html
    assert html.index(">noisy<") < html.index(PUBLISHED_LABEL.capitalize())  # ours first, then the papers'
    tsv = pd.read_csv(workdir / "results/report/test_vbd/comparison.tsv", sep="\t")
    ours, published = tsv[tsv["source"].isna()], tsv[tsv["source"].notna()]
    assert {"noisy", "conv_tasnet", "dprnn"} <= set(ours["system"])
    assert "Wave-U-Net" in set(published["system"]) and published["pesq_wb"].notna().any()
    chime = (workdir / "results/report/test_chime4/comparison.html").read_text()
    assert "ic_conv_tasnet" in chime and PUBLISHED_LABEL.capitalize() not in chime
    for split in ("test_vbd", "test_chime4"):
        assert (workdir / f"results/report/{split}/snr/si_sdr.png").exists()
        assert (workdir / f"results/report/{split}/metrics.json").exists()


def test_test_set_metrics_on_the_training_runs(test_sets_run):
    workdir, *_ = test_sets_run
    runs = {r.info.run_name: r for r in rule_runs(workdir, "train")}
    metrics = runs["train[model=conv_tasnet]"].data.metrics
    assert {"test_vbd_si_sdr", "test_vbd_pesq_wb", "test_chime4_si_sdr"} <= set(metrics)
    assert "test_vbd_si_sdr" not in runs["train[model=ic_conv_tasnet]"].data.metrics  # mono: not run there
    assert "test_chime4_si_sdr" in runs["train[model=ic_conv_tasnet]"].data.metrics
    # ... and the registered version carries them as tags, beside the DB test split's
    client = mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    name, version = runs["train[model=conv_tasnet]"].data.tags["se.registered_model"].split("/")
    tags = client.get_model_version(name, version).tags
    assert {"test_si_sdr", "test_vbd_si_sdr", "test_chime4_pesq_wb"} <= set(tags)


def test_real_recordings_scored_against_the_close_talk_mic_are_labelled_approximate(test_sets_run):
    """`close_talk_reference`: the real set's intrusive scores exist only as `*_approx` -- in the score files, the
    comparison table (labelled, with the footnote), the DVC metrics and on the training run and registered version."""
    workdir, *_ = test_sets_run
    for system in ("noisy", "dprnn", "ic_conv_tasnet"):
        summary = pd.read_csv(workdir / f"results/scores/{system}/test_chime4-real_summary.tsv", sep="\t")
        summary = summary.set_index("metric")
        assert (summary.loc[list(APPROX), "count"] == 4).all(), summary
        assert (summary.loc[["si_sdr", "pesq_wb", "stoi"], "count"] == 0).all(), summary  # never mixed
    html = (workdir / "results/report/test_chime4-real/comparison.html").read_text()
    assert "SI-SDR [dB] approx.†" in html and "close-talk microphone" in html
    assert "approx" not in (workdir / "results/report/test_chime4/comparison.html").read_text()
    metrics = json.loads((workdir / "results/report/test_chime4-real/metrics.json").read_text())
    assert metrics["dprnn"]["si_sdr_approx"] is not None and metrics["dprnn"]["si_sdr"] is None
    runs = {r.info.run_name: r for r in rule_runs(workdir, "train")}
    logged = runs["train[model=dprnn]"].data.metrics
    assert {f"test_chime4-real_{m}" for m in APPROX} <= set(logged)
    assert "test_chime4-real_si_sdr" not in logged and "test_chime4-real_dnsmos_ovrl" in logged
    client = mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    name, version = runs["train[model=dprnn]"].data.tags["se.registered_model"].split("/")
    assert "test_chime4-real_si_sdr_approx" in client.get_model_version(name, version).tags
