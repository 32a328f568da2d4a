"""Metrics: SI-SDR vs torchmetrics, PESQ/STOI wrappers vs direct calls, DNSMOS vs speechmos, batch scorer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from se_lib.metrics.pesq_wb import pesq_wb, pesq_wb_with_reason
from se_lib.metrics.scorer import METRIC_COLUMNS, ScoringError, score_directory, summarize
from se_lib.metrics.si_sdr import si_sdr, si_sdr_improvement
from se_lib.metrics.stoi import estoi, stoi

SR = 16000


# --------------------------------------------------------------------------------------------------
# synthetic speech (eSpeak NG through se_lib.data.espeak), resampled to 16 kHz
# --------------------------------------------------------------------------------------------------
def _speech(text: str, n_samples: int | None = None, voice: str = "en", seed: int = 0) -> np.ndarray:
    from se_lib.data.audio import resample_audio
    from se_lib.data.espeak import ESPEAK_SAMPLE_RATE, synthesize

    x = resample_audio(synthesize(text, voice, seed=seed), ESPEAK_SAMPLE_RATE, SR) * np.float32(0.7)
    if n_samples is not None:
        x = np.pad(x, (0, max(0, n_samples - len(x))))[:n_samples]
    return x.astype(np.float32)


def _add_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    noise *= np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return _speech("Speech enhancement metrics need real speech to be meaningful.", seed=1)


# --------------------------------------------------------------------------------------------------
# SI-SDR
# --------------------------------------------------------------------------------------------------
def test_si_sdr_equals_torchmetrics():
    import torch
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as tm_si_sdr

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 8000)) + 0.3  # non-zero mean: zero_mean matters
    est = 0.5 * ref + 0.3 * rng.standard_normal((4, 8000)) - 0.1
    expected = tm_si_sdr(torch.from_numpy(est), torch.from_numpy(ref), zero_mean=True).numpy()
    np.testing.assert_allclose(si_sdr(est, ref), expected, rtol=0, atol=1e-9)
    # the training metric (masked torch SI-SDR of se_lib.train.losses) gives the scorer's numbers
    from se_lib.train.losses import si_sdr as train_si_sdr

    np.testing.assert_allclose(train_si_sdr(torch.from_numpy(est), torch.from_numpy(ref)).numpy(), expected, atol=1e-6)
    expected_nzm = tm_si_sdr(torch.from_numpy(est), torch.from_numpy(ref), zero_mean=False).numpy()
    np.testing.assert_allclose(si_sdr(est, ref, zero_mean=False), expected_nzm, atol=1e-9)
    # float32 tensors: torchmetrics uses float32 eps/arithmetic, we use float64 -> tiny differences only
    e32 = tm_si_sdr(torch.from_numpy(est).float(), torch.from_numpy(ref).float(), zero_mean=True).numpy()
    np.testing.assert_allclose(si_sdr(est.astype(np.float32), ref.astype(np.float32)), e32, atol=1e-3)


def test_si_sdr_definition_scale_invariance_and_improvement():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(16000)
    ref -= ref.mean()
    noise = rng.standard_normal(16000)
    noise -= noise.mean()
    noise -= noise @ ref / (ref @ ref) * ref  # orthogonal to ref
    noise *= np.sqrt((ref @ ref) / (noise @ noise) / 10.0)  # exactly 10 dB
    assert si_sdr(ref + noise, ref) == pytest.approx(10.0, abs=1e-9)
    assert si_sdr(-3.0 * (ref + noise) + 2.0, ref) == pytest.approx(10.0, abs=1e-9)  # scale + offset invariant
    assert isinstance(si_sdr(ref, ref), float)
    mix = ref + 3 * noise
    assert si_sdr_improvement(ref + noise, ref, mix) == pytest.approx(si_sdr(ref + noise, ref) - si_sdr(mix, ref))
    assert si_sdr_improvement(mix, ref, mix) == 0.0
    with pytest.raises(ValueError, match="shape"):
        si_sdr(ref[:-1], ref)


# --------------------------------------------------------------------------------------------------
# PESQ / STOI
# --------------------------------------------------------------------------------------------------
def test_pesq_wb_equals_direct_pesq(speech):
    from pesq import pesq

    deg = _add_noise(speech, 5.0, seed=2)
    value = pesq_wb(speech, deg, SR)
    assert value == pesq(SR, speech, deg, "wb")
    assert 1.0 < value < 4.7
    # other rates are resampled to 16 kHz first
    from se_lib.data.audio import resample_audio

    v8 = pesq_wb(resample_audio(speech, SR, 8000), resample_audio(deg, SR, 8000), 8000)
    assert 1.0 < v8 < 4.7


def test_pesq_failures_become_nan_with_reason(speech):
    value, reason = pesq_wb_with_reason(speech[:2000], speech[:2000], SR)  # 0.125 s: buffer too short
    assert math.isnan(value) and "BufferTooShort" in reason
    value, reason = pesq_wb_with_reason(np.zeros(SR, np.float32), speech[:SR], SR)  # silent reference
    assert math.isnan(value) and "zero" in reason
    with pytest.raises(ValueError, match="non-finite"):
        pesq_wb(np.full(SR, np.nan, np.float32), speech[:SR], SR)


def test_stoi_and_estoi_equal_direct_pystoi(speech):
    from pystoi import stoi as pystoi

    deg = _add_noise(speech, 0.0, seed=3)
    assert stoi(speech, deg, SR) == pystoi(speech, deg, SR, extended=False)
    assert estoi(speech, deg, SR) == pystoi(speech, deg, SR, extended=True)
    assert 0.0 < estoi(speech, deg, SR) < stoi(speech, deg, SR) < 1.0
    # pystoi returns 0 for a silent reference and warns + returns 1e-5 for too few speech frames: NaN here
    assert math.isnan(stoi(np.zeros(SR, np.float32), speech[:SR], SR))
    short = speech[SR // 2 : SR // 2 + SR // 5]
    with pytest.warns(RuntimeWarning, match="Not enough STFT frames"):
        assert pystoi(short, short, SR) == pytest.approx(1e-5)
    assert math.isnan(stoi(short, short, SR)) and math.isnan(estoi(short, short, SR))


# --------------------------------------------------------------------------------------------------
# DNSMOS
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow  # the reference implementation (speechmos + librosa) on every utterance
def test_dnsmos_matches_speechmos(speech):
    from speechmos import dnsmos as speechmos_dnsmos

    from se_lib.metrics.dnsmos import DNSMOS

    ours = DNSMOS(num_threads=None)
    padded = np.pad(speech, (0, 3 * SR))
    cases = {
        # exactly 2.9 s (a whole number of 10 ms hops): tiled to 11.6 s, 2 windows, periodic trunk path
        "2.9s": padded[:46400],
        # 2.9 s + 7 samples: 2 overlapping windows sharing one trunk span, window edges recomputed
        "2.9s+7": _add_noise(padded[:46407], 10.0, seed=4),
        # 2.3 s + 3 samples: tiled to 9.2 s, a single window (uncut-model path)
        "2.3s+3": padded[:36803],
    }
    for name, x in cases.items():
        x = np.clip(x, -1, 1)
        ref = speechmos_dnsmos.run(x, SR)
        got = ours.score(x, SR)
        for ours_value, key in (
            (got.sig, "sig_mos"),
            (got.bak, "bak_mos"),
            (got.ovrl, "ovrl_mos"),
            (got.p808, "p808_mos"),
        ):
            assert abs(ours_value - float(ref[key])) <= 1e-5, (name, key, ours_value, ref[key])
    # personalized DNSMOS (pDNSMOS model, same cut points)
    x = np.clip(cases["2.9s+7"], -1, 1)
    ref = speechmos_dnsmos.run(x, SR, model_type="dnsmos_personalized")
    got = DNSMOS(personalized=True, num_threads=None).score(x, SR)
    for ours_value, key in ((got.sig, "sig_mos"), (got.bak, "bak_mos"), (got.ovrl, "ovrl_mos")):
        assert abs(ours_value - float(ref[key])) <= 1e-5, ("personalized", key, ours_value, ref[key])
    with pytest.raises(ValueError, match="empty"):
        ours.score(np.zeros(0, np.float32))


def test_dnsmos_graph_cut_points_are_checked():
    """The sub-graph cut refuses a cut that would leave part of the model reading the original input."""
    import onnx

    from se_lib.metrics.dnsmos import model_dir, subgraph

    model = onnx.load(str(model_dir() / "dnsmos_models" / "sig_bak_ovr.onnx"))
    first_slice = next(n for n in model.graph.node if n.op_type == "Slice").output[0]
    concat = next(n for n in model.graph.node if n.op_type == "Concat").output[0]
    # the framing Concat reads two slices of the waveform: cutting at one leaves the other on input_1
    with pytest.raises(ValueError, match=r"depends on \['input_1'\]"):
        subgraph(model, first_slice, ["N", 1], concat, ["N", "F", 320])
    with pytest.raises(ValueError, match="no node produces tensor 'nope'"):
        subgraph(model, "nope", ["N", 1], concat, ["N", "F", 320])
    cut = onnx.load_from_string(subgraph(model, concat, ["N", "F", 320], model.graph.output[0].name, ["N", 3]))
    assert [i.name for i in cut.graph.input] == [concat] and len(cut.graph.node) < len(model.graph.node)


def test_dnsmos_features_equal_librosa():
    import librosa
    from speechmos.dnsmos import DNSMOS as SpeechmosDNSMOS

    from se_lib.metrics.dnsmos import log_mel_p808, mel_filterbank

    np.testing.assert_allclose(mel_filterbank(), librosa.filters.mel(sr=SR, n_fft=321, n_mels=120), atol=1e-7)
    seg = (0.1 * np.random.default_rng(5).standard_normal(144000)).astype(np.float32)
    expected = SpeechmosDNSMOS.audio_melspec(None, seg)  # method does not use self
    np.testing.assert_allclose(log_mel_p808(seg[None])[0], expected, atol=1e-4)


# --------------------------------------------------------------------------------------------------
# Batch scorer
# --------------------------------------------------------------------------------------------------
def _write_mixture(
    folder: Path, i: int, target: np.ndarray, noisy: np.ndarray, enhanced: np.ndarray | None, snr: str = "5"
) -> str:
    stem = f"sid_s{i}_nids_n{i}-a_n{i}-b_rid_r{i % 2}_snr_{snr}dB"
    sf.write(folder / f"{stem}_target.wav", target, SR, subtype="FLOAT")
    sf.write(folder / f"{stem}_noisy.wav", noisy.T, SR, subtype="FLOAT")  # [T, C]
    if enhanced is not None:
        sf.write(folder / f"{stem}_enhanced.wav", enhanced, SR, subtype="FLOAT")
    return stem


@pytest.fixture(scope="module")
def pred_dir(tmp_path_factory) -> Path:
    """Six 1 s mixtures (3 mics, reference mic 1): enhanced = target + a little noise."""
    folder = tmp_path_factory.mktemp("pred")
    texts = ["One two three.", "Hello world.", "Good morning.", "Thank you.", "See you soon.", "Red and blue."]
    for i, text in enumerate(texts):
        target = _speech(text, SR, seed=i)
        channels = [np.roll(target, 3 * c) for c in range(3)]
        noisy = np.stack([_add_noise(ch, float(i - 2), seed=10 * i + c) for c, ch in enumerate(channels)])
        noisy[1] = _add_noise(target, float(i - 2), seed=10 * i + 1)
        enhanced = _add_noise(target, 15.0, seed=100 + i)
        _write_mixture(folder, i, target, noisy, enhanced, snr=f"{i - 2}" if i != 5 else "-2.5")
    return folder


def test_scorer_end_to_end_both_modes(pred_dir, tmp_path):
    out, summary_path = tmp_path / "scores" / "per_file.tsv", tmp_path / "scores" / "summary.tsv"
    df = score_directory(pred_dir, out, summary_path, mode="enhanced", ref_mic=1, threads=2, progress=False)
    metric_cols = [c for cols in METRIC_COLUMNS.values() for c in cols]
    assert list(df.columns) == ["mixture", "sid", "nid1", "nid2", "rid", "snr_db", *metric_cols]
    assert len(df) == 6 and df["sid"].tolist() == [f"s{i}" for i in range(6)]
    assert sorted(df["snr_db"]) == [-2.5, -2.0, -1.0, 0.0, 1.0, 2.0]
    assert df["nid2"].iloc[0] == "n0-b"
    assert not df[metric_cols].isna().any().any()
    assert (df["si_sdr"] > 12).all() and (df["si_sdri"] > 10).all()
    assert df["pesq_wb"].between(1, 4.7).all() and df["stoi"].between(0.5, 1).all()
    assert df["dnsmos_ovrl"].between(1, 5).all() and df["dnsmos_p808"].between(1, 5).all()
    import pandas as pd

    on_disk = pd.read_csv(out, sep="\t", dtype={"sid": str, "rid": str})
    np.testing.assert_allclose(on_disk["si_sdr"], df["si_sdr"], rtol=1e-5)
    summary = pd.read_csv(summary_path, sep="\t")
    assert summary["metric"].tolist() == metric_cols
    assert summary.columns.tolist() == ["metric", "mean", "ci95", "count", "nan_count"]
    assert (summary["count"] == 6).all() and (summary["nan_count"] == 0).all()
    row = summary.set_index("metric").loc["si_sdr"]
    from scipy import stats

    assert row["mean"] == pytest.approx(df["si_sdr"].mean(), rel=1e-5)
    assert row["ci95"] == pytest.approx(stats.t.ppf(0.975, 5) * df["si_sdr"].std(ddof=1) / math.sqrt(6), rel=1e-5)
    assert not list(out.parent.glob("*.tmp"))

    # noisy baseline: reference mic of the noisy file vs target, sequential, without DNSMOS
    base = score_directory(
        pred_dir, None, None, mode="noisy", ref_mic=1, threads=1, metrics=("si_sdr", "pesq", "stoi"), progress=False
    )
    assert list(base.columns)[6:] == ["si_sdr", "si_sdri", "pesq_wb", "stoi", "estoi"]
    assert (base["si_sdri"] == 0).all()
    np.testing.assert_allclose(df["si_sdr"] - df["si_sdri"], base["si_sdr"], atol=1e-9)  # SI-SDRi baseline
    assert (df["pesq_wb"] > base["pesq_wb"]).all()


def test_scorer_counts_unscorable_files_as_nan(tmp_path, speech):
    target = speech[:SR]
    for i in range(2):
        _write_mixture(tmp_path, i, target, np.stack([_add_noise(target, 0, seed=i)] * 2), target + 0.01)
    silent = np.zeros(SR, np.float32)  # no reference (a real recording's target): intrusive metrics are NaN
    _write_mixture(tmp_path, 2, silent, np.stack([_add_noise(target, 0, seed=7)] * 2), target)
    df = score_directory(
        tmp_path, tmp_path / "o.tsv", tmp_path / "s.tsv", metrics=("pesq", "stoi", "si_sdr"), threads=0, progress=False
    )  # in-process
    assert df.loc[df["sid"] == "s2", ["pesq_wb", "stoi", "estoi", "si_sdr", "si_sdri"]].isna().all(axis=None)
    summary = summarize(df).set_index("metric")
    assert summary.loc["pesq_wb", "nan_count"] == 1 and summary.loc["pesq_wb", "count"] == 2
    assert summary.loc["stoi", "nan_count"] == 1 and summary.loc["si_sdr", "nan_count"] == 1
    assert df.loc[df["sid"] != "s2", ["pesq_wb", "stoi", "si_sdr"]].notna().all(axis=None)


@pytest.mark.parametrize(
    "problem", ["corrupt", "empty", "nan", "rate", "stereo_target", "length", "badname", "missing"]
)
def test_scorer_names_the_bad_file(tmp_path, problem):
    x = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    stem = _write_mixture(tmp_path, 0, x, np.stack([x, x]), x)
    bad = tmp_path / f"{stem}_enhanced.wav"
    if problem == "corrupt":
        bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage")
    elif problem == "empty":
        sf.write(bad, np.zeros(0, np.float32), SR, subtype="FLOAT")
    elif problem == "nan":
        y = x.copy()
        y[100] = np.nan
        sf.write(bad, y, SR, subtype="FLOAT")
    elif problem == "rate":
        sf.write(bad, x, 8000, subtype="FLOAT")
    elif problem == "stereo_target":
        bad = tmp_path / f"{stem}_target.wav"
        sf.write(bad, np.stack([x, x], 1), SR, subtype="FLOAT")
    elif problem == "length":
        sf.write(bad, x[:-10], SR, subtype="FLOAT")
    elif problem == "badname":
        bad = tmp_path / "sid_s0_oops.wav"
        sf.write(bad, x, SR)
    elif problem == "missing":
        bad.unlink()
    with pytest.raises(ScoringError) as info:
        score_directory(tmp_path, tmp_path / "out.tsv", tmp_path / "sum.tsv", metrics=("si_sdr",), progress=False)
    assert bad.name in str(info.value)
    assert not (tmp_path / "out.tsv").exists() and not (tmp_path / "sum.tsv").exists()


def test_scorer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ScoringError, match="not found"):
        score_directory(tmp_path / "nope", None, None, progress=False)
    with pytest.raises(ScoringError, match="no prediction wavs"):
        score_directory(tmp_path, None, None, progress=False)
    with pytest.raises(ValueError, match="metrics"):
        score_directory(tmp_path, None, None, metrics=("mos",), progress=False)
    x = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    _write_mixture(tmp_path, 0, x, np.stack([x, x]), x)
    with pytest.raises(ScoringError, match="ref_mic 2"):
        score_directory(tmp_path, None, None, ref_mic=2, metrics=("si_sdr",), progress=False)


def test_scorer_cli(pred_dir, tmp_path, capsys):
    from se_lib.metrics.scorer import main

    rc = main(
        [
            str(pred_dir),
            "--out",
            str(tmp_path / "o.tsv"),
            "--summary",
            str(tmp_path / "s.tsv"),
            "--mode",
            "noisy",
            "--ref-mic",
            "1",
            "--metrics",
            "si_sdr",
            "--no-progress",
        ]
    )
    assert rc == 0 and (tmp_path / "o.tsv").exists()
    assert "si_sdri" in capsys.readouterr().out
    assert main([str(tmp_path / "missing"), "--out", "o.tsv", "--summary", "s.tsv"]) == 2


def test_real_recording_without_reference_gets_dnsmos_only(tmp_path, speech):
    """A recorded mixture without a clean reference (CHiME-4 et05_real, DNS real_recordings) has an all-zero
    target file: its intrusive scores are NaN with the reason, DNSMOS still scores the estimate."""
    noisy = _add_noise(speech[: 2 * SR], 5, seed=3)
    _write_mixture(tmp_path, 0, np.zeros(2 * SR, np.float32), np.stack([noisy, noisy]), noisy)
    df = score_directory(tmp_path, tmp_path / "o.tsv", tmp_path / "s.tsv", threads=0, progress=False)
    row = df.iloc[0]
    assert np.isnan(row[["si_sdr", "si_sdri", "pesq_wb", "stoi", "estoi"]].astype(float)).all()
    assert np.isfinite(row[["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"]].astype(float)).all()
