"""Dual-path RNN (DPRNN) with a TasNet encoder/decoder for speech enhancement.

Paper: Y. Luo, Z. Chen and T. Yoshioka, "Dual-path RNN: efficient long sequence modeling for
time-domain single-channel speech separation", ICASSP 2020 (arXiv:1910.06379).

The encoder output ``[batch, N, T']`` is normalised and projected to a bottleneck, cut into 50 %
overlapping chunks of ``K`` frames (a 3-D tensor ``[B, K, S]`` per example), processed by DPRNN
blocks that alternate an *intra-chunk* RNN (along ``K``) and an *inter-chunk* RNN (along the
``S`` chunks), each followed by a linear projection, a norm and a residual connection; the result
is merged back by overlap-add and turned into a mask on the encoding, as in the authors' TasNet
code (PReLU + 1x1 conv, overlap-add, tanh x sigmoid gated output, mask non-linearity).

The paper's best configuration (``N=64, L=2, B=64, H=128, K=250``, 6 blocks) has 2.6 M
parameters (Table 1); these are the defaults.

Multichannel use (not in the paper): ``in_channels=1`` enhances microphone ``ref_mic`` alone;
``in_channels=C`` gives the encoder all ``C`` microphones (rolled so ``ref_mic`` is first).

Shapes use the legend of :mod:`se_lib.models`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from se_lib.models.base import EncoderMaskerDecoder
from se_lib.models.common import (
    TasNetDecoder,
    TasNetEncoder,
    checkpointed,
    make_mask_activation,
    make_norm,
)

__all__ = ["DPRNN", "DPRNNBlock", "overlap_add", "segment"]

RNN_TYPES = ("LSTM", "GRU")


def segment(x: torch.Tensor, K: int) -> tuple[torch.Tensor, int]:
    """Cut ``[batch, B, T']`` into 50 % overlapping chunks ``[batch, B, K, S]``; also return the
    left padding.

    The sequence is zero-padded by ``K // 2`` on both sides (so every frame is covered by two
    chunks) and at the right so that the chunks tile it exactly.
    """
    hop = K // 2
    frames = x.shape[-1]
    total = frames + 2 * hop
    extra = K - total if total < K else (-(total - K)) % hop
    x = F.pad(x, (hop, hop + extra))  # [batch, B, K + hop * (S - 1)]
    chunks = x.unfold(-1, K, hop)  # [batch, B, S, K]
    return chunks.transpose(2, 3).contiguous(), hop  # [batch, B, K, S]


def overlap_add(chunks: torch.Tensor, frames: int, left: int) -> torch.Tensor:
    """Inverse of :func:`segment`: ``[batch, B, K, S]`` -> ``[batch, B, T']`` by overlap-add."""
    batch, feats, K, num_chunks = chunks.shape
    hop = K // 2
    padded = K + hop * (num_chunks - 1)
    folded = F.fold(
        chunks.reshape(batch, feats * K, num_chunks),
        output_size=(1, padded),
        kernel_size=(1, K),
        stride=(1, hop),
    )  # [batch, B, 1, K + hop * (S - 1)]
    return folded.view(batch, feats, padded)[..., left : left + frames]  # [batch, B, T']


class _PathRNN(nn.Module):
    """RNN along one axis of ``[batch, B, K, S]`` + linear projection + norm + residual.

    Args: ``B`` features, ``H`` hidden units per direction, the RNN type, its direction, the norm
    and the dropout after the RNN (see :class:`DPRNN`).
    """

    def __init__(self, B: int, H: int, rnn_type: str, bidirectional: bool, norm: str, dropout: float) -> None:
        super().__init__()
        rnn_cls = nn.LSTM if rnn_type == "LSTM" else nn.GRU
        self.rnn = rnn_cls(B, H, batch_first=True, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(H * (2 if bidirectional else 1), B)
        self.norm = make_norm(norm, B, "DPRNN")

    def forward(self, x: torch.Tensor, along_chunk: bool) -> torch.Tensor:
        """``x [batch, B, K, S]`` -> ``[batch, B, K, S]``; the RNN runs along ``K`` (intra-chunk)
        if ``along_chunk``, else along ``S`` (inter-chunk)."""
        batch, feats, K, S = x.shape
        if along_chunk:  # intra-chunk: sequences of length K, one per (batch, chunk)
            seq = x.permute(0, 3, 2, 1).reshape(batch * S, K, feats)  # [batch*S, K, B]
        else:  # inter-chunk: sequences of length S, one per (batch, position in chunk)
            seq = x.permute(0, 2, 3, 1).reshape(batch * K, S, feats)  # [batch*K, S, B]
        out = self.proj(self.dropout(self.rnn(seq)[0]))  # [batch*S, K, B] or [batch*K, S, B]
        if along_chunk:
            out = out.view(batch, S, K, feats).permute(0, 3, 2, 1)  # [batch, B, K, S]
        else:
            out = out.view(batch, K, S, feats).permute(0, 3, 1, 2)  # [batch, B, K, S]
        return x + self.norm(out.contiguous())  # [batch, B, K, S]


class DPRNNBlock(nn.Module):
    """One DPRNN block (paper Fig. 1): intra-chunk then inter-chunk RNN, each residual.

    ``forward(x [batch, B, K, S]) -> [batch, B, K, S]``.  Arguments as in :class:`DPRNN` (the
    intra-chunk RNN is always bidirectional, ``bidirectional`` sets the inter-chunk one).
    """

    def __init__(self, B: int, H: int, rnn_type: str, bidirectional: bool, norm: str, dropout: float) -> None:
        super().__init__()
        self.intra = _PathRNN(B, H, rnn_type, True, norm, dropout)
        self.inter = _PathRNN(B, H, rnn_type, bidirectional, norm, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inter(self.intra(x, along_chunk=True), along_chunk=False)


class DPRNN(EncoderMaskerDecoder):
    """DPRNN-TasNet enhancing the reference microphone; ``forward([batch, C, T]) -> [batch, T]``.

    Args (the paper's symbols, Sec. 3.2 / Table 1; paper values in brackets):
        N: number of encoder filters, ``N`` (64).
        L: encoder window in samples, ``L`` (2; hop ``L // 2``).
        B: bottleneck feature dimension processed by the DPRNN blocks, ``B`` (64).
        H: hidden units per direction of each RNN, ``H`` (128, BLSTM).
        K: chunk size in frames, ``K`` (250; hop ``K // 2``).
        num_blocks: number of DPRNN blocks (6).
        rnn_type: ``"LSTM"`` (paper) or ``"GRU"``.
        bidirectional: bidirectional inter-chunk RNN (paper: yes; ``False`` for a causal-ish
            model); the intra-chunk RNN is always bidirectional as in the paper.
        norm: ``"gLN"`` (paper, non-causal) or ``"cLN"``.
        mask_activation: non-linearity of the mask, ``"sigmoid"`` or ``"relu"``.
        dropout: dropout after each RNN, in ``[0, 1)``.
        in_channels: microphones the encoder takes: 1 (the reference microphone, as in the
            paper) or ``C`` (all microphones, not in the paper).
        ref_mic: the reference microphone, whose signal the model enhances.
        checkpoint_blocks: activation checkpointing of each DPRNN block while training (not in the
            paper; :func:`~se_lib.models.common.checkpointed`): the backward pass keeps each block's
            input ``[batch, B, K, S]`` and recomputes its RNNs -- same gradients, the activation
            memory of one block instead of ``num_blocks``, one more forward pass of the blocks per step.
    """

    def __init__(
        self,
        N: int = 64,
        L: int = 2,
        B: int = 64,
        H: int = 128,
        K: int = 250,
        num_blocks: int = 6,
        rnn_type: str = "LSTM",
        bidirectional: bool = True,
        norm: str = "gLN",
        mask_activation: str = "sigmoid",
        dropout: float = 0.0,
        in_channels: int = 1,
        ref_mic: int = 0,
        checkpoint_blocks: bool = False,
    ) -> None:
        super().__init__(in_channels, ref_mic, N=N, L=L, B=B, H=H, K=K, num_blocks=num_blocks)
        if K < 2:
            raise ValueError(f"DPRNN: chunk size K must be >= 2 (hop K // 2), got {K}")
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"DPRNN: unknown rnn_type {rnn_type!r}; expected one of {RNN_TYPES}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DPRNN: dropout must be in [0, 1), got {dropout}")
        self.K = K
        self.checkpoint_blocks = checkpoint_blocks
        self.encoder = TasNetEncoder(in_channels, N, L)
        self.input_norm = make_norm(norm, N, "DPRNN")
        self.bottleneck = nn.Conv1d(N, B, 1, bias=False)
        self.blocks = nn.Sequential(
            *(DPRNNBlock(B, H, rnn_type, bidirectional, norm, dropout) for _ in range(num_blocks))
        )
        self.output_act = nn.PReLU()
        self.output_conv = nn.Conv2d(B, B, 1)
        self.gate_tanh = nn.Sequential(nn.Conv1d(B, B, 1), nn.Tanh())
        self.gate_sigmoid = nn.Sequential(nn.Conv1d(B, B, 1), nn.Sigmoid())
        self.mask_conv = nn.Conv1d(B, N, 1, bias=False)
        self.mask_activation = make_mask_activation(mask_activation, "DPRNN")
        self.decoder = TasNetDecoder(N, L)

    def mask(self, w: torch.Tensor) -> torch.Tensor:
        """``w [batch, N, T']`` -> mask ``[batch, N, T']``."""
        frames = w.shape[-1]
        feats = self.bottleneck(self.input_norm(w))  # [batch, B, T']
        chunks, left = segment(feats, self.K)  # [batch, B, K, S]
        for block in self.blocks:
            chunks = checkpointed(block, chunks, enabled=self.checkpoint_blocks)  # [batch, B, K, S]
        chunks = self.output_conv(self.output_act(chunks))  # [batch, B, K, S]
        feats = overlap_add(chunks, frames, left)  # [batch, B, T']
        feats = self.gate_tanh(feats) * self.gate_sigmoid(feats)  # [batch, B, T']
        return self.mask_activation(self.mask_conv(feats))  # [batch, N, T']
