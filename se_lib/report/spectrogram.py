"""The one spectrogram plotter, used by the report's examples and by the training audio samples.

Log-magnitude STFT panels stacked over a shared time axis (seconds) with the frequency axis in kHz
(0 to half the sample rate), one colour scale in dB for all panels (the loudest bin of the figure
down to ``dynamic_range_db`` below it), ``magma`` colour map. Drawn with matplotlib's object API
(:func:`se_lib.report.figures.new_figure`), never pyplot, so it is safe inside training callbacks.
This module imports only numpy, scipy and matplotlib.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from se_lib.report.figures import new_figure, save_figure

__all__ = ["plot_spectrograms", "spectrogram_db", "spectrogram_figure"]


def spectrogram_db(x: Any, sr: int, n_fft: int = 512, hop: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(freqs_hz, times_s, power_db [F, frames])`` of a mono signal (Hann window, one-sided).

    ``x`` is anything ``numpy.asarray`` accepts (a CPU tensor too); a signal shorter than ``n_fft``
    is zero-padded to ``n_fft`` so every panel has the same frequency bins.
    """
    from scipy.signal import stft

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"spectrogram: expected a non-empty mono signal, got shape {x.shape}")
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    f, t, z = stft(x, fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary="zeros", padded=True)
    return f, t, 10.0 * np.log10(np.abs(z) ** 2 + 1e-12)


def spectrogram_figure(
    panels: Sequence[tuple[str, Any]],
    sr: int,
    *,
    title: str = "",
    dynamic_range_db: float = 80.0,
) -> Figure:
    """Stacked spectrograms, one row per ``(label, mono signal)``; shared time axis and colour scale."""
    if not panels:
        raise ValueError("spectrogram: no panels")
    specs = [(label, *spectrogram_db(x, sr)) for label, x in panels]
    top = max(float(s[3].max()) for s in specs)
    fig = new_figure(7.5, 1.7 * len(specs) + 0.6)
    axes = fig.subplots(len(specs), 1, sharex=True, squeeze=False)[:, 0]
    mesh = None
    for ax, (label, f, t, s) in zip(axes, specs, strict=True):
        mesh = ax.pcolormesh(
            t, f / 1000.0, s, shading="auto", cmap="magma", vmin=top - dynamic_range_db, vmax=top, rasterized=True
        )
        ax.set_ylim(0.0, sr / 2000.0)
        ax.set_ylabel("kHz")
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1].set_xlabel("time [s]")
    fig.colorbar(mesh, ax=list(axes), label="dB", shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_spectrograms(
    panels: Sequence[tuple[str, Any]],
    sr: int,
    path: str | os.PathLike,
    *,
    title: str = "",
    dynamic_range_db: float = 80.0,
) -> Path:
    """Write :func:`spectrogram_figure` of ``panels`` as a PNG at ``path`` (atomically); return the path."""
    return save_figure(spectrogram_figure(panels, sr, title=title, dynamic_range_db=dynamic_range_db), path)
