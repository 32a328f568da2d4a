"""Report library on small synthetic inputs: comparison table, plots, MLflow data, spectrogram examples."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric, Param

from se_lib.data.audio import write_wav_atomic
from se_lib.data.naming import mixture_filename
from se_lib.report.examples import write_spectrogram_examples
from se_lib.report.plots import (
    ema_smooth,
    hparam_axes,
    plot_learning_curves,
    plot_metric_vs_snr,
    plot_parallel_coordinates,
    select_examples,
    snr_bins,
)
from se_lib.report.spectrogram import plot_spectrograms, spectrogram_db, spectrogram_figure
from se_lib.report.tables import best_models, comparison_table, mean_ci95, read_summary, table_html, write_comparison
from se_lib.tracking.history import experiment_runs, learning_curves, read_run_json, set_run_tags
from se_lib.tracking.runs import log_split_metrics, summary_metrics

SR = 16000


def summary_tsv(path, means: dict[str, float], n: int = 20):
    rows = [{"metric": m, "mean": v, "ci95": 0.1 * abs(v) + 0.01, "count": n, "nan_count": 0} for m, v in means.items()]
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def per_file_frame(seed: int, offset: float, n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    snr = np.round(rng.uniform(-5, 10, n), 1)
    return pd.DataFrame(
        {
            "mixture": [f"sid_s{i}_nids_a_b_rid_r_snr_{s:g}dB" for i, s in enumerate(snr)],
            "sid": [f"s{i}" for i in range(n)],
            "nid1": "a",
            "nid2": "b",
            "rid": "r",
            "snr_db": snr,
            "si_sdr": snr + offset + rng.normal(0, 1, n),
            "pesq_wb": 1.5 + 0.1 * snr + offset / 10,
        }
    )


# ------------------------------------------------------------------------------------------ tables
def test_comparison_table_tsv_and_html(tmp_path):
    base = {"si_sdr": 2.0, "si_sdri": 0.0, "pesq_wb": 1.4, "stoi": 0.8}
    summaries = {
        "conv_tasnet": summary_tsv(tmp_path / "a.tsv", {"si_sdr": 9.5, "si_sdri": 7.5, "pesq_wb": 2.1, "stoi": 0.9}),
        "dprnn": summary_tsv(tmp_path / "b.tsv", {"si_sdr": 8.0, "si_sdri": 6.0, "pesq_wb": 2.4, "stoi": 0.88}),
        "noisy": summary_tsv(tmp_path / "n.tsv", base),
    }
    stats = {"conv_tasnet": tmp_path / "sa.json", "dprnn": tmp_path / "sb.json", "noisy": None}
    (tmp_path / "sa.json").write_text(json.dumps({"parameters": 4_920_000, "real_time_factor": 0.05, "device": "cpu"}))
    (tmp_path / "sb.json").write_text(json.dumps({"parameters": 2600, "real_time_factor": 0.2, "device": "cpu"}))
    df = write_comparison(summaries, stats, tmp_path / "out.tsv", tmp_path / "out.html", split="test")
    assert list(df["system"]) == ["noisy", "conv_tasnet", "dprnn"]  # baseline first
    back = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    for col in ("si_sdr", "si_sdr_ci95", "pesq_wb_ci95", "parameters", "real_time_factor", "n_files"):
        assert col in back.columns
    assert "dnsmos_ovrl" not in back.columns  # metrics no system has are dropped
    assert back.loc[back["system"] == "conv_tasnet", "si_sdr"].item() == pytest.approx(9.5)
    assert back.loc[back["system"] == "dprnn", "parameters"].item() == 2600
    assert pd.isna(back.loc[back["system"] == "noisy", "parameters"].item())
    html = (tmp_path / "out.html").read_text()
    assert "<caption>Model comparison on the test split</caption>" in html
    assert '<td class="best">9.50 <span class="ci">± 0.96</span></td>' in html  # best SI-SDR: conv_tasnet
    assert '<td class="best">2.40 <span class="ci">± 0.25</span></td>' in html  # best PESQ: dprnn
    assert "4.92 M" in html and "2.6 k" in html and "SI-SDRi [dB]" in html


def test_best_is_bold_only_where_it_beats_the_noisy_input(tmp_path):
    """A tiny run's "best" SI-SDRi of -1.03 dB (worse than doing nothing) must not be bold."""
    summaries = {
        "noisy": summary_tsv(tmp_path / "n.tsv", {"si_sdr": 2.0, "si_sdri": 0.0, "pesq_wb": 1.4, "stoi": 0.80}),
        "a": summary_tsv(tmp_path / "a.tsv", {"si_sdr": 0.97, "si_sdri": -1.03, "pesq_wb": 1.5, "stoi": 0.79}),
        "b": summary_tsv(tmp_path / "b.tsv", {"si_sdr": 0.5, "si_sdri": -1.5, "pesq_wb": 1.45, "stoi": 0.80}),
    }
    df = write_comparison(summaries, dict.fromkeys(summaries), tmp_path / "o.tsv", tmp_path / "o.html")
    best = best_models(df, ["si_sdr", "si_sdri", "pesq_wb", "stoi"])
    assert np.isnan(best["si_sdr"]) and np.isnan(best["si_sdri"]) and np.isnan(best["stoi"])  # a tie is no gain
    assert best["pesq_wb"] == 1.5
    html = (tmp_path / "o.html").read_text()
    assert html.count('class="best"') == 1 and '<td class="best">1.50 <span class="ci">' in html
    # without a noisy row, SI-SDRi is compared with 0 dB (the input's improvement over itself)
    assert np.isnan(best_models(df[df["system"] != "noisy"], ["si_sdri"])["si_sdri"])


def test_approximate_scores_have_their_own_labelled_columns_footnote_and_metrics(tmp_path):
    """Scores against CHiME-4's close-talk mic (`*_approx`, true-reference columns NaN): their own columns, labelled
    approximate with a footnote in the table, their own keys in the DVC metrics and in MLflow."""
    from se_lib.dvc_stages import metrics_record
    from se_lib.report.names import APPROX_NOTE

    def approx(si_sdr, pesq):
        means = {"si_sdr": np.nan, "pesq_wb": np.nan, "si_sdr_approx": si_sdr, "pesq_wb_approx": pesq}
        return {**means, "dnsmos_ovrl": 2.5}

    summaries = {
        "noisy": summary_tsv(tmp_path / "n.tsv", approx(-3.0, 1.2)),
        "dprnn": summary_tsv(tmp_path / "d.tsv", approx(1.0, 1.4)),
    }
    df = write_comparison(summaries, dict.fromkeys(summaries), tmp_path / "o.tsv", tmp_path / "o.html")
    assert {"si_sdr_approx", "pesq_wb_approx", "dnsmos_ovrl"} <= set(df.columns)
    assert "si_sdr" not in df.columns and "pesq_wb" not in df.columns  # no true reference: dropped, not filled
    html = (tmp_path / "o.html").read_text()
    assert "SI-SDR [dB] approx.†" in html and "PESQ (WB) approx.†" in html
    assert APPROX_NOTE.split(":")[0] in html and "close-talk" in html
    record = metrics_record(df)
    assert record["dprnn"]["si_sdr_approx"] == 1.0 and record["dprnn"]["si_sdr"] is None
    summary = read_summary(summaries["dprnn"])
    assert set(summary_metrics(summary, "test_chime4-real_")) == {
        f"test_chime4-real_{m}{ci}" for m in ("si_sdr_approx", "pesq_wb_approx", "dnsmos_ovrl") for ci in ("", "_ci95")
    }
    # a table without approximate scores has no footnote about them
    write_comparison(
        {"noisy": summary_tsv(tmp_path / "t.tsv", {"si_sdr": 1.0})}, {}, tmp_path / "p.tsv", tmp_path / "p.html"
    )
    assert "approx" not in (tmp_path / "p.html").read_text()


def test_bad_summary_is_named(tmp_path):
    bad = tmp_path / "bad.tsv"
    pd.DataFrame({"metric": ["si_sdr"], "mean": [1.0]}).to_csv(bad, sep="\t", index=False)
    with pytest.raises(ValueError, match="bad.tsv.*ci95"):
        read_summary(bad)
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_summary(tmp_path / "missing.tsv")


def test_mean_ci95_matches_student_t():
    x = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    mean, ci, n = mean_ci95(x)
    assert (mean, n) == (2.5, 4)
    assert ci == pytest.approx(3.182446 * np.std(x[:4], ddof=1) / 2, rel=1e-5)
    assert np.isnan(mean_ci95([1.0])[1]) and mean_ci95([])[2] == 0


def test_html_escapes_names():
    df = comparison_table(
        {
            "<b>x</b>": pd.DataFrame(
                {"mean": [1.0], "ci95": [0.1], "count": [3], "nan_count": [0]},
                index=pd.Index(["si_sdr"], name="metric"),
            )
        }
    )
    assert "&lt;b&gt;x&lt;/b&gt;" in table_html(df, "cap")


# ------------------------------------------------------------------------------------------- plots
def test_snr_bins_and_plot(tmp_path):
    per_file = {"noisy": per_file_frame(0, 0.0), "model": per_file_frame(0, 8.0)}
    binned = snr_bins(per_file, "si_sdr", n_bins=3)
    assert len(binned) == 6 and binned.groupby("system")["count"].sum().tolist() == [30, 30]
    low, high = binned["bin_low"].min(), binned["bin_high"].max()
    assert low == per_file["noisy"]["snr_db"].min() and high == per_file["noisy"]["snr_db"].max()
    m = binned.set_index(["system", "snr_center"])["mean"]
    for center in binned["snr_center"].unique():  # the model is ~8 dB above noisy in every bin
        assert m[("model", center)] - m[("noisy", center)] == pytest.approx(8.0, abs=1.5)
    png = tmp_path / "p" / "si_sdr.png"
    plot_metric_vs_snr(per_file, "si_sdr", png)
    img = mpimg.imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 500 and img[..., :3].std() > 0.05
    with pytest.raises(ValueError, match="dnsmos_ovrl"):
        plot_metric_vs_snr(per_file, "dnsmos_ovrl", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_learning_curves_and_parallel_coordinates(tmp_path):
    curves = pd.DataFrame(
        [
            {"model": m, "metric": k, "epoch": e, "value": v + e * 0.1}
            for m in ("a", "b")
            for k, v in (("train_loss_epoch", -1), ("val_si_sdr", 3))
            for e in range(4)
        ]
    )
    plot_learning_curves(curves, tmp_path / "lc.png")  # val_loss_epoch missing: an empty, labelled panel
    assert mpimg.imread(tmp_path / "lc.png").shape[1] > 1000
    data = pd.read_csv(tmp_path / "lc.csv")  # the figure's data beside it
    assert len(data) == len(curves) and {"model", "metric", "x", "value", "smoothed"} <= set(data.columns)
    np.testing.assert_allclose(data["smoothed"], data["value"])  # smoothing 0: the raw values
    # options: EMA smoothing (TensorBoard's bias-corrected form), x by step or time, log scale
    curves["step"] = curves["epoch"] * 7 + 6
    curves["time_s"] = curves["epoch"] * 90.0
    table = plot_learning_curves(curves, tmp_path / "s.png", smoothing=0.5, x_axis="time", log_scale=True)
    one = table[(table["model"] == "a") & (table["metric"] == "val_si_sdr")]
    assert list(one["x"]) == [0.0, 1.5, 3.0, 4.5]  # minutes
    assert list(one["smoothed"]) == pytest.approx([3.0, 3.0 + 0.1 * 2 / 3, 3.0 + 0.1 * 10 / 7, 3.0 + 0.1 * 34 / 15])
    assert list(plot_learning_curves(curves, tmp_path / "st.png", x_axis="step")["x"])[:4] == [6, 13, 20, 27]
    assert list(ema_smooth([1.0, np.nan, 3.0], 0.5)[[0, 2]]) == pytest.approx([1.0, 7 / 3])
    with pytest.raises(ValueError, match="x_axis"):
        plot_learning_curves(curves, tmp_path / "x.png", x_axis="wall")
    with pytest.raises(ValueError, match="smoothing"):
        ema_smooth([1.0], 1.0)
    runs = pd.DataFrame(
        {
            "run_name": ["r1", "r2", "r3"],
            "arch": ["conv_tasnet", "dprnn", "conv_tasnet"],
            "lr": ["0.001", "0.0001", "0.01"],
            "net.N": ["64", None, "128"],
            "best_val_si_sdr": [5.0, 7.5, float("nan")],
        }
    )
    plot_parallel_coordinates(
        runs, "best_val_si_sdr", tmp_path / "pc.png", label="run_name", axes=["arch", "lr", "net.N"]
    )
    assert mpimg.imread(tmp_path / "pc.png").shape[1] > 600
    with pytest.raises(ValueError, match="objective"):
        plot_parallel_coordinates(runs, "nope", tmp_path / "pc2.png")


def test_spectrogram_axis_in_hz_and_panels(tmp_path):
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 1000 * t)
    f, frames, s = spectrogram_db(tone, SR)
    assert f[-1] == SR / 2 and abs(f[np.argmax(s.mean(axis=1))] - 1000) <= SR / 512
    assert frames[-1] == pytest.approx(1.0, abs=0.02)
    plot_spectrograms([("noisy", tone + 0.1), ("target", tone)], SR, tmp_path / "s.png", title="x")
    assert mpimg.imread(tmp_path / "s.png").shape[0] > 300


def test_spectrogram_figure_khz_axis_and_short_tensors():
    """The training callbacks pass CPU tensors, possibly shorter than one STFT frame."""
    import torch

    fig = spectrogram_figure([("noisy", torch.randn(4000)), ("enhanced", torch.randn(300))], 16000)
    panels = [ax for ax in fig.axes if ax.get_ylabel() == "kHz"]
    assert [ax.get_title(loc="left") for ax in panels] == ["noisy", "enhanced"]
    assert all(ax.get_ylim() == pytest.approx((0.0, 8.0)) for ax in panels)
    with pytest.raises(ValueError, match="no panels"):
        spectrogram_figure([], 16000)


def test_select_examples_spreads_over_snr():
    df = per_file_frame(1, 0.0, n=11)
    picked = select_examples(df, 3)
    snrs = sorted(df["snr_db"])
    assert list(picked["snr_db"]) == [snrs[0], snrs[5], snrs[10]]
    assert len(select_examples(df, 50)) == 11 and select_examples(df, 0).empty


def test_write_spectrogram_examples(tmp_path):
    rng = np.random.default_rng(0)
    refs, pred = tmp_path / "refs", tmp_path / "pred"
    rows = [
        {"sid": f"s{i}", "nid1": "n1", "nid2": "n2", "rid": "r1", "snr_db": snr} for i, snr in enumerate([-5, 0, 7.5])
    ]
    for row in rows:
        target = rng.normal(0, 0.1, 4000).astype(np.float32)
        write_wav_atomic(refs / mixture_filename(row, "noisy"), rng.normal(0, 0.1, (4, 4000)), SR, subtype="FLOAT")
        write_wav_atomic(refs / mixture_filename(row, "target"), target, SR, subtype="FLOAT")
        write_wav_atomic(pred / mixture_filename(row, "enhanced"), target * 0.9, SR, subtype="FLOAT")
    out = tmp_path / "report" / "spectrograms"
    written = write_spectrogram_examples(refs, {"m": pred}, out, n_examples=2, ref_mic=1, sample_rate=SR)
    assert [p.name for p in written] == [
        "sid_s0_nids_n1_n2_rid_r1_snr_-5dB.png",
        "sid_s2_nids_n1_n2_rid_r1_snr_7.5dB.png",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted([p.name for p in written] + ["examples.csv"])
    data = pd.read_csv(out / "examples.csv")  # the figures' data: which mixtures, at which SNR
    assert list(data["snr_db"]) == [-5.0, 7.5] and list(data["mixture"]) == [p.stem for p in written]
    (pred / mixture_filename(rows[0], "enhanced")).unlink()
    with pytest.raises(Exception, match="snr_-5dB_enhanced.wav"):
        write_spectrogram_examples(refs, {"m": pred}, out, n_examples=2, sample_rate=SR)
    assert len(list(out.iterdir())) == len(written) + 1  # previous folder kept
    assert [p.name for p in tmp_path.joinpath("report").iterdir()] == ["spectrograms"]  # no temp folder left


# ------------------------------------------------------------------------------------ MLflow data
@pytest.fixture()
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def make_training_run(client, exp_id, arch: str, lr: str, val: list[float], status: str = "FINISHED") -> str:
    run = client.create_run(exp_id, tags={"se.subcommand": "fit", "se.model": arch, "mlflow.runName": f"train[{arch}]"})
    rid = run.info.run_id
    metrics = []
    for epoch, v in enumerate(val):
        step = 10 * (epoch + 1) - 1  # Lightning logs epoch metrics at the last global step of the epoch
        metrics += [
            Metric("epoch", epoch, 0, step),
            Metric("val_si_sdr", v, 0, step),
            Metric("train_loss_epoch", -v, 0, step),
        ]
    client.log_batch(
        rid,
        metrics=metrics,
        params=[
            Param("optimizer/init_args/lr", lr),
            Param("net/init_args/N", "64"),
            Param("db_url", "sqlite:///x"),
            Param("loss", "si_sdr"),
        ],
    )
    client.set_terminated(rid, status)
    return rid


def test_mlflow_curves_runs_and_test_metrics(store, tmp_path):
    client = mlflow.MlflowClient(store)
    exp = client.create_experiment("exp-r")
    a = make_training_run(client, exp, "conv_tasnet", "0.001", [1.0, 4.0, 3.5])
    b = make_training_run(client, exp, "dprnn", "0.0005", [2.0, 2.5])
    make_training_run(client, exp, "dprnn", "0.1", [9.0], status="FAILED")  # not finished: left out
    curves = learning_curves({"conv_tasnet": a, "dprnn": b}, tracking_uri=store)
    val = curves[(curves["model"] == "conv_tasnet") & (curves["metric"] == "val_si_sdr")]
    assert list(val["epoch"]) == [0, 1, 2] and list(val["value"]) == [1.0, 4.0, 3.5]
    assert set(curves["metric"]) == {"val_si_sdr", "train_loss_epoch"} and (curves["time_s"] == 0).all()
    set_run_tags({a: {"se.diagnosis": "converging"}}, tracking_uri=store)
    assert client.get_run(a).data.tags["se.diagnosis"] == "converging"
    runs = experiment_runs("exp-r", tracking_uri=store)
    assert len(runs) == 2 and runs.set_index("arch")["best_val_si_sdr"].to_dict() == {"conv_tasnet": 4.0, "dprnn": 2.5}
    assert "net.N" in runs.columns
    axes = hparam_axes(runs, "best_val_si_sdr")
    assert axes[:2] == ["arch", "optimizer.lr"] and "db_url" not in axes and "net.N" not in axes  # N does not vary
    summary = pd.DataFrame(
        {"mean": [9.1, 2.2, np.nan], "ci95": [0.5, 0.1, np.nan]},
        index=pd.Index(["si_sdr", "pesq_wb", "dnsmos_ovrl"], name="metric"),
    )
    logged = log_split_metrics(a, summary, "test", tracking_uri=store, extra={"test_real_time_factor": 0.1})
    got = client.get_run(a).data.metrics
    assert got["test_si_sdr"] == 9.1 and got["test_pesq_wb_ci95"] == 0.1 and got["test_real_time_factor"] == 0.1
    assert "test_dnsmos_ovrl" not in got and set(logged) <= set(got)
    assert summary_metrics(summary) == {"si_sdr": 9.1, "si_sdr_ci95": 0.5, "pesq_wb": 2.2, "pesq_wb_ci95": 0.1}
    run_json = tmp_path / "run.json"
    run_json.write_text(json.dumps({"model": "x"}))
    with pytest.raises(ValueError, match="run.json.*run_id"):
        read_run_json(run_json)
