"""Unit tests for se_lib.data.audio: validated reading, resampling, atomic PCM/float writing."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import soundfile as sf

from se_lib.data.audio import (
    AudioError,
    audio_info,
    normalize_rms,
    read_audio,
    resample_audio,
    rms_dbfs,
    trim_silence,
    write_wav_atomic,
)


def _tone(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _leftovers(directory) -> list[str]:
    return [p for p in os.listdir(directory) if p.startswith(".")]


# ------------------------------------------------------------------------------ writing ----


def test_pcm16_roundtrip_exact_and_idempotent(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.9, 0.9, 4000).astype(np.float32)
    p = write_wav_atomic(tmp_path / "a.wav", x, 16000)
    info = audio_info(p)
    assert (info.sample_rate, info.channels, info.frames, info.subtype) == (16000, 1, 4000, "PCM_16")
    y, sr = read_audio(p)
    assert sr == 16000 and y.dtype == np.float32 and y.shape == (4000,)
    assert np.max(np.abs(y - x)) <= 0.5 / 32768 + 1e-9  # rounding, no gain error
    write_wav_atomic(tmp_path / "b.wav", y, 16000)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert _leftovers(tmp_path) == []


def test_channels_first_multichannel_and_channel0(tmp_path, caplog):
    x = np.stack([_tone(f, 16000, 0.25) for f in (300, 500, 700)])  # [3, T]
    p = write_wav_atomic(tmp_path / "m.wav", x, 16000)
    assert audio_info(p).channels == 3
    y, _ = read_audio(p, mono=False)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1 / 32768)
    with caplog.at_level(logging.WARNING, logger="se_lib.data.audio"):
        y0, _ = read_audio(p, mono=True)
    np.testing.assert_allclose(y0, x[0], atol=1 / 32768)
    assert "channel 0" in caplog.text and "m.wav" in caplog.text
    y1, _ = read_audio(write_wav_atomic(tmp_path / "mono.wav", x[0], 16000), mono=False)
    assert y1.shape == (1, x.shape[1])


def test_clipping_saturates_instead_of_wrapping(tmp_path):
    p = write_wav_atomic(tmp_path / "c.wav", np.array([1.5, -1.5, 0.25, 1.0], dtype=np.float32), 8000)
    pcm, _ = sf.read(p, dtype="int16")
    assert pcm.tolist() == [32767, -32768, 8192, 32767]


def test_float_subtype_and_torch_input(tmp_path):
    torch = pytest.importorskip("torch")
    x = torch.linspace(-2.0, 2.0, 100).reshape(1, 100)  # FLOAT keeps values beyond full scale
    p = write_wav_atomic(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    y, _ = read_audio(p, mono=False)
    np.testing.assert_array_equal(y, x.numpy())


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros((4000, 2), np.float32), "channels-first"),
        (np.array([0.1, np.nan, 0.2], np.float32), "non-finite"),
        (np.zeros(0, np.float32), "empty"),
        (np.zeros((2, 2, 10), np.float32), "shape"),
    ],
)
def test_write_rejects_bad_data_and_keeps_old_file(tmp_path, data, match):
    target = tmp_path / "keep.wav"
    write_wav_atomic(target, _tone(440, 8000, 0.1), 8000)
    before = target.read_bytes()
    with pytest.raises(ValueError, match=match):
        write_wav_atomic(target, data, 8000)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_write_rejects_unknown_extension_and_subtype(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        write_wav_atomic(tmp_path / "x.mp9", _tone(440, 8000, 0.1), 8000)
    with pytest.raises(ValueError, match="subtype"):
        write_wav_atomic(tmp_path / "x.wav", _tone(440, 8000, 0.1), 8000, subtype="VORBIS")


def test_write_creates_parent_dirs(tmp_path):
    p = write_wav_atomic(tmp_path / "a" / "b" / "c.wav", _tone(440, 8000, 0.1), 8000)
    assert p.is_file()


# ------------------------------------------------------------------------------ reading ----


def _bad_files(d):
    d.mkdir(parents=True, exist_ok=True)
    (d / "corrupt.wav").write_bytes(np.random.default_rng(1).bytes(2048))
    sf.write(d / "empty.wav", np.zeros(0, np.float32), 16000, subtype="PCM_16")
    nan = _tone(440, 16000, 0.1)
    nan[100] = np.nan
    sf.write(d / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(d / "silent.wav", np.zeros(1600, np.float32), 16000, subtype="PCM_16")
    return d


@pytest.mark.parametrize(
    "name, reason",
    [
        ("corrupt.wav", "unreadable"),
        ("empty.wav", "empty"),
        ("nan.wav", "non-finite"),
        ("silent.wav", "silent"),
        ("missing.wav", "not found"),
    ],
)
def test_read_errors_name_the_path(tmp_path, name, reason):
    d = _bad_files(tmp_path / "bad")
    with pytest.raises(AudioError, match=reason) as err:
        read_audio(d / name)
    assert str(err.value).startswith(str(d / name))
    assert err.value.path == str(d / name)


def test_audio_error_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(AudioError("a/b.wav", "silent audio")))
    assert isinstance(err, AudioError) and (err.path, err.reason) == ("a/b.wav", "silent audio")
    assert str(err) == "a/b.wav: silent audio"


def test_silence_check_can_be_disabled(tmp_path):
    d = _bad_files(tmp_path / "bad")
    x, _ = read_audio(d / "silent.wav", min_peak=None)
    assert x.shape == (1600,) and not x.any()


def test_channel_and_rate_expectations(tmp_path):
    p = write_wav_atomic(tmp_path / "s.wav", np.stack([_tone(440, 8000, 0.2)] * 2), 8000)
    with pytest.raises(AudioError, match="2 channels, expected 4"):
        read_audio(p, channels=4)
    with pytest.raises(AudioError, match="sample rate 8000 Hz, expected 16000"):
        read_audio(p, sample_rate=16000, resample=False)


def test_read_resamples_and_preserves_frequency(tmp_path):
    p = write_wav_atomic(tmp_path / "t.wav", _tone(1000, 22050, 1.0), 22050)
    y, sr = read_audio(p, sample_rate=16000)
    assert sr == 16000 and abs(y.shape[0] - 16000) <= 1
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    peak_hz = np.argmax(spec) * sr / y.size
    assert abs(peak_hz - 1000) < 3


def test_resample_matches_torchaudio_functional():
    torch = pytest.importorskip("torch")
    import torchaudio.functional as AF

    x = np.random.default_rng(0).standard_normal((2, 8000))
    ours = resample_audio(x, 8000, 16000)
    ref = AF.resample(torch.from_numpy(x), 8000, 16000).numpy()
    assert ours.shape == ref.shape == (2, 16000) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    np.testing.assert_array_equal(resample_audio(x, 8000, 8000), x.astype(np.float32))


# ------------------------------------------------------------------------------ helpers ----


def test_trim_silence_keeps_margin():
    sr = 16000
    active = _tone(300, sr, 0.5)
    x = np.concatenate([np.zeros(sr), active, np.zeros(sr)])
    y = trim_silence(x, sr, margin_s=0.05)
    assert abs(y.size - (active.size + 2 * 800)) <= 2 * 160
    assert trim_silence(np.zeros(1000), sr).size == 1000  # all-silent input left alone


def test_normalize_rms_level_and_peak_cap():
    x = _tone(200, 16000, 0.5, amp=0.01)
    assert rms_dbfs(normalize_rms(x, -20.0)) == pytest.approx(-20.0, abs=1e-6)
    clicks = np.zeros(16000)
    clicks[::4000] = 1.0
    y = normalize_rms(clicks, -10.0, peak_max=0.9)
    assert np.max(np.abs(y)) == pytest.approx(0.9) and rms_dbfs(y) < -10.0
