"""Short-time objective intelligibility (STOI) and extended STOI (ESTOI) through ``pystoi``.

References: C. H. Taal, R. C. Hendriks, R. Heusdens, J. Jensen, "An algorithm for intelligibility
prediction of time-frequency weighted noisy speech", IEEE TASLP 19(7), 2011 (STOI);
J. Jensen, C. H. Taal, "An algorithm for predicting the intelligibility of speech masked by modulated
noise maskers", IEEE/ACM TASLP 24(11), 2016 (ESTOI).

``pystoi`` resamples to 10 kHz internally and removes silent frames. When too few speech frames remain
it warns and returns 1e-5, and for an all-zero reference it returns 0 (a correlation with a zero
vector); both values would silently drag averages down, so they become NaN here (counted by the scorer
like PESQ failures). Everything else equals a direct ``pystoi.stoi`` call.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["stoi", "estoi"]

_NOT_ENOUGH_FRAMES = "Not enough STFT frames"


def stoi(reference: Any, degraded: Any, sample_rate: int, *, extended: bool = False) -> float:
    """STOI (or ESTOI with ``extended=True``) of ``degraded`` against clean ``reference`` (1-D, same length)."""
    from pystoi import stoi as _pystoi

    ref = np.asarray(reference, dtype=np.float64)
    deg = np.asarray(degraded, dtype=np.float64)
    if ref.ndim != 1 or deg.ndim != 1:
        raise ValueError(f"STOI: signals must be 1-D, got {ref.shape} and {deg.shape}")
    if ref.shape != deg.shape:
        raise ValueError(f"STOI: reference has {ref.size} samples, degraded {deg.size}")
    if not (np.isfinite(ref).all() and np.isfinite(deg).all()):
        raise ValueError("STOI: signals contain non-finite samples")
    if not np.any(ref):
        return math.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_pystoi(ref, deg, sample_rate, extended=extended))
    if any(_NOT_ENOUGH_FRAMES in str(w.message) for w in caught):
        return math.nan
    return value


def estoi(reference: Any, degraded: Any, sample_rate: int) -> float:
    """Extended STOI (Jensen & Taal 2016)."""
    return stoi(reference, degraded, sample_rate, extended=True)
