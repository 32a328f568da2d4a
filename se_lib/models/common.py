"""Building blocks shared by the enhancement models in :mod:`se_lib.models`.

* The framing arithmetic of a TasNet encoder/decoder pair (:func:`frame_padding`) and "same"
  convolution padding (:func:`same_padding`).
* Normalisations of Conv-TasNet (Luo & Mesgarani, "Conv-TasNet: Surpassing Ideal Time-Frequency
  Magnitude Masking for Speech Separation", IEEE/ACM TASLP 27(8), 2019, Sec. III-C): global
  layer norm (gLN, non-causal) and cumulative layer norm (cLN, causal).  Both accept
  ``[batch, channels, time]`` and ``[batch, channels, ..., time]`` tensors (the inter-channel
  Conv-TasNet normalises 4-D ``[batch, C, N, T']`` tensors).
* :class:`ConvBlock` / :class:`ConvBlockStack`: Conv-TasNet's 1-D conv blocks (and their 2-D
  form in the inter-channel model).
* :class:`TasNetEncoder` / :class:`TasNetDecoder`: the learned linear analysis/synthesis
  filterbanks (window ``L``, hop ``L // 2``) used by Conv-TasNet, IC Conv-TasNet and DPRNN.
* :func:`checkpointed`: activation checkpointing of one stage of a deep stack (a TCN repeat, a
  DPRNN block) while training: only the stage's inputs are kept for the backward pass, its
  activations are recomputed (``torch.utils.checkpoint``, non-reentrant).

The input checks and the reference-microphone convention live in :mod:`se_lib.models.base`;
shapes use the legend of :mod:`se_lib.models`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = [
    "ConvBlock",
    "ConvBlockStack",
    "CumulativeLayerNorm",
    "GlobalLayerNorm",
    "TasNetDecoder",
    "TasNetEncoder",
    "checkpointed",
    "count_parameters",
    "frame_padding",
    "make_mask_activation",
    "make_norm",
    "same_padding",
]

NORMS = ("gLN", "cLN")
MASK_ACTIVATIONS = ("sigmoid", "relu")


def frame_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """Left/right zero padding so that frames of ``kernel`` with hop ``stride`` tile the signal.

    Every original sample is covered by the same number of frames (``kernel - stride`` samples of
    padding on each side, plus what is needed at the right to complete the last frame), and the
    padded length ``P`` satisfies ``(P - kernel) % stride == 0`` so that a transposed convolution
    with the same kernel/stride returns exactly ``P`` samples.  Crop ``[left : left + length]``.
    """
    left = kernel - stride
    total = length + 2 * left
    if total < kernel:
        extra = kernel - total
    else:
        extra = (-(total - kernel)) % stride
    return left, left + extra


def checkpointed(fn: Callable[..., Any], *args: Any, enabled: bool = True) -> Any:
    """``fn(*args)``, with activation checkpointing when ``enabled`` and autograd records the call.

    Checkpointed, the forward pass keeps only ``args`` for the backward pass and recomputes ``fn``'s
    activations there (``torch.utils.checkpoint.checkpoint(use_reentrant=False)``; the RNG state is
    restored, so dropout draws the same mask): the gradients are those of the plain call, the peak
    memory of a stack of checkpointed stages is that of its stage inputs plus one stage's activations,
    at the cost of a second forward pass of every stage. Without gradients (inference, validation)
    ``fn`` simply runs.
    """
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def same_padding(kernel: int, dilation: int = 1, causal: bool = False) -> tuple[int, int]:
    """(left, right) padding keeping the length of a stride-1 convolution; causal pads left only."""
    total = dilation * (kernel - 1)
    if causal:
        return total, 0
    return total // 2, total - total // 2


class GlobalLayerNorm(nn.GroupNorm):
    """gLN: normalise over all non-batch dimensions, per-channel gain and bias (Conv-TasNet eq. 13-15)."""

    def __init__(self, channels: int, eps: float = 1e-8) -> None:
        super().__init__(num_groups=1, num_channels=channels, eps=eps)


class CumulativeLayerNorm(nn.Module):
    """cLN: at frame t normalise with statistics over all channels (and features) of frames ``<= t``.

    Causal counterpart of gLN (Conv-TasNet eq. 16-18).  Input ``[batch, channels, ..., T']``.
    """

    def __init__(self, channels: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduce_dims = tuple(range(1, x.ndim - 1))
        per_frame = x[0, ..., 0].numel()
        step_sum = x.sum(dim=reduce_dims)  # [batch, T']
        step_pow = x.pow(2).sum(dim=reduce_dims)  # [batch, T']
        count = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=x.dtype) * per_frame
        mean = step_sum.cumsum(dim=-1) / count
        var = (step_pow.cumsum(dim=-1) / count - mean.pow(2)).clamp_min(0.0)
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
        normed = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        affine_shape = (1, -1) + (1,) * (x.ndim - 2)
        return normed * self.weight.view(affine_shape) + self.bias.view(affine_shape)


def make_norm(kind: str, channels: int, owner: str = "model") -> nn.Module:
    """``"gLN"`` -> :class:`GlobalLayerNorm`, ``"cLN"`` -> :class:`CumulativeLayerNorm`."""
    if kind == "gLN":
        return GlobalLayerNorm(channels)
    if kind == "cLN":
        return CumulativeLayerNorm(channels)
    raise ValueError(f"{owner}: unknown norm {kind!r}; expected one of {NORMS}")


def make_mask_activation(kind: str, owner: str = "model") -> nn.Module:
    """Mask non-linearity: ``"sigmoid"`` (bounded, paper default) or ``"relu"`` (unbounded)."""
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "relu":
        return nn.ReLU()
    raise ValueError(f"{owner}: unknown mask_activation {kind!r}; expected one of {MASK_ACTIVATIONS}")


class ConvBlock(nn.Module):
    """Conv-TasNet 1-D conv block (paper Fig. 1C), also in the 2-D form of the inter-channel model.

    1x1 conv ``io -> H``, PReLU, norm, dilated depthwise conv, PReLU, norm, then a residual 1x1 conv
    ``H -> io`` (omitted in the very last block of a stack) and a skip 1x1 conv ``H -> skip``.
    ``dims=1`` works on ``[batch, io, T']`` with a ``P``-tap depthwise conv; ``dims=2`` on
    ``[batch, io, B, T']`` with a ``P x P`` depthwise conv over (feature, time), dilated in
    time only.  Non-causal ("same") padding is done by the convolution itself; causal padding
    (left only) by an explicit ``F.pad``.

    Args:
        io: channels of the residual path, ``B`` (Conv-TasNet) or ``Cs`` (inter-channel model).
        H: hidden channels inside the block, ``H``.
        skip: channels of the skip output, ``Sc`` (Conv-TasNet) or ``Cs``.
        P: depthwise kernel size, ``P``.
        dilation: time dilation of the depthwise conv (``2**x`` for block ``x`` of a repeat).
        norm: ``"gLN"`` or ``"cLN"``.
        causal: pad the time axis on the left only.
        residual: whether the block has a residual output.
        dims: 1 (Conv-TasNet) or 2 (inter-channel model).
        owner: model name for error messages.
    """

    def __init__(
        self,
        io: int,
        H: int,
        skip: int,
        P: int,
        dilation: int,
        norm: str,
        causal: bool,
        residual: bool,
        dims: int = 1,
        owner: str = "model",
    ) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"{owner}: ConvBlock dims must be 1 or 2, got {dims!r}")
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        time_pad = same_padding(P, dilation, causal)
        if dims == 1:
            kernel, dil, pads = P, dilation, [time_pad]
        else:
            kernel, dil, pads = (P, P), (1, dilation), [same_padding(P), time_pad]
        symmetric = all(left == right for left, right in pads)
        # F.pad order is last dim first: (time_l, time_r[, feat_l, feat_r])
        self.pad = None if symmetric else tuple(v for pair in reversed(pads) for v in pair)
        conv_padding = tuple(left for left, _ in pads) if symmetric else 0
        self.in_conv = conv(io, H, 1)
        self.act1 = nn.PReLU()
        self.norm1 = make_norm(norm, H, owner)
        self.depthwise = conv(H, H, kernel, dilation=dil, groups=H, padding=conv_padding)
        self.act2 = nn.PReLU()
        self.norm2 = make_norm(norm, H, owner)
        self.res_out = conv(H, io, 1) if residual else None
        self.skip_out = conv(H, skip, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``x [batch, io, (B,) T']`` -> (residual ``[batch, io, (B,) T']`` or None,
        skip ``[batch, skip, (B,) T']``); ``(B,)`` is the feature axis of the 2-D form."""
        y = self.norm1(self.act1(self.in_conv(x)))  # [batch, H, (B,) T']
        if self.pad is not None:
            y = F.pad(y, self.pad)  # causal: left padding in time
        y = self.norm2(self.act2(self.depthwise(y)))  # [batch, H, (B,) T']
        residual = self.res_out(y) if self.res_out is not None else None  # [batch, io, (B,) T']
        return residual, self.skip_out(y)


class ConvBlockStack(nn.ModuleList):
    """``R`` repeats of ``X`` :class:`ConvBlock` s with dilations ``1, 2, ..., 2**(X-1)``.

    ``forward(feats [batch, io, (B,) T'])`` runs the residual path through every block and returns
    the sum of the skip outputs ``[batch, skip, (B,) T']`` (paper Fig. 1B).  The very last block has
    no residual output.

    Args:
        X: blocks per repeat, ``X``.
        R: number of repeats, ``R``.
        checkpoint_blocks: activation checkpointing per repeat while training (:func:`checkpointed`):
            the backward pass keeps each repeat's input and skip sum and recomputes its ``X`` blocks.
            Same gradients, about ``R`` times less activation memory in the stack, one more forward
            pass of the stack per step.
        **block: the keyword arguments of every :class:`ConvBlock` (``io``, ``H``, ``skip``, ``P``,
            ``norm``, ``causal``, ``dims``, ``owner``); the stack sets ``dilation`` and ``residual``.
    """

    def __init__(self, X: int, R: int, checkpoint_blocks: bool = False, **block: Any) -> None:
        super().__init__(
            ConvBlock(**block, dilation=2**x, residual=not (r == R - 1 and x == X - 1))
            for r in range(R)
            for x in range(X)
        )
        self.X = X
        self.checkpoint_blocks = checkpoint_blocks

    def _repeat(self, r: int, feats: torch.Tensor, skip_sum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Blocks ``r*X .. r*X + X - 1``: residual path and running skip sum after repeat ``r``."""
        for i in range(r * self.X, (r + 1) * self.X):
            residual, skip = self[i](feats)  # [batch, io, (B,) T'], [batch, skip, (B,) T']
            if residual is not None:
                feats = feats + residual  # [batch, io, (B,) T']
            skip_sum = skip_sum + skip  # [batch, skip, (B,) T']
        return feats, skip_sum

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        skip_sum = torch.zeros((), dtype=feats.dtype, device=feats.device)
        for r in range(len(self) // self.X):
            feats, skip_sum = checkpointed(self._repeat, r, feats, skip_sum, enabled=self.checkpoint_blocks)
        return skip_sum


class TasNetEncoder(nn.Module):
    """Learned analysis filterbank: ``Conv1d(in_channels, N, L, stride=L // 2, bias=False)``.

    ``forward(x [batch, in_channels, Tp]) -> w [batch, N, T']``; the input is padded beforehand
    with :func:`frame_padding` (``kernel``, ``stride``) so that the frames tile it
    (:class:`~se_lib.models.base.EncoderMaskerDecoder` does that).

    Args:
        in_channels: input channels (microphones the encoder sees).
        N: number of basis functions (encoder filters), ``N``.
        L: window length in samples, ``L`` (hop ``L // 2``).
    """

    def __init__(self, in_channels: int, N: int, L: int) -> None:
        super().__init__()
        if L < 2:
            raise ValueError(f"TasNetEncoder: window L must be >= 2 (hop is L // 2), got {L}")
        self.kernel = L
        self.stride = L // 2
        self.conv = nn.Conv1d(in_channels, N, kernel_size=L, stride=self.stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # [batch, N, T']


class TasNetDecoder(nn.Module):
    """Learned synthesis filterbank: ``ConvTranspose1d(N, 1, L, stride=L // 2, bias=False)``.

    ``forward(w [batch, N, T']) -> [batch, Tp]`` with ``Tp = (T' - 1) * (L // 2) + L``, the padded
    length the encoder saw.
    """

    def __init__(self, N: int, L: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(N, 1, kernel_size=L, stride=L // 2, bias=False)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.conv(w).squeeze(1)  # [batch, 1, Tp] -> [batch, Tp]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
