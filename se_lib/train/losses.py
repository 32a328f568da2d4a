"""Training objectives and validation metrics on padded waveform batches.

* SI-SDR (scale-invariant signal-to-distortion ratio) after Le Roux, Wisdom, Erdogan & Hershey,
  "SDR – half-baked or well done?", ICASSP 2019: both signals are made zero-mean, the target is
  scaled by the optimal ``alpha = <s_hat, s> / ||s||^2`` and the ratio of the scaled target's energy
  to the residual's energy is reported in dB.  Conv-TasNet (Luo & Mesgarani, TASLP 2019) trains
  on its negative.
* Pre-emphasised SI-SDR (``si_sdr_preemph``): SI-SDR of both signals after the first-order
  pre-emphasis ``y[n] = x[n] - 0.95 x[n-1]`` (as SEGAN, Pascual, Bonafonte & Serra, Interspeech
  2017, applies to its signals): +6 dB per octave above ~1 kHz, so the error in the weak upper bands
  counts. Plain SI-SDR is an energy ratio dominated by the strong low bands; a model trained on it
  can leave the bands above ~1.5 kHz worse than its input, which STOI/ESTOI (every band weighed
  alike) punish.
* Multi-resolution STFT loss (Yamamoto, Song & Kim, "Parallel WaveGAN", ICASSP 2020, Sec. 2.3):
  spectral convergence + mean absolute log-magnitude difference, averaged over three STFT
  resolutions. Every time-frequency bin counts on a log scale, also the weak high-frequency ones
  that SI-SDR (an energy ratio) all but ignores and that STOI/ESTOI and PESQ weigh; ``si_sdr+mrstft``
  adds it to negative SI-SDR with weight :data:`MRSTFT_WEIGHT`.
* SDR: the plain (not scale-invariant) ratio ``||s||^2 / ||s - s_hat||^2`` in dB, no projection
  (the "SNR" objective of many enhancement papers).

Every function takes ``estimate [B, T]``, ``target [B, T]`` and optional ``lengths [B]`` (number of
valid samples per item; samples beyond it are zero padding and are excluded from means and
energies), and returns one value per item ``[B]``; losses return the batch mean.

Mixed precision (``trainer.precision: bf16-mixed`` / ``16-mixed``): the energy ratios and the STFTs
are computed in float32 whatever the network returned (:func:`in_fp32`: lower-precision inputs are
upcast and autocast is off inside), so a bf16 network output costs its own rounding only, not
bf16 sums over a whole signal; gradients flow back through the casts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor

F = TypeVar("F", bound=Callable[..., Any])

EPS = 1e-8
LOSSES = ("si_sdr", "sdr", "si_sdr_preemph", "si_sdr+mrstft")
PREEMPHASIS = 0.95  # SEGAN's coefficient
# (n_fft, hop, window) at 16 kHz: 16/32/64 ms windows, 75 % overlap (Parallel WaveGAN's three, scaled).
MRSTFT_RESOLUTIONS = ((256, 64, 256), (512, 128, 512), (1024, 256, 1024))
MRSTFT_WEIGHT = 5.0  # dB of SI-SDR per unit of the STFT loss: both terms move by a few units while training


def in_fp32(fn: F) -> F:
    """Run ``fn`` in float32: its floating tensor arguments of lower precision (bf16, fp16) are cast
    to float32 (float64 stays as it is) and autocast is disabled inside, on the tensors' device."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def up(value: Any) -> Any:
            if (
                isinstance(value, Tensor)
                and value.is_floating_point()
                and value.dtype not in (torch.float32, torch.float64)
            ):
                return value.float()
            return value

        device = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        with torch.autocast(device_type=device, enabled=False):
            return fn(*(up(a) for a in args), **{k: up(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]


def valid_mask(lengths: Tensor | None, like: Tensor) -> Tensor:
    """Boolean ``[B, T]`` mask of valid samples (all true when ``lengths`` is ``None``)."""
    batch, time = like.shape
    if lengths is None:
        return torch.ones(batch, time, dtype=torch.bool, device=like.device)
    lengths = lengths.to(like.device)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape [{batch}], got {tuple(lengths.shape)}")
    if bool((lengths < 1).any()) or bool((lengths > time).any()):
        raise ValueError(f"lengths must lie in [1, {time}], got {lengths.tolist()}")
    return torch.arange(time, device=like.device).unsqueeze(0) < lengths.unsqueeze(1)


def _check_pair(estimate: Tensor, target: Tensor) -> None:
    if estimate.ndim != 2 or estimate.shape != target.shape:
        raise ValueError(
            f"expected estimate and target of the same shape [batch, time], got "
            f"{tuple(estimate.shape)} and {tuple(target.shape)}"
        )


@in_fp32
def _energy_ratio_db(
    estimate: Tensor, target: Tensor, lengths: Tensor | None, eps: float, scale_invariant: bool
) -> Tensor:
    """``10 log10(||s||^2 / ||s_hat - s||^2)`` per item ``[B]`` over the valid samples.

    ``s`` is the target, or, if ``scale_invariant``, the projection ``alpha * s`` of the estimate on
    the target after both are made zero-mean (SI-SDR); ``eps`` keeps both energies positive.
    """
    _check_pair(estimate, target)
    mask = valid_mask(lengths, estimate).to(estimate.dtype)
    estimate = estimate * mask
    target = target * mask
    if scale_invariant:
        count = mask.sum(dim=-1, keepdim=True)
        estimate = (estimate - estimate.sum(-1, keepdim=True) / count) * mask
        target = (target - target.sum(-1, keepdim=True) / count) * mask
        alpha = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + eps)
        target = alpha * target  # the projection of the estimate on the target
    residual = estimate - target
    return 10.0 * torch.log10((target.pow(2).sum(-1) + eps) / (residual.pow(2).sum(-1) + eps))


def si_sdr(estimate: Tensor, target: Tensor, lengths: Tensor | None = None, eps: float = EPS) -> Tensor:
    """Scale-invariant SDR in dB per item ``[B]`` over the valid samples (Le Roux et al. 2019)."""
    return _energy_ratio_db(estimate, target, lengths, eps, scale_invariant=True)


def sdr(estimate: Tensor, target: Tensor, lengths: Tensor | None = None, eps: float = EPS) -> Tensor:
    """Plain SDR (a.k.a. SNR of the estimate) in dB per item ``[B]`` over the valid samples."""
    return _energy_ratio_db(estimate, target, lengths, eps, scale_invariant=False)


def negative_si_sdr(estimate: Tensor, target: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Batch-mean negative SI-SDR (dB), the Conv-TasNet training objective."""
    return -si_sdr(estimate, target, lengths).mean()


def negative_sdr(estimate: Tensor, target: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Batch-mean negative plain SDR (dB)."""
    return -sdr(estimate, target, lengths).mean()


def preemphasis(x: Tensor, coefficient: float = PREEMPHASIS) -> Tensor:
    """``y[n] = x[n] - coefficient * x[n-1]`` along the last axis (``y[0] = x[0]``). Causal: a valid
    sample's output depends on valid samples only, so padding needs no masking here (the loss masks)."""
    return torch.cat([x[..., :1], x[..., 1:] - coefficient * x[..., :-1]], dim=-1)


def negative_si_sdr_preemph(estimate: Tensor, target: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Batch-mean negative SI-SDR (dB) of the pre-emphasised signals (:func:`preemphasis`)."""
    _check_pair(estimate, target)
    return -si_sdr(preemphasis(estimate), preemphasis(target), lengths).mean()


@in_fp32
def multi_resolution_stft(
    estimate: Tensor,
    target: Tensor,
    lengths: Tensor | None = None,
    resolutions: tuple[tuple[int, int, int], ...] = MRSTFT_RESOLUTIONS,
) -> Tensor:
    """Batch-mean multi-resolution STFT loss (spectral convergence + log-magnitude L1 per resolution,
    averaged over resolutions); samples beyond ``lengths`` are zeroed in both signals first."""
    _check_pair(estimate, target)
    mask = valid_mask(lengths, estimate).to(estimate.dtype)
    estimate, target = estimate * mask, target * mask
    total = estimate.new_zeros(())
    for n_fft, hop, win in resolutions:
        window = torch.hann_window(win, device=estimate.device, dtype=estimate.dtype)
        m_est, m_tgt = (
            torch.stft(x, n_fft, hop, win, window, center=True, return_complex=True).abs().clamp_min(1e-7)
            for x in (estimate, target)
        )  # [B, F, frames] each
        convergence = torch.linalg.norm(m_tgt - m_est, dim=(-2, -1)) / torch.linalg.norm(m_tgt, dim=(-2, -1))
        log_mag = (m_tgt.log() - m_est.log()).abs().mean(dim=(-2, -1))
        total = total + (convergence + log_mag).mean()
    return total / len(resolutions)


def negative_si_sdr_mrstft(
    estimate: Tensor, target: Tensor, lengths: Tensor | None = None, weight: float = MRSTFT_WEIGHT
) -> Tensor:
    """Negative SI-SDR (dB) + ``weight`` x multi-resolution STFT loss, batch means (``weight`` 0: plain
    negative SI-SDR)."""
    return negative_si_sdr(estimate, target, lengths) + weight * multi_resolution_stft(estimate, target, lengths)


LossFn = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


def get_loss(name: str, mrstft_weight: float = MRSTFT_WEIGHT) -> LossFn:
    """Loss function by name: ``"si_sdr"`` (negative SI-SDR), ``"sdr"`` (negative SDR),
    ``"si_sdr_preemph"`` (negative SI-SDR of pre-emphasised signals) or ``"si_sdr+mrstft"`` (negative
    SI-SDR + ``mrstft_weight`` x multi-resolution STFT loss)."""
    if mrstft_weight < 0:
        raise ValueError(f"EnhancementModule: mrstft_weight must be >= 0, got {mrstft_weight}")
    table: dict[str, LossFn] = {
        "si_sdr": negative_si_sdr,
        "sdr": negative_sdr,
        "si_sdr_preemph": negative_si_sdr_preemph,
        "si_sdr+mrstft": functools.partial(negative_si_sdr_mrstft, weight=mrstft_weight),
    }
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"EnhancementModule: unknown loss {name!r}; expected one of {LOSSES}") from None
