"""Renderer: SNR definition, alignment with plain convolutions, clipping guard, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from se_lib.data.audio import AudioError, write_wav_atomic
from se_lib.data.render import PEAK_LIMIT, Renderer


def _snr(target: torch.Tensor, noise_ref: torch.Tensor) -> float:
    t, n = target.double(), noise_ref.double()
    return float(10 * torch.log10((t**2).sum() / (n**2).sum()))


def test_snr_channels_and_clipping_on_all_rows(world):
    root, config, rows = world.root, world.config, world.rows()
    r = Renderer(root)
    length = int(config["mixtures"]["seconds"] * config["sample_rate"])
    for row in rows:
        out = r.render(row)
        assert out.noisy.shape == (4, length) and out.noise.shape == (4, length)
        assert out.target.shape == (length,)
        assert out.noisy.dtype == out.target.dtype == out.noise.dtype == torch.float32
        assert abs(_snr(out.target, out.noise[row["ref_mic"]]) - row["snr_db"]) < 0.1
        assert abs(out.snr_db - row["snr_db"]) < 0.1
        assert out.noisy.abs().max() <= PEAK_LIMIT + 1e-6 and out.target.abs().max() <= PEAK_LIMIT + 1e-6
        assert 0 < out.scale <= 1.0
        # the channels differ (a real array, not copies)
        assert not torch.allclose(out.noisy[0], out.noisy[1])
    over = r.render(rows[0], snr_db=-3.3)
    assert abs(_snr(over.target, over.noise[rows[0]["ref_mic"]]) + 3.3) < 0.1


def test_matches_plain_convolution(world):
    """noisy - noise is the speech convolved with the RIRs, target = speech * target_rir, and the
    noise is the looped noises convolved with their RIRs (with the pre-roll), up to one gain."""
    root, rows = world.root, world.rows()
    row = next(r for r in rows if r["speech_start"] > 0) if any(r["speech_start"] > 0 for r in rows) else rows[0]
    out = Renderer(root).render(row)
    with np.load(root / row["rir_path"]) as z:
        rir, target_rir = z["rir"].astype(np.float64), z["target_rir"].astype(np.float64)
    T, L = row["length"], rir.shape[-1]
    speech, _ = sf.read(root / row["speech_path"], dtype="float64")
    seg = np.zeros(T)
    piece = speech[row["speech_offset"] : row["speech_offset"] + T - row["speech_start"]]
    seg[row["speech_start"] : row["speech_start"] + len(piece)] = piece
    s = out.scale
    speech_img = np.stack([np.convolve(seg, rir[0, c])[:T] for c in range(rir.shape[1])]) * s
    np.testing.assert_allclose((out.noisy - out.noise).double().numpy(), speech_img, atol=2e-5)
    np.testing.assert_allclose(out.target.double().numpy(), np.convolve(seg, target_rir)[:T] * s, atol=2e-5)
    noise_img = np.zeros((rir.shape[1], T))
    for k, g in ((1, 1.0), (2, 10 ** (row["noise2_rel_db"] / 20))):
        x, _ = sf.read(root / row[f"noise{k}_path"], dtype="float64")
        ext = x[(row[f"noise{k}_offset"] - (L - 1) + np.arange(T + L - 1)) % len(x)]
        noise_img += g * np.stack([np.convolve(ext, rir[k, c])[L - 1 : L - 1 + T] for c in range(rir.shape[1])])
    got = out.noise.double().numpy()
    gain = float(np.sum(got * noise_img) / np.sum(noise_img**2))
    np.testing.assert_allclose(got, gain * noise_img, atol=2e-5)


def test_deterministic(world):
    root, rows = world.root, world.rows()
    a, b = Renderer(root), Renderer(root)
    for row in rows[:5]:
        x, y = a.render(row), b.render(row)
        assert torch.equal(x.noisy, y.noisy) and torch.equal(x.target, y.target) and x.scale == y.scale
        z = a.render(row)  # cached path gives the same arrays
        assert torch.equal(x.noisy, z.noisy)


def test_clipping_guard_scales_everything(world, tmp_path):
    root, rows = world.root, world.rows()
    row = dict(rows[0])
    speech, sr = sf.read(root / row["speech_path"], dtype="float32")
    loud = tmp_path / "loud.wav"
    write_wav_atomic(loud, np.clip(speech / np.abs(speech).max() * 0.999, -1, 1), sr)
    row["speech_path"] = str(loud)  # absolute paths are used as they are
    out = Renderer(root).render(row, snr_db=-5.0)
    assert out.scale < 1.0
    peak = max(float(out.noisy.abs().max()), float(out.target.abs().max()))
    assert abs(peak - PEAK_LIMIT) < 1e-5
    assert abs(out.snr_db + 5.0) < 0.1


def test_errors_name_the_file(world):
    root, rows = world.root, world.rows()
    row = dict(rows[0], rir_path="results/rooms/rirs/nope.npz")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        Renderer(root).render(row)
    with pytest.raises(AudioError, match="missing.wav"):
        Renderer(root).render(dict(rows[0], noise1_path="results/corpus/noise/missing.wav"))
    silent = dict(rows[0], speech_offset=10**7, speech_start=0)  # crop beyond the utterance
    with pytest.raises(ValueError, match="silent"):
        Renderer(root).render(silent)


def test_multichannel_recording_decoded_once_for_all_its_channels(tmp_path, monkeypatch):
    """A recorded multichannel file enters the cache with every channel at the first channel asked for (one
    decode + one resampling call), and each cached channel equals that channel resampled on its own."""
    import se_lib.data.render as render
    from se_lib.data.audio import resample_audio

    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal((3, 48000))).astype(np.float32)
    sf.write(tmp_path / "rec.wav", x.T, 48000, subtype="FLOAT")
    reads = []
    real_read = render.read_audio
    monkeypatch.setattr(render, "read_audio", lambda *a, **k: reads.append(a[0]) or real_read(*a, **k))
    r = Renderer(tmp_path)
    chans = [r.channel("rec.wav", c, 48000, 16000) for c in (2, 0, 1)]
    assert len(reads) == 1
    for c, got in zip((2, 0, 1), chans, strict=True):
        np.testing.assert_allclose(got, resample_audio(x[c], 48000, 16000), atol=1e-6)
    with pytest.raises(AudioError, match="has 3 channel"):
        Renderer(tmp_path).channel("rec.wav", 3, 48000, 16000)
