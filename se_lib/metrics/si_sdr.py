"""Scale-invariant signal-to-distortion ratio (SI-SDR) and its improvement (SI-SDRi).

Reference: J. Le Roux, S. Wisdom, H. Erdogan, J. R. Hershey, "SDR – half-baked or well done?",
ICASSP 2019. Both signals are made zero-mean, the reference is scaled by the optimal factor
``alpha = <s_hat, s> / <s, s>`` and

    SI-SDR = 10 log10( ||alpha s||^2 / ||alpha s - s_hat||^2 ).

The small ``eps`` terms follow ``torchmetrics.functional.audio.scale_invariant_signal_distortion_ratio``
(machine epsilon of the computation dtype), so both give the same numbers. SI-SDRi is the SI-SDR of
the estimate minus the SI-SDR of the unprocessed mixture (here: the reference-microphone channel of the
noisy recording), both against the same reference.

This module scores finished files (numpy, float64). The differentiable, padding-aware torch SI-SDR
used as training objective and validation metric is :func:`se_lib.train.losses.si_sdr`; a test
checks that both give the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["si_sdr", "si_sdr_improvement"]


def _pair(estimate: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if est.shape != ref.shape:
        raise ValueError(f"SI-SDR: estimate shape {est.shape} != reference shape {ref.shape}")
    if est.ndim == 0 or est.shape[-1] == 0:
        raise ValueError("SI-SDR: signals must have at least one sample along the last axis")
    return est, ref


def si_sdr(estimate: Any, reference: Any, *, zero_mean: bool = True) -> np.ndarray | float:
    """SI-SDR in dB along the last axis (float64 arithmetic); a float for 1-D inputs."""
    est, ref = _pair(estimate, reference)
    eps = np.finfo(np.float64).eps
    if zero_mean:
        est = est - est.mean(axis=-1, keepdims=True)
        ref = ref - ref.mean(axis=-1, keepdims=True)
    alpha = (np.sum(est * ref, axis=-1, keepdims=True) + eps) / (np.sum(ref**2, axis=-1, keepdims=True) + eps)
    target = alpha * ref
    noise = target - est
    value = 10.0 * np.log10((np.sum(target**2, axis=-1) + eps) / (np.sum(noise**2, axis=-1) + eps))
    return float(value) if np.ndim(value) == 0 else value


def si_sdr_improvement(estimate: Any, reference: Any, mixture: Any, *, zero_mean: bool = True) -> np.ndarray | float:
    """SI-SDRi = SI-SDR(estimate, reference) - SI-SDR(mixture, reference), in dB."""
    return si_sdr(estimate, reference, zero_mean=zero_mean) - si_sdr(mixture, reference, zero_mean=zero_mean)
