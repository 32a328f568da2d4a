"""Conv-TasNet for (multichannel) speech enhancement.

Paper: Y. Luo and N. Mesgarani, "Conv-TasNet: Surpassing Ideal Time-Frequency Magnitude Masking
for Speech Separation", IEEE/ACM Trans. Audio, Speech, Lang. Process. 27(8):1256-1266, 2019
(arXiv:1809.07454).  The structure follows the authors' reference code as mirrored by
``torchaudio.models.ConvTasNet``; with ``Sc == B`` and ``in_channels == 1`` the parameter count is
identical to torchaudio's ``ConvTasNet(num_sources=1, ...)``.

The paper's headline non-causal configuration (Table II, 5.1 M parameters for two speakers) is
``N=512, L=16, B=128, H=512, Sc=128, P=3, X=8, R=3``; :class:`ConvTasNet` defaults to it.  With one
output source (enhancement) the count is 4.92 M.

Multichannel use (not in the paper): ``in_channels=1`` (default) enhances the reference
microphone ``ref_mic`` alone; ``in_channels=C`` feeds all ``C`` microphones to the encoder
(``Conv1d(C, N, L)``), channels rolled so that ``ref_mic`` comes first (see
:mod:`se_lib.models.base`).  The output is always the enhanced reference-microphone signal.

Shapes use the legend of :mod:`se_lib.models`.
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

__all__ = ["ConvTasNet", "TemporalConvNet"]


class TemporalConvNet(nn.Module):
    """Separation module (paper Fig. 1B): norm + bottleneck, ``R`` repeats of ``X`` conv blocks,
    PReLU + 1x1 conv ``Sc -> N`` and the mask non-linearity.

    ``forward(w [batch, N, T']) -> mask [batch, N, T']``.  Arguments as in :class:`ConvTasNet`.
    """

    def __init__(
        self,
        N: int,
        B: int,
        H: int,
        Sc: int,
        P: int,
        X: int,
        R: int,
        norm: str,
        causal: bool,
        mask_activation: str,
        checkpoint_blocks: bool = False,
    ) -> None:
        super().__init__()
        self.input_norm = make_norm(norm, N, "ConvTasNet")
        self.bottleneck = nn.Conv1d(N, B, 1)
        self.blocks = ConvBlockStack(
            X,
            R,
            checkpoint_blocks,
            io=B,
            H=H,
            skip=Sc,
            P=P,
            norm=norm,
            causal=causal,
            dims=1,
            owner="ConvTasNet",
        )
        self.output_act = nn.PReLU()
        self.output_conv = nn.Conv1d(Sc, N, 1)
        self.mask_activation = make_mask_activation(mask_activation, "ConvTasNet")

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        feats = self.bottleneck(self.input_norm(w))  # [batch, B, T']
        skip_sum = self.blocks(feats)  # [batch, Sc, T']
        return self.mask_activation(self.output_conv(self.output_act(skip_sum)))  # [batch, N, T']


class ConvTasNet(EncoderMaskerDecoder):
    """Conv-TasNet enhancing the reference microphone; ``forward([batch, C, T]) -> [batch, T]``.

    Args (the paper's symbols, Table I):
        N: number of encoder filters (encoder/decoder basis size), ``N``.
        L: encoder/decoder filter length in samples, ``L`` (hop ``L // 2``).
        B: bottleneck channels (input of every 1-D conv block, residual path), ``B``.
        H: hidden channels inside a conv block, ``H``.
        Sc: skip-connection channels, ``Sc``.
        P: kernel size of the depthwise convolution in the conv blocks, ``P``.
        X: conv blocks per repeat (dilations ``1, 2, ..., 2**(X-1)``), ``X``.
        R: number of repeats, ``R``.
        norm: ``"gLN"`` (global layer norm, non-causal) or ``"cLN"`` (cumulative, causal).
        causal: causal depthwise convolutions (left padding only).
        mask_activation: non-linearity of the mask, ``"sigmoid"`` (paper) or ``"relu"``.
        in_channels: microphones the encoder takes: 1 (the reference microphone, the paper's
            single-channel model) or ``C`` (all microphones, not in the paper).
        ref_mic: the reference microphone, whose signal the model enhances.
        checkpoint_blocks: activation checkpointing of the ``R`` repeats while training (not in the
            paper; same gradients, less memory, one more forward pass of the separator per step;
            :class:`~se_lib.models.common.ConvBlockStack`).
    """

    def __init__(
        self,
        N: int = 512,
        L: int = 16,
        B: int = 128,
        H: int = 512,
        Sc: int = 128,
        P: int = 3,
        X: int = 8,
        R: int = 3,
        norm: str = "gLN",
        causal: bool = False,
        mask_activation: str = "sigmoid",
        in_channels: int = 1,
        ref_mic: int = 0,
        checkpoint_blocks: bool = False,
    ) -> None:
        super().__init__(in_channels, ref_mic, N=N, L=L, B=B, H=H, Sc=Sc, P=P, X=X, R=R)
        self.encoder = TasNetEncoder(in_channels, N, L)
        self.separator = TemporalConvNet(N, B, H, Sc, P, X, R, norm, causal, mask_activation, checkpoint_blocks)
        self.decoder = TasNetDecoder(N, L)

    def mask(self, w: torch.Tensor) -> torch.Tensor:
        """``w [batch, N, T']`` -> mask ``[batch, N, T']``."""
        return self.separator(w)
