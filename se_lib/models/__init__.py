"""Multichannel speech-enhancement networks (one architecture per module, paper cited there).

Every model maps noisy ``[batch, C, T]`` to the enhanced reference-microphone signal
``[batch, T]`` for any ``T`` and takes ``ref_mic`` (default 0); models that consume all
microphones take ``in_channels`` (the number of microphones).  The input checks, the
reference-microphone convention and the pad/crop around the network live once, in
:class:`~se_lib.models.base.ReferenceMicNet` (the template every model fills in) and
:class:`~se_lib.models.base.EncoderMaskerDecoder` (the TasNet family).

Shape legend (docstrings and the per-line shape comments of every model use it; one symbol
means one thing across the four models; constructor arguments carry the papers' symbols):

=========  =================================================================================
symbol     meaning
=========  =================================================================================
batch      examples in a batch (spelled out: ``B`` is Conv-TasNet's bottleneck)
C          microphones of the input (``in_channels`` when the model takes all of them)
T          samples per channel of the input and of the enhanced output
Tp         samples after the model's zero padding (TasNet framing, Wave-U-Net's ``2**Ls``)
T'         encoder frames (window ``L``, hop ``L // 2``)
N          encoder filters (basis functions) of the TasNet encoder/decoder
L          encoder/decoder window length in samples
B          bottleneck features (Conv-TasNet, IC Conv-TasNet, DPRNN)
H          hidden width inside a block (conv-block channels; DPRNN: RNN units per direction)
Sc         skip-connection channels (Conv-TasNet)
Cs         spatial channels between inter-channel blocks (IC Conv-TasNet)
P, X, R    depthwise kernel, blocks per repeat, repeats (Conv-TasNet, IC Conv-TasNet)
K, S       chunk length in frames and number of chunks (DPRNN)
Ls, Fc     U-Net levels (``num_layers``) and extra filters per level (Wave-U-Net)
=========  =================================================================================

``ARCHITECTURES`` maps the architecture names used in ``config/models/<arch>.yaml`` to classes.
"""

from __future__ import annotations

from se_lib.models.base import ReferenceMicNet
from se_lib.models.common import count_parameters
from se_lib.models.conv_tasnet import ConvTasNet
from se_lib.models.dprnn import DPRNN
from se_lib.models.ic_conv_tasnet import ICConvTasNet
from se_lib.models.wave_u_net import WaveUNet

ARCHITECTURES: dict[str, type[ReferenceMicNet]] = {
    "conv_tasnet": ConvTasNet,
    "ic_conv_tasnet": ICConvTasNet,
    "dprnn": DPRNN,
    "wave_u_net": WaveUNet,
}

__all__ = [
    "ARCHITECTURES",
    "DPRNN",
    "ConvTasNet",
    "ICConvTasNet",
    "ReferenceMicNet",
    "WaveUNet",
    "count_parameters",
]
