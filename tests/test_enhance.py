"""``se enhance`` (se_lib/inference/enhance.py, audio_io.py): a checkpoint applied to your own recordings.

* chunking: the crossfade weights sum to one and a time-local network gives back its whole-file output
  exactly; a 30-s noisy recording enhanced in chunks (the defaults) agrees with whole-file inference to
  >= 30 dB SNR for each of the four architectures (tiny randomly initialised networks);
* formats (wav/flac/ogg) and rates (8/16/44.1/48 kHz): the output is a mono WAV at the input's rate with
  exactly the input's length, named ``<stem>_enhanced.wav`` under the input's relative folder;
* channels: ``--channels`` picks and orders, a single-channel model reads ``ref_mic``, a mismatch names
  the file, its channel count and what the model takes;
* bad inputs (missing, empty, truncated, unreadable, NaN, wrong channel count): one message naming each,
  ``fail`` writes nothing, ``skip`` enhances the rest (exit 3); a NaN met while enhancing leaves no
  partial file;
* the scores table (DNSMOS in a fresh interpreter that must not import Lightning, MLflow or matplotlib;
  SI-SDR/PESQ/STOI with ``--reference``); model URIs that are not supported yet.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fresh import modules_after
from se_lib.inference.checkpoint import LoadedNetwork, load_network
from se_lib.inference.enhance import (
    SCORES_FILE,
    Enhancer,
    chunk_layout,
    chunk_weights,
    main,
    network_grid,
    parse_channels,
    plan_channels,
)
from se_lib.models import ARCHITECTURES

REPO = Path(__file__).resolve().parent.parent
SR = 16000
# Tiny networks (fast on a CPU); the multichannel ones take 4 microphones.
SIZES = {
    "conv_tasnet": {"N": 16, "L": 16, "B": 8, "H": 16, "Sc": 8, "P": 3, "X": 2, "R": 1, "in_channels": 1},
    "ic_conv_tasnet": {"N": 16, "L": 16, "B": 8, "Cs": 4, "H": 8, "P": 3, "X": 2, "R": 1, "in_channels": 4},
    "dprnn": {"N": 16, "L": 32, "B": 8, "H": 8, "K": 120, "num_blocks": 1, "in_channels": 1},
    "wave_u_net": {"num_layers": 6, "Fc": 4, "in_channels": 4},
}
HEAVY = ("lightning", "lightning.pytorch", "mlflow", "matplotlib")


def make_checkpoint(path: Path, arch: str, seed: int = 0, sample_rate: int = SR, **overrides) -> Path:
    """A checkpoint laid out as ``se fit`` writes one, of a tiny randomly initialised ``arch`` network."""
    cls = ARCHITECTURES[arch]
    args = {**SIZES[arch], **overrides}
    torch.manual_seed(seed)
    net = cls(**args)
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            "hyper_parameters": {
                "net": {"class_path": f"{cls.__module__}.{cls.__name__}", "init_args": args},
                "sample_rate": sample_rate,
            },
        },
        path,
    )
    return path


def noisy_speech(seconds: float, sr: int = SR, channels: int = 4, seed: int = 0) -> np.ndarray:
    """``[channels, T]`` synthetic noisy speech: harmonic syllables with pitch glides and pauses, delayed per
    microphone, plus coloured noise (SNR about 10 dB)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    speech = np.zeros(n)
    pos = 0
    while pos < n:
        dur, gap = int(rng.uniform(0.15, 0.6) * sr), int(rng.uniform(0.05, 0.5) * sr)
        m = min(n, pos + dur) - pos
        tt = np.arange(m) / sr
        f0 = rng.uniform(90, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * tt))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
        speech[pos : pos + m] = harmonics * np.sin(np.pi * np.linspace(0, 1, m)) ** 2 * rng.uniform(0.3, 1.0)
        pos += dur + gap
    speech *= 0.1 / np.sqrt(np.mean(speech**2))
    white = rng.standard_normal((channels, n))
    noise = white + 0.5 * np.roll(white, 1, axis=1)
    noise *= 0.03 / noise.std()
    return (np.stack([np.roll(speech, 3 * c) for c in range(channels)]) + noise).astype(np.float32)


def write(path: Path, x: np.ndarray, sr: int = SR, subtype: str | None = None) -> Path:
    """Write channels-first ``x`` to ``path`` (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(x).T, sr, subtype=subtype)
    return path


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    ref, est = ref.astype(np.float64), est.astype(np.float64)
    err = np.sum((ref - est) ** 2)
    return float(10 * np.log10(np.sum(ref**2) / err)) if err else math.inf


def read_scores(out: Path) -> list[dict[str, str]]:
    with open(out / SCORES_FILE, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpts")
    paths = {arch: make_checkpoint(root / f"{arch}.ckpt", arch) for arch in SIZES}
    paths["mono_ref1"] = make_checkpoint(root / "mono_ref1.ckpt", "conv_tasnet", ref_mic=1)
    return paths


# --------------------------------------------------------------------------------------------- chunks
def test_chunks_cover_the_file_evenly_on_the_grid_and_their_weights_sum_to_one():
    for chunk, overlap, step in [
        (300, 50, 1),
        (300, 100, 1),
        (301, 0, 1),
        (31, 10, 1),
        (4, 1, 1),
        (300, 50, 8),
        (640, 100, 27),
    ]:
        for n in [1, 2, chunk - 1, chunk, chunk + 1, 2 * chunk - overlap, 2 * chunk + 7, 1000, 1001, 5003]:
            length, starts = chunk_layout(n, chunk, overlap, step)
            assert length < chunk + step and starts[0] == 0 and starts[-1] + length == n
            assert all(s % step == 0 for s in starts)
            hops = np.diff(starts)
            assert (hops >= overlap).all() and (length - hops >= overlap).all()  # crossfades fit, never meet
            total = np.zeros(n)
            for k, s in enumerate(starts):
                w = chunk_weights(starts, k, length, overlap if len(starts) > 1 else 0)
                assert w.shape == (length,) and (w >= 0).all() and (w <= 1).all()
                total[s : s + length] += w
            np.testing.assert_allclose(total, 1.0, atol=1e-12, err_msg=f"n={n} chunk={chunk} overlap={overlap}")
    # 60 s in 10-s chunks with 1-s crossfades: 7 chunks of 66/7 s, i.e. n + 6 overlaps computed, not 70 s
    length, starts = chunk_layout(60 * SR, 10 * SR, SR)
    assert len(starts) == 7 and length == -(-66 * SR // 7)
    with pytest.raises(ValueError, match="overlap"):
        chunk_layout(1000, 300, 101)
    # the networks' grids (samples at their rate) and the chunk starts at other rates that keep them
    grids = {arch: network_grid(ARCHITECTURES[arch](**SIZES[arch])) for arch in SIZES}
    assert grids == {"conv_tasnet": 8, "ic_conv_tasnet": 8, "dprnn": 16 * 60, "wave_u_net": 2**6}
    enhancer = Enhancer(LoadedNetwork(ARCHITECTURES["wave_u_net"](**SIZES["wave_u_net"]), SR, "w", {}))
    assert [enhancer.step(sr) for sr in (8000, 16000, 44100, 48000)] == [32, 64, 441 * 64 // 32, 3 * 64]


class _Gain(torch.nn.Module):
    """A time-local 'network': twice the reference channel (chunked output must equal the whole-file one)."""

    in_channels, ref_mic = 1, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * x[:, 0]


@pytest.mark.parametrize("sr", [SR, 44100])
def test_overlap_add_reproduces_a_time_local_network(sr):
    loaded = LoadedNetwork(_Gain(), SR, "tests._Gain", {})
    x = noisy_speech(7.3, sr, channels=2)
    chunked = Enhancer(loaded, chunk_seconds=2.0, overlap_seconds=0.5, batch_seconds=4.0).enhance_array(x, sr)
    whole = Enhancer(loaded, chunk_seconds=0).enhance_array(x, sr)
    assert chunked.shape == whole.shape == (x.shape[1],)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    if sr == SR:
        np.testing.assert_allclose(chunked, 2 * x[0], atol=1e-6)
    else:  # resampled to 16 kHz and back: the band below 8 kHz survives
        assert snr_db(whole, chunked) > 100


@pytest.mark.parametrize("arch", sorted(SIZES))
def test_chunked_enhancement_agrees_with_whole_file_inference(arch, ckpts, tmp_path):
    """30 s of 4-mic noisy speech through the file path (defaults: 20-s chunks, 1-s crossfades) and in 10-s
    chunks vs the network on the whole recording at once: >= 30 dB SNR, exactly the input's length."""
    torch.set_num_threads(2)
    x = noisy_speech(30.0)
    src = write(tmp_path / "long.wav", x, subtype="FLOAT")
    out = tmp_path / "out"
    assert main(["--model", str(ckpts[arch]), str(src), "-o", str(out), "--no-dnsmos", "-q"]) == 0
    chunked, sr = sf.read(str(out / "long_enhanced.wav"), dtype="float32")
    loaded = load_network(ckpts[arch])
    whole = Enhancer(loaded, chunk_seconds=0).enhance_array(x, SR)
    assert sr == SR and chunked.shape == whole.shape == (x.shape[1],)
    assert snr_db(whole, chunked) >= 30.0, f"{arch}, defaults: {snr_db(whole, chunked):.1f} dB"
    tens = Enhancer(loaded, chunk_seconds=10.0, overlap_seconds=1.0).enhance_array(x, SR)  # 4 chunks
    assert snr_db(whole, tens) >= 30.0, f"{arch}, 10-s chunks: {snr_db(whole, tens):.1f} dB"


# ------------------------------------------------------------------------------------- formats, rates
@pytest.mark.parametrize(
    "suffix,sr,frames",
    [(".wav", 8000, 12001), (".flac", 44100, 66150), (".ogg", 48000, 50000), (".wav", 16000, 24000)],
)
def test_formats_and_rates_keep_the_input_rate_and_length(suffix, sr, frames, ckpts, tmp_path):
    x = noisy_speech(frames / sr, sr, channels=2, seed=1)[:, :frames]
    src = write(tmp_path / "in" / f"rec{suffix}", x, sr)
    n_in = sf.info(str(src)).frames
    out = tmp_path / "out"
    assert main(["--model", str(ckpts["conv_tasnet"]), str(tmp_path / "in"), "-o", str(out), "--no-dnsmos", "-q"]) == 0
    y, sr_out = sf.read(str(out / "rec_enhanced.wav"), dtype="float32", always_2d=True)
    assert sr_out == sr and y.shape == (n_in, 1) and np.isfinite(y).all() and np.abs(y).max() > 0
    (row,) = read_scores(out)
    assert row["output"] == "rec_enhanced.wav" and int(row["sample_rate"]) == sr and row["channels"] == "2"
    assert float(row["seconds"]) == pytest.approx(n_in / sr) and float(row["rtf"]) > 0
    assert row["model_sample_rate"] == str(SR) and row["used_channels"] == "1" and row["reference_channel"] == "1"


def test_folders_are_searched_recursively_and_their_structure_kept(ckpts, tmp_path):
    x = noisy_speech(1.0, channels=1)
    rec = tmp_path / "rec"
    for rel in ("a.wav", "day1/b.flac", "day1/room2/c.ogg", "day2/d.WAV", ".hidden/e.wav", "notes/f.txt"):
        if rel.endswith(".txt"):
            (rec / rel).parent.mkdir(parents=True, exist_ok=True)
            (rec / rel).write_text("not audio")
        else:
            write(rec / rel, x)
    single = write(tmp_path / "elsewhere" / "g.wav", x)
    out = rec / "enhanced"  # inside the input folder: never taken as input
    args = ["--model", str(ckpts["conv_tasnet"]), str(rec), str(single), "-o", str(out), "--no-dnsmos", "-q"]
    assert main(args) == 0
    expected = ["a_enhanced.wav", "day1/b_enhanced.wav", "day1/room2/c_enhanced.wav", "day2/d_enhanced.wav"]
    assert files_under(out) == sorted([*expected, "g_enhanced.wav", SCORES_FILE])
    assert sorted(r["output"] for r in read_scores(out)) == sorted([*expected, "g_enhanced.wav"])
    assert main(args) == 0  # again: the outputs of the first run are not inputs of the second
    assert len(read_scores(out)) == 5
    # two inputs that would write the same file
    write(rec / "a.flac", x)
    assert main(["--model", str(ckpts["conv_tasnet"]), str(rec), "-o", str(tmp_path / "o2"), "-q"]) == 2
    assert not (tmp_path / "o2").exists()


# ----------------------------------------------------------------------------------------- channels
def test_channels_are_picked_in_order_and_mismatches_named(ckpts, tmp_path, capsys):
    x = noisy_speech(2.0, channels=6, seed=2)
    six = write(tmp_path / "six.wav", x, subtype="FLOAT")
    out = tmp_path / "out"
    model = str(ckpts["ic_conv_tasnet"])  # 4 microphones
    assert main(["--model", model, str(six), "-o", str(out), "--no-dnsmos", "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{six}: has 6 channel(s); the model takes 4 channels" in err and "--channels" in err
    assert not out.exists()
    assert main(["--model", model, str(six), "-o", str(out), "--channels", "1,3,4,6", "--no-dnsmos", "-q"]) == 0
    y, _ = sf.read(str(out / "six_enhanced.wav"), dtype="float32")
    enhancer = Enhancer(load_network(ckpts["ic_conv_tasnet"]))
    np.testing.assert_allclose(y, enhancer.enhance_array(x[[0, 2, 3, 5]], SR), atol=1e-6)
    assert not np.allclose(y, enhancer.enhance_array(x[[2, 0, 3, 5]], SR), atol=1e-4)  # the order matters
    (row,) = read_scores(out)
    assert row["used_channels"] == "1,3,4,6" and row["reference_channel"] == "1" and row["channels"] == "6"
    # --channels that cannot fit the model / the file
    assert main(["--model", model, str(six), "-o", str(out), "--channels", "1,2,3"]) == 2
    assert "--channels picks 3 channel(s); the model takes 4" in capsys.readouterr().err
    assert main(["--model", model, str(six), "-o", str(tmp_path / "o3"), "--channels", "1,2,3,9", "-q"]) == 1
    assert f"{six}: has 6 channel(s); --channels names channel 9" in capsys.readouterr().err
    assert main(["--model", model, str(six), "-o", str(out), "--channels", "1,x"]) == 2


def test_single_channel_models_read_their_reference_microphone(ckpts, tmp_path, capsys):
    x = noisy_speech(2.0, channels=4, seed=3)
    four = write(tmp_path / "four.wav", x, subtype="FLOAT")
    mono = write(tmp_path / "mono.wav", x[:1], subtype="FLOAT")
    same_weights = Enhancer(load_network(ckpts["conv_tasnet"]))  # ref_mic 0, the same seed: the same weights
    out = tmp_path / "out"
    assert main(["--model", str(ckpts["mono_ref1"]), str(four), "-o", str(out), "--no-dnsmos", "-q"]) == 0
    y, _ = sf.read(str(out / "four_enhanced.wav"), dtype="float32")
    np.testing.assert_allclose(y, same_weights.enhance_array(x[1], SR), atol=1e-6)  # channel 2 = ref_mic 1
    assert read_scores(out)[0]["reference_channel"] == "2"
    args = ["--model", str(ckpts["mono_ref1"]), str(four), "-o", str(out), "--channels", "4", "--no-dnsmos", "-q"]
    assert main(args) == 0  # one channel named: used as it is
    y, _ = sf.read(str(out / "four_enhanced.wav"), dtype="float32")
    np.testing.assert_allclose(y, same_weights.enhance_array(x[3], SR), atol=1e-6)
    assert main(["--model", str(ckpts["mono_ref1"]), str(mono), "-o", str(tmp_path / "o2"), "-q"]) == 1
    assert f"{mono}: has 1 channel(s); the model takes 1 channel, the reference microphone ref_mic=1" in (
        capsys.readouterr().err
    )
    assert parse_channels("1,3,4,5,6") == [0, 2, 3, 4, 5]
    for bad in ("0,1", "1,1", "a"):
        with pytest.raises(ValueError, match="--channels"):
            parse_channels(bad)
    assert plan_channels(6, 4, 2, [5, 0, 1, 2]).reference == 1  # ref_mic indexes the picked list


# ---------------------------------------------------------------------------------------- bad input
def _bad_inputs(folder: Path) -> dict[str, str]:
    """Each kind of bad file in ``folder``; returns name -> a phrase its error must contain."""
    x = noisy_speech(1.0, channels=4, seed=4)
    write(folder / "empty.wav", np.zeros((4, 0), np.float32))
    full = write(folder / "full.wav", x, subtype="PCM_16").read_bytes()
    (folder / "full.wav").unlink()
    (folder / "truncated.wav").write_bytes(full[: len(full) // 2])
    flac = write(folder / "cut.flac", x).read_bytes()
    (folder / "cut.flac").write_bytes(flac[: len(flac) // 2])
    (folder / "garbage.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    nan = x.copy()
    nan[2, 9000] = np.nan
    write(folder / "nan.wav", nan, subtype="FLOAT")
    write(folder / "stereo.wav", x[:2])
    return {
        "empty.wav": "empty audio",
        "truncated.wav": "truncated",
        "cut.flac": "cut.flac: ",
        "garbage.wav": "unreadable",
        "nan.wav": "non-finite samples (NaN/Inf)",
        "stereo.wav": "has 2 channel(s); the model takes 4 channels",
    }


def test_bad_inputs_are_named_in_one_message_and_fail_writes_nothing(ckpts, tmp_path, capsys):
    rec = tmp_path / "rec"
    expected = _bad_inputs(rec / "bad")
    write(rec / "good.wav", noisy_speech(1.0, channels=4, seed=5))
    out = tmp_path / "out"
    model = str(ckpts["wave_u_net"])
    missing = tmp_path / "missing.wav"
    assert main(["--model", model, str(rec), str(missing), "-o", str(out), "--no-dnsmos", "-q"]) == 1
    err = capsys.readouterr().err
    assert "7 of 8 input(s) cannot be enhanced (nothing was written)" in err
    for name, phrase in expected.items():
        line = next((ln for ln in err.splitlines() if str(rec / "bad" / name) in ln), "")
        assert phrase in line, f"{name}: {line!r}"
    assert f"{missing}: not found" in err
    assert files_under(out) == []
    # skip: the good file is enhanced, the bad ones named, exit status 3
    assert main(["--model", model, str(rec), "-o", str(out), "--on-bad-file", "skip", "--no-dnsmos", "-q"]) == 3
    assert "6 of 7 input(s) cannot be enhanced (skipped)" in capsys.readouterr().err
    assert files_under(out) == [SCORES_FILE, "good_enhanced.wav"]
    assert [r["output"] for r in read_scores(out)] == ["good_enhanced.wav"]


def test_nan_met_while_enhancing_leaves_no_partial_output(ckpts, tmp_path, monkeypatch, capsys):
    """A NaN the check pass did not see (here: its decode scan turned off) stops the run in ``fail`` mode
    without a partial file; earlier files are complete."""
    import se_lib.inference.enhance as enhance

    original = enhance.probe_audio
    monkeypatch.setattr(enhance, "probe_audio", lambda path, scan=True: original(path, scan=False))
    x = noisy_speech(8.0, channels=1, seed=6)
    x[0, 7 * SR] = np.nan  # in the last of four 3-s chunks
    write(tmp_path / "rec" / "a_ok.wav", x[:, :SR])
    write(tmp_path / "rec" / "b_nan.wav", x, subtype="FLOAT")
    out = tmp_path / "out"
    args = ["--model", str(ckpts["conv_tasnet"]), str(tmp_path / "rec"), "-o", str(out), "--no-dnsmos", "-q"]
    assert main([*args, "--chunk-seconds", "3", "--overlap-seconds", "0.5"]) == 1
    assert "b_nan.wav: non-finite samples (NaN/Inf): 1 in a block, the first at 7.000 s" in capsys.readouterr().err
    assert files_under(out) == ["a_ok_enhanced.wav", SCORES_FILE]  # no b_nan_enhanced.wav, no temporary


def test_dry_run_writes_nothing_and_unknown_models_are_named(ckpts, tmp_path, capsys, monkeypatch):
    src = write(tmp_path / "a.wav", noisy_speech(0.5, channels=1))
    out = tmp_path / "out"
    assert main(["--model", str(ckpts["conv_tasnet"]), str(src), "-o", str(out), "--dry-run", "-q"]) == 0
    assert str(out / "a_enhanced.wav") in capsys.readouterr().out and not out.exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # an empty store
    for uri in ("runs:/0123abcd/model", "models:/se-dprnn/3", "models:/se-dprnn@champion"):  # tests/test_pyfunc.py
        assert main(["--model", uri, str(src), "-o", str(out)]) == 2
        assert f"--model {uri}: " in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "nope.ckpt"), str(src), "-o", str(out)]) == 2
    assert "nope.ckpt not found" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------------------------------- scores
def test_reference_scores_pair_clean_files_by_relative_path(ckpts, tmp_path):
    rng = np.random.default_rng(7)
    clean = noisy_speech(3.0, channels=1, seed=7)[0]
    clean *= 0.9 / np.abs(clean).max()
    noisy = clean + 0.05 * rng.standard_normal(clean.shape).astype(np.float32)
    write(tmp_path / "rec" / "s1" / "u1.wav", noisy[None], subtype="FLOAT")
    write(tmp_path / "rec" / "u2.wav", noisy[None], subtype="FLOAT")
    write(tmp_path / "clean" / "s1" / "u1.flac", clean[None])
    out = tmp_path / "out"
    args = ["--model", str(ckpts["conv_tasnet"]), str(tmp_path / "rec"), "-o", str(out), "--no-dnsmos", "-q"]
    assert main([*args, "--reference", str(tmp_path / "clean")]) == 0
    rows = {r["output"]: r for r in read_scores(out)}
    u1, u2 = rows["s1/u1_enhanced.wav"], rows["u2_enhanced.wav"]
    assert u1["reference"] == str(tmp_path / "clean" / "s1" / "u1.flac") and u2["reference"] == ""
    assert float(u1["input_si_sdr"]) > 5 and float(u1["si_sdri"]) == pytest.approx(
        float(u1["si_sdr"]) - float(u1["input_si_sdr"]), abs=1e-4
    )
    for col in ("pesq_wb", "input_pesq_wb", "stoi", "input_stoi", "estoi", "input_estoi"):
        assert np.isfinite(float(u1[col])), col
    # a reference of another length is a bad input
    write(tmp_path / "clean" / "u2.wav", clean[None, : SR // 2])
    assert main([*args, "--reference", str(tmp_path / "clean")]) == 1


def test_dnsmos_scores_and_no_lightning_mlflow_matplotlib_in_a_fresh_interpreter(ckpts, tmp_path):
    x = noisy_speech(3.0, sr=44100, channels=4, seed=8)
    write(tmp_path / "rec.flac", x, 44100)
    out = tmp_path / "out"
    code = (
        "from se_lib.inference.enhance import main\n"
        f"rc = main(['--model', {str(ckpts['ic_conv_tasnet'])!r}, {str(tmp_path / 'rec.flac')!r}, "
        f"'-o', {str(out)!r}, '-q'])\n"
        "print(rc)\n"
    )
    printed, loaded = modules_after(code, HEAVY)
    assert (printed.strip().splitlines()[-1], loaded) == ("0", []), (printed, loaded)
    (row,) = read_scores(out)
    for col in ("input_dnsmos_sig", "input_dnsmos_bak", "input_dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"):
        assert 1.0 <= float(row[col]) <= 5.0, (col, row[col])
    assert row["sample_rate"] == "44100" and row["used_channels"] == "1,2,3,4"
