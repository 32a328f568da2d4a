"""Wide-band PESQ (ITU-T P.862.2) through the ``pesq`` package (module named ``pesq_wb`` so that it
does not shadow that package).

Reference: ITU-T Rec. P.862.2, "Wideband extension to Recommendation P.862 for the assessment of
wideband telephone networks and speech codecs", 2007; implementation: github.com/ludlows/PESQ.

PESQ is defined at 16 kHz in wide-band mode; other rates are resampled first. Signals PESQ cannot score
(no utterance detected, buffer too short, all-zero input, ...) give NaN instead of an exception, so a
batch job never dies on one odd file; :func:`pesq_wb_with_reason` also returns why.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from se_lib.data.audio import resample_audio

__all__ = ["PESQ_SAMPLE_RATE", "pesq_wb", "pesq_wb_with_reason"]

PESQ_SAMPLE_RATE = 16000


def pesq_wb_with_reason(reference: Any, degraded: Any, sample_rate: int = PESQ_SAMPLE_RATE) -> tuple[float, str | None]:
    """``(score, None)`` or ``(nan, reason)`` for 1-D ``reference`` (clean) and ``degraded`` signals.

    Raises ValueError for malformed input (not 1-D, non-finite samples): that is a caller bug or a
    corrupt file, not a property of the audio that PESQ legitimately cannot score.
    """
    from pesq import PesqError, pesq

    ref = np.asarray(reference, dtype=np.float32)
    deg = np.asarray(degraded, dtype=np.float32)
    for name, x in (("reference", ref), ("degraded", deg)):
        if x.ndim != 1:
            raise ValueError(f"PESQ: {name} must be 1-D, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"PESQ: {name} contains non-finite samples")
    if ref.size == 0 or deg.size == 0:
        return math.nan, "empty signal"
    if sample_rate != PESQ_SAMPLE_RATE:
        ref = resample_audio(ref, sample_rate, PESQ_SAMPLE_RATE)
        deg = resample_audio(deg, sample_rate, PESQ_SAMPLE_RATE)
    if not np.any(ref) or not np.any(deg):
        return math.nan, "all-zero signal"
    try:
        return float(pesq(PESQ_SAMPLE_RATE, ref, deg, "wb")), None
    except PesqError as exc:  # NoUtterancesError, BufferTooShortError, ... (cypesq errors)
        return math.nan, f"{type(exc).__name__}: {exc}".strip()


def pesq_wb(reference: Any, degraded: Any, sample_rate: int = PESQ_SAMPLE_RATE) -> float:
    """Wide-band PESQ (MOS-LQO, about 1.04..4.64), NaN when the signals cannot be scored."""
    return pesq_wb_with_reason(reference, degraded, sample_rate)[0]
