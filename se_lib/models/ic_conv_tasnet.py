"""Inter-channel Conv-TasNet (IC Conv-TasNet) for multichannel speech enhancement.

Paper: D. Lee and J.-W. Choi, "Inter-channel Conv-TasNet for multichannel speech enhancement",
arXiv:2111.04312, 2021.

The paper extends Conv-TasNet to 3-D tensors over (spatial channel x feature x time) and assigns
the two factors of Conv-TasNet's depthwise-separable convolution to different axes: 1x1
convolutions mix the *spatial* (microphone) axis, depthwise convolutions act on the
*feature x time* plane of each channel, dilated along time.  This module implements that
structure:

1. **Shared encoder** (Conv-TasNet's, ``Conv1d(1, N, L, stride L // 2)``) applied to every
   microphone: ``w [batch, C, N, T']`` with ``C = in_channels``.
2. **Input stage**: gLN over ``(C, N, T')``, a feature bottleneck ``N -> B`` shared by all mics
   (1x1 over the feature axis), then a spatial 1x1 conv ``C -> Cs`` (mics become the
   convolution channels of a 2-D feature map ``[batch, Cs, B, T']``).
3. ``R`` repeats of ``X`` **inter-channel conv blocks**: spatial 1x1 conv ``Cs -> H``, PReLU,
   norm, 2-D depthwise conv with kernel ``P x P`` over (feature, time) with dilation
   ``(1, 2**x)`` (time only), PReLU, norm, and spatial 1x1 convs ``H -> Cs`` for the residual
   and skip paths (Conv-TasNet's block with its axes re-assigned).
4. **Mask**: PReLU on the skip sum, spatial 1x1 conv ``Cs -> 1``, feature expansion ``B -> N``,
   mask non-linearity.  The mask multiplies the **reference microphone's encoding** ``w[:, 0]``
   (channels are rolled so that ``ref_mic`` comes first) and one shared decoder
   (``ConvTranspose1d(N, 1, L)``) returns the enhanced reference signal.

The paper's full text and tables were not available when this module was written, so the
default sizes are not claimed to be the paper's: they are Conv-TasNet's ``N=512, B=128, P=3,
X=8, R=3`` with a 16 ms window (``L=256`` at 16 kHz, which keeps the 2-D feature maps of the
full-size model trainable on one GPU), ``Cs=64`` and ``H=256`` (about 1.7 M parameters for four
microphones, in line with the paper's claim of a model a tenth of the size of competing
multichannel networks).  Memory grows with ``H * B * T'``, so a short window is costly.

Shapes use the legend of :mod:`se_lib.models` (``C`` microphones: the paper's spatial axis).
"""

from __future__ import annotations

import torch
from torch import nn

from se_lib.models.base import EncoderMaskerDecoder
from se_lib.models.common import (
    ConvBlockStack,
    TasNetDecoder,
    TasNetEncoder,
    make_mask_activation,
    make_norm,
)

__all__ = ["ICConvTasNet"]


class ICConvTasNet(EncoderMaskerDecoder):
    """Inter-channel Conv-TasNet; ``forward([batch, C, T]) -> [batch, T]`` (enhanced reference mic).

    See the module docstring for the structure.

    Args (Conv-TasNet's symbols, which the paper inherits):
        in_channels: number of microphones ``C`` (size of the spatial axis of the 3-D tensor).
        N: encoder filters (feature axis of the encoder output), ``N``.
        L: encoder/decoder filter length in samples, ``L`` (hop ``L // 2``).
        B: feature-axis bottleneck of the separator, Conv-TasNet's ``B``.
        Cs: spatial channels carried between blocks (residual/skip path width).
        H: spatial channels inside a block, Conv-TasNet's ``H``.
        P: depthwise kernel size on both the feature and the time axis, ``P``.
        X: blocks per repeat (time dilations ``1 .. 2**(X-1)``), ``X``.
        R: number of repeats, ``R``.
        norm: ``"gLN"`` (non-causal) or ``"cLN"`` (causal).
        causal: pad the time axis on the left only.
        mask_activation: non-linearity of the mask, ``"sigmoid"`` or ``"relu"``.
        ref_mic: the reference microphone, whose signal the model enhances (rolled to the front).
        checkpoint_blocks: activation checkpointing of the ``R`` repeats while training (not in the
            paper): the backward pass keeps each repeat's input and recomputes its blocks -- same
            gradients, about ``R`` times less memory for the ``H x B x T'`` maps of the blocks, one
            more forward pass of the blocks per step (:class:`~se_lib.models.common.ConvBlockStack`).
    """

    def __init__(
        self,
        in_channels: int = 4,
        N: int = 512,
        L: int = 256,
        B: int = 128,
        Cs: int = 64,
        H: int = 256,
        P: int = 3,
        X: int = 8,
        R: int = 3,
        norm: str = "gLN",
        causal: bool = False,
        mask_activation: str = "sigmoid",
        ref_mic: int = 0,
        checkpoint_blocks: bool = False,
    ) -> None:
        super().__init__(in_channels, ref_mic, N=N, L=L, B=B, Cs=Cs, H=H, P=P, X=X, R=R)
        self.encoder = TasNetEncoder(1, N, L)
        self.input_norm = make_norm(norm, in_channels, "ICConvTasNet")
        self.feature_bottleneck = nn.Conv1d(N, B, 1)
        self.spatial_in = nn.Conv2d(in_channels, Cs, 1)
        self.blocks = ConvBlockStack(
            X,
            R,
            checkpoint_blocks,
            io=Cs,
            H=H,
            skip=Cs,
            P=P,
            norm=norm,
            causal=causal,
            dims=2,
            owner="ICConvTasNet",
        )
        self.output_act = nn.PReLU()
        self.spatial_out = nn.Conv2d(Cs, 1, 1)
        self.feature_expand = nn.Conv1d(B, N, 1)
        self.mask_activation = make_mask_activation(mask_activation, "ICConvTasNet")
        self.decoder = TasNetDecoder(N, L)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, C, Tp]`` -> ``w [batch, C, N, T']``: the shared encoder on every microphone."""
        batch, mics, length = x.shape
        w = self.encoder(x.reshape(batch * mics, 1, length))  # [batch*C, N, T']
        return w.view(batch, mics, -1, w.shape[-1])  # [batch, C, N, T']

    def reference(self, w: torch.Tensor) -> torch.Tensor:
        """The reference microphone's encoding ``w[:, 0]`` ``[batch, N, T']`` (rolled to the front)."""
        return w[:, 0]

    def mask(self, w: torch.Tensor) -> torch.Tensor:
        """``w [batch, C, N, T']`` -> mask ``[batch, N, T']``."""
        batch, mics, _, frames = w.shape
        feats = self.input_norm(w).reshape(batch * mics, -1, frames)  # [batch*C, N, T']
        feats = self.feature_bottleneck(feats).view(batch, mics, -1, frames)  # [batch, C, B, T']
        feats = self.spatial_in(feats)  # [batch, Cs, B, T']
        skip_sum = self.blocks(feats)  # [batch, Cs, B, T']
        mask = self.spatial_out(self.output_act(skip_sum)).squeeze(1)  # [batch, 1, B, T'] -> [batch, B, T']
        return self.mask_activation(self.feature_expand(mask))  # [batch, N, T']
