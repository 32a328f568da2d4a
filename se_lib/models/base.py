"""The contract every model fills in: the reference-microphone template shared by all four networks.

:class:`ReferenceMicNet` holds, once, what every model does around its own network (the
"preamble"): constructor checks of the sizes and of ``ref_mic``, the input checks with clear
errors, the reference-microphone convention, padding the input to a length the network can take
and cropping the output back.  Its :meth:`~ReferenceMicNet.forward` is one template; a model
implements only :meth:`~ReferenceMicNet.padding` and :meth:`~ReferenceMicNet.enhance`.
:class:`EncoderMaskerDecoder` specialises it for the TasNet family (learned encoder, a mask on
the encoding, learned decoder), in the manner of Asteroid's ``BaseEncoderMaskerDecoder``.

Reference-microphone convention: a model that consumes a single channel (``in_channels == 1``)
uses channel ``ref_mic`` of any number ``C`` of microphones; a model that consumes all ``C``
channels (``in_channels == C``) sees them rolled so that ``ref_mic`` comes first
(``x.roll(-ref_mic, dim=1)``).  For a uniform circular array the roll is a rotation of the
array, so a network trained for one reference microphone keeps its meaning for another.

Shapes use the legend of :mod:`se_lib.models`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from se_lib.models.common import TasNetDecoder, TasNetEncoder, frame_padding

__all__ = [
    "EncoderMaskerDecoder",
    "ReferenceMicNet",
    "check_input",
    "check_positive",
    "check_ref_mic",
    "select_channels",
]


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
    """Validate a noisy batch ``[batch, C, T]`` for a model named ``owner``.

    ``in_channels == 1`` accepts any ``C > ref_mic`` (the model picks the reference channel);
    otherwise ``C`` must equal ``in_channels``.  Bad shapes raise ``ValueError``, a non-tensor or
    an integer tensor ``TypeError``; the message names the model and the offending shape.
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
    """``[batch, C, T]`` -> ``[batch, in_channels, T]``: the reference channel alone if
    ``in_channels == 1``, else all ``C`` channels rolled so that ``ref_mic`` is first."""
    if in_channels == 1:
        return x[:, ref_mic : ref_mic + 1]
    if ref_mic == 0:
        return x
    return torch.roll(x, shifts=-ref_mic, dims=1)


class ReferenceMicNet(nn.Module):
    """Base class of the enhancement models: ``forward(noisy [batch, C, T]) -> [batch, T]``.

    :meth:`forward` is the same template for every model:

    1. :func:`check_input` -- ``[batch, C, T]`` floating point, ``ref_mic < C``, and ``C ==
       in_channels`` for a model that takes every microphone (``ValueError`` naming the model);
    2. :func:`select_channels` -- ``[batch, in_channels, T]``, the reference microphone first;
    3. zero padding by :meth:`padding` -- ``[batch, in_channels, Tp]``;
    4. :meth:`enhance`, the architecture itself -- ``[batch, Tp]``;
    5. crop back to the input's ``T`` samples -- ``[batch, T]``.

    A subclass calls ``super().__init__(in_channels, ref_mic, **sizes)`` first (``sizes``: its
    integer size arguments, each checked to be positive and named in the error), then builds its
    layers, and implements :meth:`padding` and :meth:`enhance`.

    Args:
        in_channels: microphones the network takes: 1 (the reference microphone alone) or ``C``
            (all of them, ``ref_mic`` first).
        ref_mic: index of the reference microphone in the input, the channel the output enhances.
        **sizes: the subclass's positive integer size arguments (checked only, not stored).
    """

    def __init__(self, in_channels: int, ref_mic: int, **sizes: int) -> None:
        super().__init__()
        check_positive(self.owner, **sizes, in_channels=in_channels)
        check_ref_mic(self.owner, in_channels, ref_mic)
        self.in_channels = in_channels
        self.ref_mic = ref_mic

    @property
    def owner(self) -> str:
        """The model's name in error messages (its class name)."""
        return type(self).__name__

    def padding(self, length: int) -> tuple[int, int]:
        """Zero padding ``(left, right)`` of a ``length``-sample input before :meth:`enhance`."""
        raise NotImplementedError

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        """The network: padded ``x [batch, in_channels, Tp]`` -> enhanced ``[batch, Tp]``."""
        raise NotImplementedError

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """``noisy [batch, C, T]`` -> enhanced reference-microphone signal ``[batch, T]``, any ``T``."""
        check_input(noisy, self.owner, self.in_channels, self.ref_mic)
        x = select_channels(noisy, self.in_channels, self.ref_mic)  # [batch, in_channels, T]
        length = x.shape[-1]
        left, right = self.padding(length)
        enhanced = self.enhance(F.pad(x, (left, right)))  # [batch, Tp], Tp = left + T + right
        return enhanced[:, left : left + length]  # [batch, T]


class EncoderMaskerDecoder(ReferenceMicNet):
    """TasNet template: learned encoder, a mask on the encoding, learned decoder.

    ``enhance(x) = decoder(reference(w) * mask(w))`` with ``w = encode(x)``; the input is padded
    with :func:`~se_lib.models.common.frame_padding` so that the encoder's frames (window ``L``,
    hop ``L // 2``) tile it and the decoder returns exactly ``Tp`` samples.

    A subclass assigns ``self.encoder`` (:class:`~se_lib.models.common.TasNetEncoder`), its
    masking layers and ``self.decoder`` (:class:`~se_lib.models.common.TasNetDecoder`) in that
    order -- the order fixes the random initialisation and the checkpoint layout -- and
    implements :meth:`mask`.  It may override :meth:`encode` and :meth:`reference` (the inter-channel
    model encodes every microphone and masks the reference microphone's encoding).
    """

    encoder: TasNetEncoder
    decoder: TasNetDecoder

    def padding(self, length: int) -> tuple[int, int]:
        return frame_padding(length, self.encoder.kernel, self.encoder.stride)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, in_channels, Tp]`` -> encoding ``w [batch, N, T']``."""
        return self.encoder(x)

    def reference(self, w: torch.Tensor) -> torch.Tensor:
        """The encoding the mask multiplies, ``[batch, N, T']`` (default: ``w`` itself)."""
        return w

    def mask(self, w: torch.Tensor) -> torch.Tensor:
        """Encoding ``w`` -> mask ``[batch, N, T']``."""
        raise NotImplementedError

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        w = self.encode(x)  # [batch, N, T'] (inter-channel model: [batch, C, N, T'])
        mask = self.mask(w)  # [batch, N, T']
        return self.decoder(self.reference(w) * mask)  # [batch, N, T'] -> [batch, Tp]
