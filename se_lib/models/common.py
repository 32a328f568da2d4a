"""Building blocks shared by the enhancement models in :mod:`se_lib.models`.

* Input handling common to every model: shape checks with clear errors, the reference-microphone
  convention (:func:`select_channels`) and the framing pad/crop arithmetic of a TasNet
  encoder/decoder pair (:func:`frame_padding`).
* Normalisations of Conv-TasNet (Luo & Mesgarani, "Conv-TasNet: Surpassing Ideal Time-Frequency
  Magnitude Masking for Speech Separation", IEEE/ACM TASLP 27(8), 2019, Sec. III-C): global
  layer norm (gLN, non-causal) and cumulative layer norm (cLN, causal).  Both accept
  ``[batch, channels, time]`` and ``[batch, channels, ..., time]`` tensors (the inter-channel
  Conv-TasNet normalises 4-D ``[batch, channels, feature, time]`` tensors).
* :class:`TasNetEncoder` / :class:`TasNetDecoder`: the learned linear analysis/synthesis
  filterbanks (kernel ``L``, hop ``L // 2``) used by Conv-TasNet, IC Conv-TasNet and DPRNN.

Reference-microphone convention: a model that consumes a single channel uses channel
``ref_mic``; a model that consumes all ``C`` channels sees them rolled so that ``ref_mic`` comes
first (``x.roll(-ref_mic, dim=1)``).  For a uniform circular array the roll is a rotation of the
array, so a network trained for one reference microphone keeps its meaning for another.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConvBlock",
    "ConvBlockStack",
    "CumulativeLayerNorm",
    "GlobalLayerNorm",
    "TasNetDecoder",
    "TasNetEncoder",
    "check_input",
    "check_positive",
    "check_ref_mic",
    "count_parameters",
    "frame_padding",
    "make_mask_activation",
    "make_norm",
    "same_padding",
    "select_channels",
]

NORMS = ("gLN", "cLN")
MASK_ACTIVATIONS = ("sigmoid", "relu")


def check_positive(owner: str, **values: int) -> None:
    """Raise ``ValueError`` naming ``owner`` and the argument if any value is not a positive int."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: argument {name!r} must be a positive integer, got {value!r}")


def check_ref_mic(owner: str, in_channels: int, ref_mic: int) -> None:
    """Constructor check of the reference microphone: ``ref_mic >= 0`` and, for a model that
    consumes all channels (``in_channels > 1``), one of its ``in_channels`` microphones."""
    if isinstance(ref_mic, bool) or not isinstance(ref_mic, int) or ref_mic < 0:
        raise ValueError(f"{owner}: ref_mic must be a non-negative integer, got {ref_mic!r}")
    if in_channels > 1 and ref_mic >= in_channels:
        raise ValueError(f"{owner}: ref_mic={ref_mic} is not one of in_channels={in_channels} mics")


def check_input(x: torch.Tensor, owner: str, in_channels: int, ref_mic: int) -> None:
    """Validate a noisy batch ``[B, C, T]`` for a model named ``owner``.

    ``in_channels == 1`` accepts any ``C > ref_mic`` (the model picks the reference channel);
    otherwise ``C`` must equal ``in_channels``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: expected a torch.Tensor [batch, mics, time], got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"{owner}: expected noisy input of shape [batch, mics, time], got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: expected a floating-point waveform tensor, got dtype {x.dtype}")
    batch, mics, time = x.shape
    if batch < 1 or time < 1:
        raise ValueError(f"{owner}: empty input of shape {tuple(x.shape)}")
    if ref_mic >= mics:
        raise ValueError(f"{owner}: ref_mic={ref_mic} but the input has only {mics} microphone channel(s)")
    if in_channels > 1 and mics != in_channels:
        raise ValueError(
            f"{owner}: built for in_channels={in_channels} microphones but the input has {mics}; "
            "set in_channels to the number of microphones in the data"
        )


def select_channels(x: torch.Tensor, in_channels: int, ref_mic: int) -> torch.Tensor:
    """Reference channel ``[B, 1, T]`` if ``in_channels == 1``, else all channels rolled so ``ref_mic`` is first."""
    if in_channels == 1:
        return x[:, ref_mic : ref_mic + 1]
    if ref_mic == 0:
        return x
    return torch.roll(x, shifts=-ref_mic, dims=1)


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

    Causal counterpart of gLN (Conv-TasNet eq. 16-18).  Input ``[B, C, ..., T]``.
    """

    def __init__(self, channels: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduce_dims = tuple(range(1, x.ndim - 1))
        per_frame = x[0, ..., 0].numel()
        step_sum = x.sum(dim=reduce_dims)  # [B, T]
        step_pow = x.pow(2).sum(dim=reduce_dims)
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
    ``dims=1`` works on ``[batch, io, time]`` with a ``P``-tap depthwise conv; ``dims=2`` on
    ``[batch, io, feature, time]`` with a ``P x P`` depthwise conv over (feature, time), dilated in
    time only.  Non-causal ("same") padding is done by the convolution itself; causal padding
    (left only) by an explicit ``F.pad``.
    """

    def __init__(
        self, io: int, H: int, skip: int, P: int, dilation: int, norm: str, causal: bool, residual: bool,
        dims: int = 1, owner: str = "model",
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
        y = self.norm1(self.act1(self.in_conv(x)))
        if self.pad is not None:
            y = F.pad(y, self.pad)
        y = self.norm2(self.act2(self.depthwise(y)))
        residual = self.res_out(y) if self.res_out is not None else None
        return residual, self.skip_out(y)


class ConvBlockStack(nn.ModuleList):
    """``R`` repeats of ``X`` :class:`ConvBlock` s with dilations ``1, 2, ..., 2**(X-1)``.

    ``forward(feats)`` runs the residual path through every block and returns the sum of the skip
    outputs (paper Fig. 1B).  The very last block has no residual output.
    """

    def __init__(
        self, io: int, H: int, skip: int, P: int, X: int, R: int, norm: str, causal: bool,
        dims: int = 1, owner: str = "model",
    ) -> None:
        super().__init__(
            ConvBlock(io, H, skip, P, 2**x, norm, causal, residual=not (r == R - 1 and x == X - 1),
                      dims=dims, owner=owner)
            for r in range(R)
            for x in range(X)
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        skip_sum = torch.zeros((), dtype=feats.dtype, device=feats.device)
        for block in self:
            residual, skip = block(feats)
            if residual is not None:
                feats = feats + residual
            skip_sum = skip_sum + skip
        return skip_sum


class TasNetEncoder(nn.Module):
    """Learned analysis filterbank: ``Conv1d(in_channels, N, L, stride=L // 2, bias=False)``.

    :meth:`forward` pads the waveform with :func:`frame_padding` and returns the encoding
    ``[B, N, frames]`` plus the padding, which :class:`TasNetDecoder` uses to crop back.
    """

    def __init__(self, in_channels: int, N: int, L: int) -> None:
        super().__init__()
        if L < 2:
            raise ValueError(f"TasNetEncoder: window L must be >= 2 (hop is L // 2), got {L}")
        self.kernel = L
        self.stride = L // 2
        self.conv = nn.Conv1d(in_channels, N, kernel_size=L, stride=self.stride, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        pad = frame_padding(x.shape[-1], self.kernel, self.stride)
        return self.conv(F.pad(x, pad)), pad


class TasNetDecoder(nn.Module):
    """Learned synthesis filterbank: ``ConvTranspose1d(N, 1, L, stride=L // 2, bias=False)``."""

    def __init__(self, N: int, L: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(N, 1, kernel_size=L, stride=L // 2, bias=False)

    def forward(self, w: torch.Tensor, pad: tuple[int, int], length: int) -> torch.Tensor:
        """``w [B, N, frames]`` -> waveform ``[B, length]`` cropped from the padded frame grid."""
        y = self.conv(w).squeeze(1)
        return y[:, pad[0] : pad[0] + length]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
