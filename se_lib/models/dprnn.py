"""Dual-path RNN (DPRNN) with a TasNet encoder/decoder for speech enhancement.

Paper: Y. Luo, Z. Chen and T. Yoshioka, "Dual-path RNN: efficient long sequence modeling for
time-domain single-channel speech separation", ICASSP 2020 (arXiv:1910.06379).

The encoder output ``[B, N, T']`` is normalised and projected to a bottleneck, cut into 50 %
overlapping chunks of ``K`` frames (a 3-D tensor ``[feature, K, S]``), processed by DPRNN blocks
that alternate an *intra-chunk* RNN (along ``K``) and an *inter-chunk* RNN (along the ``S``
chunks), each followed by a linear projection, a norm and a residual connection; the result is
merged back by overlap-add and turned into a mask on the encoding, as in the authors' TasNet
code (PReLU + 1x1 conv, overlap-add, tanh x sigmoid gated output, mask non-linearity).

Constructor arguments vs. the paper (Sec. 3.2 / Table 1):

=================  ==========================================================================
argument           paper
=================  ==========================================================================
``N``              number of encoder filters (64)
``L``              encoder window in samples (2; hop ``L // 2``)
``B``              bottleneck feature dimension processed by the DPRNN blocks (64)
``H``              hidden units per direction of each RNN (128, BLSTM)
``K``              chunk size in frames (250; hop ``K // 2``)
``num_blocks``     number of DPRNN blocks (6)
``rnn_type``       ``"LSTM"`` (paper) or ``"GRU"``
``bidirectional``  bidirectional inter-chunk RNN (paper: yes; ``False`` for a causal-ish model);
                   the intra-chunk RNN is always bidirectional as in the paper
``norm``           ``"gLN"`` (paper, non-causal) or ``"cLN"``
=================  ==========================================================================

The paper's best configuration (``N=64, L=2, B=64, H=128, K=250``, 6 blocks) has 2.6 M
parameters (Table 1); these are the defaults.

Multichannel use (not in the paper): ``in_channels=1`` enhances microphone ``ref_mic`` alone;
``in_channels=C`` gives the encoder all ``C`` microphones (rolled so ``ref_mic`` is first).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from se_lib.models.common import (
    TasNetDecoder,
    TasNetEncoder,
    check_input,
    check_positive,
    check_ref_mic,
    make_mask_activation,
    make_norm,
    select_channels,
)

__all__ = ["DPRNN", "DPRNNBlock", "overlap_add", "segment"]

RNN_TYPES = ("LSTM", "GRU")


def segment(x: torch.Tensor, K: int) -> tuple[torch.Tensor, int]:
    """Cut ``[B, F, T']`` into 50 % overlapping chunks ``[B, F, K, S]``; also return the left padding.

    The sequence is zero-padded by ``K // 2`` on both sides (so every frame is covered by two
    chunks) and at the right so that the chunks tile it exactly.
    """
    hop = K // 2
    batch, feats, frames = x.shape
    total = frames + 2 * hop
    extra = K - total if total < K else (-(total - K)) % hop
    x = F.pad(x, (hop, hop + extra))
    chunks = x.unfold(-1, K, hop)  # [B, F, S, K]
    return chunks.transpose(2, 3).contiguous(), hop


def overlap_add(chunks: torch.Tensor, frames: int, left: int) -> torch.Tensor:
    """Inverse of :func:`segment`: ``[B, F, K, S]`` -> ``[B, F, frames]`` by overlap-add."""
    batch, feats, K, num_chunks = chunks.shape
    hop = K // 2
    padded = K + hop * (num_chunks - 1)
    folded = F.fold(
        chunks.reshape(batch, feats * K, num_chunks),
        output_size=(1, padded),
        kernel_size=(1, K),
        stride=(1, hop),
    )
    return folded.view(batch, feats, padded)[..., left : left + frames]


class _PathRNN(nn.Module):
    """RNN along one axis of ``[B, F, K, S]`` + linear projection + norm + residual."""

    def __init__(self, B: int, H: int, rnn_type: str, bidirectional: bool, norm: str, dropout: float) -> None:
        super().__init__()
        rnn_cls = nn.LSTM if rnn_type == "LSTM" else nn.GRU
        self.rnn = rnn_cls(B, H, batch_first=True, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(H * (2 if bidirectional else 1), B)
        self.norm = make_norm(norm, B, "DPRNN")

    def forward(self, x: torch.Tensor, along_chunk: bool) -> torch.Tensor:
        batch, feats, K, S = x.shape
        if along_chunk:  # intra-chunk: sequences of length K, one per (batch, chunk)
            seq = x.permute(0, 3, 2, 1).reshape(batch * S, K, feats)
        else:  # inter-chunk: sequences of length S, one per (batch, position in chunk)
            seq = x.permute(0, 2, 3, 1).reshape(batch * K, S, feats)
        out = self.proj(self.dropout(self.rnn(seq)[0]))
        if along_chunk:
            out = out.view(batch, S, K, feats).permute(0, 3, 2, 1)
        else:
            out = out.view(batch, K, S, feats).permute(0, 3, 1, 2)
        return x + self.norm(out.contiguous())


class DPRNNBlock(nn.Module):
    """One DPRNN block (paper Fig. 1): intra-chunk then inter-chunk RNN, each residual."""

    def __init__(
        self, B: int, H: int, rnn_type: str, bidirectional: bool, norm: str, dropout: float
    ) -> None:
        super().__init__()
        self.intra = _PathRNN(B, H, rnn_type, True, norm, dropout)
        self.inter = _PathRNN(B, H, rnn_type, bidirectional, norm, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inter(self.intra(x, along_chunk=True), along_chunk=False)


class DPRNN(nn.Module):
    """DPRNN-TasNet enhancing the reference microphone; ``forward([B, C, T]) -> [B, T]``.

    See the module docstring for the mapping of arguments to the paper.
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
    ) -> None:
        super().__init__()
        check_positive("DPRNN", N=N, L=L, B=B, H=H, K=K, num_blocks=num_blocks, in_channels=in_channels)
        if K < 2:
            raise ValueError(f"DPRNN: chunk size K must be >= 2 (hop K // 2), got {K}")
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"DPRNN: unknown rnn_type {rnn_type!r}; expected one of {RNN_TYPES}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DPRNN: dropout must be in [0, 1), got {dropout}")
        check_ref_mic("DPRNN", in_channels, ref_mic)
        self.in_channels = in_channels
        self.ref_mic = ref_mic
        self.K = K
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

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """``noisy [B, C, T]`` -> enhanced reference-microphone signal ``[B, T]``."""
        check_input(noisy, "DPRNN", self.in_channels, self.ref_mic)
        x = select_channels(noisy, self.in_channels, self.ref_mic)
        w, pad = self.encoder(x)  # [B, N, T']
        frames = w.shape[-1]
        feats = self.bottleneck(self.input_norm(w))
        chunks, left = segment(feats, self.K)
        chunks = self.output_conv(self.output_act(self.blocks(chunks)))
        feats = overlap_add(chunks, frames, left)
        feats = self.gate_tanh(feats) * self.gate_sigmoid(feats)
        mask = self.mask_activation(self.mask_conv(feats))
        return self.decoder(w * mask, pad, noisy.shape[-1])
