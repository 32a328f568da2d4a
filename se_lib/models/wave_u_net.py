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

The defaults are the paper's baseline hyper-parameters (``Ls=12, Fc=24, fd=15, fu=5``).

Departure from the paper: convolutions are zero-padded ("same") instead of the paper's
"valid" convolutions with extra input context, so the output has the input length.  The input
(all microphones, rolled so ``ref_mic`` is first) is zero-padded at the right to a multiple of
``2 ** num_layers`` and the output cropped back to ``T``; the single output channel is the
enhanced reference-microphone signal.

Shapes use the legend of :mod:`se_lib.models`; inside the U-Net, block ``i`` has ``Fc * i``
channels at ``Tp / 2**(i-1)`` samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from se_lib.models.base import ReferenceMicNet
from se_lib.models.common import same_padding

__all__ = ["WaveUNet"]

OUTPUT_ACTIVATIONS = ("tanh", "linear")


class _ConvAct(nn.Module):
    """Zero-padded ("same") 1-D conv + LeakyReLU: ``[batch, in_ch, t] -> [batch, out_ch, t]``."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, slope: float) -> None:
        super().__init__()
        self.pad = same_padding(kernel)
        self.conv = nn.Conv1d(in_ch, out_ch, kernel)
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(F.pad(x, self.pad)))


class WaveUNet(ReferenceMicNet):
    """Wave-U-Net enhancing the reference microphone; ``forward([batch, C, T]) -> [batch, T]``.

    Args (Stoller et al.'s symbols, Sec. 3 / experiment set-up; paper values in brackets):
        in_channels: input channels, here the ``C`` microphones (the paper: mono/stereo mix).
        num_layers: ``Ls``, number of down-/up-sampling blocks (12).
        Fc: extra filters per layer, ``Fc`` (24).
        down_kernel: ``fd``, down-sampling conv kernel (15).
        up_kernel: ``fu``, up-sampling conv kernel (5).
        output_activation: ``"tanh"`` (paper) or ``"linear"``.
        difference_output: the paper's difference output layer (sources add up to the mixture), for the
            two sources speech and noise: the network's output is the noise, and the enhanced speech is the
            reference microphone minus it, so an untrained network starts from the noisy input instead of
            silence (False, the paper's baseline: the output is the speech itself).
        leaky_slope: negative slope of the LeakyReLUs (0.2).
        ref_mic: the reference microphone, whose signal the model enhances (rolled to the front).
    """

    def __init__(
        self,
        in_channels: int = 4,
        num_layers: int = 12,
        Fc: int = 24,
        down_kernel: int = 15,
        up_kernel: int = 5,
        output_activation: str = "tanh",
        difference_output: bool = False,
        leaky_slope: float = 0.2,
        ref_mic: int = 0,
    ) -> None:
        super().__init__(
            in_channels, ref_mic, num_layers=num_layers, Fc=Fc, down_kernel=down_kernel, up_kernel=up_kernel
        )
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"WaveUNet: unknown output_activation {output_activation!r}; expected one of {OUTPUT_ACTIVATIONS}"
            )
        self.num_layers = num_layers
        self.difference_output = difference_output
        self.down = nn.ModuleList(
            _ConvAct(in_channels if i == 0 else Fc * i, Fc * (i + 1), down_kernel, leaky_slope)
            for i in range(num_layers)
        )
        self.bottleneck = _ConvAct(Fc * num_layers, Fc * (num_layers + 1), down_kernel, leaky_slope)
        # up[i] produces Fc*(i+1) channels from upsampled Fc*(i+2) + skip Fc*(i+1)
        self.up = nn.ModuleList(
            _ConvAct(Fc * (i + 2) + Fc * (i + 1), Fc * (i + 1), up_kernel, leaky_slope) for i in range(num_layers)
        )
        self.output_conv = nn.Conv1d(Fc + in_channels, 1, 1)
        self.output_activation = nn.Tanh() if output_activation == "tanh" else nn.Identity()

    def padding(self, length: int) -> tuple[int, int]:
        """Right padding to a multiple of ``2 ** Ls`` (every decimation halves an even length)."""
        return 0, (-length) % 2**self.num_layers

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, in_channels, Tp]`` -> ``[batch, Tp]``."""
        skips = []
        y = x
        for layer in self.down:  # block i = 1..Ls
            y = layer(y)  # [batch, Fc*i, Tp / 2**(i-1)]
            skips.append(y)
            y = y[..., ::2]  # decimation: [batch, Fc*i, Tp / 2**i]
        y = self.bottleneck(y)  # [batch, Fc*(Ls+1), Tp / 2**Ls]
        for i in reversed(range(self.num_layers)):  # block i + 1 = Ls..1
            y = F.interpolate(y, scale_factor=2.0, mode="linear", align_corners=False)  # [batch, Fc*(i+2), Tp / 2**i]
            y = self.up[i](torch.cat([y, skips[i]], dim=1))  # [batch, Fc*(i+1), Tp / 2**i]
        y = self.output_activation(self.output_conv(torch.cat([y, x], dim=1)))[:, 0]  # [batch, Tp]
        if self.difference_output:
            return x[:, 0] - y  # the reference microphone minus the estimated noise: [batch, Tp]
        return y  # [batch, Tp]
