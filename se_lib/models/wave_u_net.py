"""Wave-U-Net for multichannel speech enhancement.

Papers: D. Stoller, S. Ewert and S. Dixon, "Wave-U-Net: A Multi-Scale Neural Network for
End-to-End Audio Source Separation", ISMIR 2018 (arXiv:1806.03185); applied to speech
enhancement by C. Macartney and T. Weyde, "Improved Speech Enhancement with the Wave-U-Net",
arXiv:1811.11307, 2018 (who report that fewer layers than the music model suffice for speech;
``num_layers`` sets that).

A 1-D U-Net on the waveform.  Down-sampling block ``i = 1..Ls``: conv with ``Fc * i`` filters of
size ``fd`` + LeakyReLU, kept as skip connection, then decimation (every other sample).  A
bottleneck conv with ``Fc * (Ls + 1)`` filters.  Up-sampling block ``i = Ls..1``: linear
interpolation by 2, concatenation with skip ``i``, conv with ``Fc * i`` filters of size ``fu`` +
LeakyReLU.  Finally the input is concatenated and a 1x1 conv gives the output waveform
(``tanh`` in the paper).

Constructor arguments vs. Stoller et al. (Sec. 3 / experiment set-up):

=====================  ======================================================================
argument               paper
=====================  ======================================================================
``num_layers``         ``Ls``, number of down-/up-sampling blocks (12)
``Fc``                 extra filters per layer (24)
``down_kernel``        ``fd``, down-sampling conv kernel (15)
``up_kernel``          ``fu``, up-sampling conv kernel (5)
``output_activation``  ``"tanh"`` (paper) or ``"linear"``
``in_channels``        input channels: here the ``C`` microphones (the paper: mono/stereo mix)
=====================  ======================================================================

The defaults are the paper's baseline hyper-parameters (``Ls=12, Fc=24, fd=15, fu=5``).

Departure from the paper: convolutions are zero-padded ("same") instead of the paper's
"valid" convolutions with extra input context, so the output has the input length.  The input
(all microphones, rolled so ``ref_mic`` is first) is zero-padded at the right to a multiple of
``2 ** num_layers`` and the output cropped back to ``T``; the single output channel is the
enhanced reference-microphone signal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from se_lib.models.common import (
    check_input,
    check_positive,
    check_ref_mic,
    same_padding,
    select_channels,
)

__all__ = ["WaveUNet"]

OUTPUT_ACTIVATIONS = ("tanh", "linear")


class _ConvAct(nn.Module):
    """Zero-padded ("same") 1-D conv + LeakyReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, slope: float) -> None:
        super().__init__()
        self.pad = same_padding(kernel)
        self.conv = nn.Conv1d(in_ch, out_ch, kernel)
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(F.pad(x, self.pad)))


class WaveUNet(nn.Module):
    """Wave-U-Net enhancing the reference microphone; ``forward([B, C, T]) -> [B, T]``.

    See the module docstring for the mapping of arguments to the paper.
    """

    def __init__(
        self,
        in_channels: int = 4,
        num_layers: int = 12,
        Fc: int = 24,
        down_kernel: int = 15,
        up_kernel: int = 5,
        output_activation: str = "tanh",
        leaky_slope: float = 0.2,
        ref_mic: int = 0,
    ) -> None:
        super().__init__()
        check_positive(
            "WaveUNet",
            in_channels=in_channels,
            num_layers=num_layers,
            Fc=Fc,
            down_kernel=down_kernel,
            up_kernel=up_kernel,
        )
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"WaveUNet: unknown output_activation {output_activation!r}; expected one of {OUTPUT_ACTIVATIONS}"
            )
        check_ref_mic("WaveUNet", in_channels, ref_mic)
        self.in_channels = in_channels
        self.ref_mic = ref_mic
        self.num_layers = num_layers
        self.down = nn.ModuleList(
            _ConvAct(in_channels if i == 0 else Fc * i, Fc * (i + 1), down_kernel, leaky_slope)
            for i in range(num_layers)
        )
        self.bottleneck = _ConvAct(Fc * num_layers, Fc * (num_layers + 1), down_kernel, leaky_slope)
        # up[i] produces Fc*(i+1) channels from upsampled Fc*(i+2) + skip Fc*(i+1)
        self.up = nn.ModuleList(
            _ConvAct(Fc * (i + 2) + Fc * (i + 1), Fc * (i + 1), up_kernel, leaky_slope)
            for i in range(num_layers)
        )
        self.output_conv = nn.Conv1d(Fc + in_channels, 1, 1)
        self.output_activation = nn.Tanh() if output_activation == "tanh" else nn.Identity()

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """``noisy [B, C, T]`` -> enhanced reference-microphone signal ``[B, T]``."""
        check_input(noisy, "WaveUNet", self.in_channels, self.ref_mic)
        x = select_channels(noisy, self.in_channels, self.ref_mic)
        length = x.shape[-1]
        multiple = 2**self.num_layers
        x = F.pad(x, (0, (-length) % multiple))
        skips = []
        y = x
        for layer in self.down:
            y = layer(y)
            skips.append(y)
            y = y[..., ::2]  # decimation
        y = self.bottleneck(y)
        for i in reversed(range(self.num_layers)):
            y = F.interpolate(y, scale_factor=2.0, mode="linear", align_corners=False)
            y = self.up[i](torch.cat([y, skips[i]], dim=1))
        y = self.output_activation(self.output_conv(torch.cat([y, x], dim=1)))
        return y[:, 0, :length]
