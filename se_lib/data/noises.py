"""Synthetic noise generators for the demo corpus (numpy/scipy only, seeded, deterministic).

Kinds (names are used in noise IDs, so no underscores):

* ``white``  - Gaussian white noise.
* ``pink``   - 1/f (-3 dB/octave) noise: white noise through J. O. Smith's 3-pole/3-zero
  approximation of a 1/f filter ("Spectral Audio Signal Processing", CCRMA, 2011,
  section "Example: Synthesis of 1/F Noise (Pink Noise)").
* ``brown``  - 1/f^2 (-6 dB/octave, Brownian) noise: a leaky integrator with a 20 Hz corner.
* ``hum``    - tonal mains hum: 50 or 60 Hz and harmonics with a slowly drifting fundamental,
  slow amplitude modulation and a faint broadband floor (transformer/ballast hum).
* ``impulsive`` - non-stationary noise: Poisson clicks (decaying resonances), band-limited noise
  bursts and amplitude-modulated noise.
* ``babble`` - overlapping speech of several talkers; :func:`mix_babble` mixes talker tracks that
  the caller synthesises (see :mod:`se_lib.data.demo_corpus`), following the usual construction
  of babble as a sum of independent talkers (e.g. NOISEX-92 babble, or Krishnamurthy & Hansen,
  "Babble noise: modeling, analysis, and applications", IEEE TASLP 17(7), 2009).

Filters use ``scipy.signal.lfilter`` (a plain recursion, reproducible bit for bit) rather than
FFT shaping. Every generator takes a ``numpy.random.Generator`` and returns float64 ``[T]``
scaled by :func:`se_lib.data.audio.normalize_rms` to ``level_dbfs`` with peak <= 0.99.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.signal import lfilter

from se_lib.data.audio import normalize_rms

__all__ = [
    "NOISE_KINDS",
    "SYNTHETIC_KINDS",
    "DEFAULT_LEVEL_DBFS",
    "white_noise",
    "pink_noise",
    "brown_noise",
    "hum_noise",
    "impulsive_noise",
    "mix_babble",
    "generate_noise",
]

#: All demo noise kinds (matches the schema enum of ``corpus.demo.noise_kinds``).
NOISE_KINDS = ("white", "pink", "brown", "babble", "hum", "impulsive")
#: Kinds generated without speech synthesis.
SYNTHETIC_KINDS = ("white", "pink", "brown", "hum", "impulsive")
DEFAULT_LEVEL_DBFS = -25.0

# J. O. Smith, 1/f approximation: zeros/poles interlaced over the audio band.
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])


def white_noise(n: int, sr: int, rng: np.random.Generator, level_dbfs: float = DEFAULT_LEVEL_DBFS) -> np.ndarray:
    """Gaussian white noise."""
    return normalize_rms(rng.standard_normal(n), level_dbfs)


def pink_noise(n: int, sr: int, rng: np.random.Generator, level_dbfs: float = DEFAULT_LEVEL_DBFS) -> np.ndarray:
    """1/f noise; the filter's start-up transient is discarded (1 s warm-up)."""
    warm = min(sr, 4 * n)
    x = lfilter(_PINK_B, _PINK_A, rng.standard_normal(n + warm))[warm:]
    return normalize_rms(x - x.mean(), level_dbfs)


def brown_noise(n: int, sr: int, rng: np.random.Generator, level_dbfs: float = DEFAULT_LEVEL_DBFS) -> np.ndarray:
    """1/f^2 noise: leaky integration of white noise (pole at a 20 Hz corner, no DC drift)."""
    r = float(np.exp(-2.0 * np.pi * 20.0 / sr))
    warm = min(sr, 4 * n)
    x = lfilter([1.0], [1.0, -r], rng.standard_normal(n + warm))[warm:]
    return normalize_rms(x - x.mean(), level_dbfs)


def hum_noise(n: int, sr: int, rng: np.random.Generator, level_dbfs: float = DEFAULT_LEVEL_DBFS) -> np.ndarray:
    """Mains hum: f0 in {50, 60} Hz with harmonics below min(4 kHz, Nyquist)."""
    t = np.arange(n) / sr
    f0 = float(rng.choice([50.0, 60.0]))
    # slow random-walk drift of the mains frequency (a few tenths of a percent)
    steps = max(2, int(n / sr * 4) + 2)
    drift = np.interp(t, np.linspace(0, t[-1] if n > 1 else 1.0, steps), np.cumsum(rng.normal(0, 0.0008, steps)))
    phase0 = 2 * np.pi * np.cumsum(f0 * (1.0 + drift)) / sr
    n_harm = int(min(4000.0, 0.45 * sr) // f0)
    tilt = rng.uniform(0.6, 1.4)
    y = np.zeros(n)
    for k in range(1, n_harm + 1):
        amp = k ** (-tilt) * rng.uniform(0.2, 1.0)
        if k == 2:  # magnetostriction: strong twice-mains component
            amp *= rng.uniform(1.5, 3.0)
        y += amp * np.sin(k * phase0 + rng.uniform(0, 2 * np.pi))
    am = 1.0 + rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 2 * np.pi))
    y *= am
    y = normalize_rms(y, 0.0, peak_max=np.inf)
    y += 10 ** (-40 / 20) * rng.standard_normal(n)  # faint broadband floor
    return normalize_rms(y, level_dbfs)


def impulsive_noise(n: int, sr: int, rng: np.random.Generator, level_dbfs: float = DEFAULT_LEVEL_DBFS) -> np.ndarray:
    """Non-stationary mixture: clicks, band-limited bursts and amplitude-modulated noise."""
    dur = n / sr
    t = np.arange(n) / sr
    y = np.zeros(n)
    # 1) clicks: decaying resonances at Poisson times, amplitudes spread over 20 dB
    for start in _poisson_times(rng, rng.uniform(1.0, 6.0), dur):
        tau = rng.uniform(0.0005, 0.005)
        length = min(int(8 * tau * sr) + 1, n - int(start * sr))
        tt = np.arange(length) / sr
        f = rng.uniform(400.0, min(5000.0, 0.45 * sr))
        click = np.exp(-tt / tau) * (np.sin(2 * np.pi * f * tt) + 0.5 * rng.standard_normal(length))
        i0 = int(start * sr)
        y[i0 : i0 + length] += 10 ** (rng.uniform(-20, 0) / 20) * click
    # 2) bursts: 50-400 ms of band-limited noise under a Hann envelope
    for start in _poisson_times(rng, rng.uniform(0.3, 1.5), dur):
        length = min(int(rng.uniform(0.05, 0.4) * sr), n - int(start * sr))
        if length < 8:
            continue
        lo = rng.uniform(100.0, 0.2 * sr)
        hi = min(0.49 * sr, lo * rng.uniform(1.5, 6.0))
        burst = _bandpass_noise(rng, length, sr, lo, hi) * np.hanning(length)
        i0 = int(start * sr)
        y[i0 : i0 + length] += 10 ** (rng.uniform(-15, -3) / 20) * burst / (np.std(burst) + 1e-12) * 0.3
    # 3) amplitude-modulated noise (e.g. machinery, fan with a beating rotor)
    base = lfilter(_PINK_B, _PINK_A, rng.standard_normal(n))
    base /= np.std(base) + 1e-12
    depth = rng.uniform(0.5, 1.0)
    mod = 1.0 - depth * 0.5 * (1.0 + np.sin(2 * np.pi * rng.uniform(0.5, 4.0) * t + rng.uniform(0, 2 * np.pi)))
    y += 10 ** (rng.uniform(-30, -18) / 20) * base * mod
    return normalize_rms(y, level_dbfs)


def mix_babble(
    talkers: Sequence[np.ndarray],
    n: int,
    rng: np.random.Generator,
    level_dbfs: float = DEFAULT_LEVEL_DBFS,
    gain_spread_db: float = 3.0,
) -> np.ndarray:
    """Sum talker tracks into babble of ``n`` samples.

    Each track (float, same rate, any length >= 1) is cut at a random offset (or looped when
    shorter than ``n``), equalised in RMS, given a random gain in ``+-gain_spread_db``, and summed.
    """
    if len(talkers) < 2:
        raise ValueError(f"babble needs at least 2 talkers, got {len(talkers)}")
    out = np.zeros(n)
    for track in talkers:
        track = np.asarray(track, dtype=np.float64)
        if track.size == 0:
            raise ValueError("babble talker track is empty")
        if track.size < n:
            track = np.tile(track, int(np.ceil(n / track.size)) + 1)
        offset = int(rng.integers(0, track.size - n + 1))
        seg = track[offset : offset + n]
        seg = normalize_rms(seg, 0.0, peak_max=np.inf)
        out += 10 ** (rng.uniform(-gain_spread_db, gain_spread_db) / 20) * seg
    return normalize_rms(out, level_dbfs)


_GENERATORS: dict[str, Callable[..., np.ndarray]] = {
    "white": white_noise,
    "pink": pink_noise,
    "brown": brown_noise,
    "hum": hum_noise,
    "impulsive": impulsive_noise,
}


def generate_noise(
    kind: str, n: int, sr: int, rng: np.random.Generator, level_dbfs: float = DEFAULT_LEVEL_DBFS
) -> np.ndarray:
    """Generate ``n`` samples of a synthetic kind (everything except ``babble``)."""
    try:
        gen = _GENERATORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown synthetic noise kind {kind!r}; known: {sorted(_GENERATORS)}"
            + (" (babble is mixed from speech with mix_babble)" if kind == "babble" else "")
        ) from None
    if n <= 0:
        raise ValueError(f"noise length must be positive, got {n} samples")
    return gen(n, sr, rng, level_dbfs)


# ----------------------------------------------------------------------------------------------


def _poisson_times(rng: np.random.Generator, rate_hz: float, dur: float) -> np.ndarray:
    count = int(rng.poisson(rate_hz * dur))
    return np.sort(rng.uniform(0.0, dur, count))


def _bandpass_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    from scipy.signal import butter

    b, a = butter(2, [lo / (sr / 2), hi / (sr / 2)], btype="band")
    return lfilter(b, a, rng.standard_normal(n + 256))[256:]
