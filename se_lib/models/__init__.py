"""Multichannel speech-enhancement networks (one architecture per module, paper cited there).

Every model maps noisy ``[batch, mics, time]`` to the enhanced reference-microphone signal
``[batch, time]`` for any ``time`` and takes ``ref_mic`` (default 0); models that consume all
microphones take ``in_channels`` (the number of microphones).

``ARCHITECTURES`` maps the architecture names used in ``config/models/<arch>.yaml`` to classes.
"""

from __future__ import annotations

from torch import nn

from se_lib.models.common import count_parameters
from se_lib.models.conv_tasnet import ConvTasNet
from se_lib.models.dprnn import DPRNN
from se_lib.models.ic_conv_tasnet import ICConvTasNet
from se_lib.models.wave_u_net import WaveUNet

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "conv_tasnet": ConvTasNet,
    "ic_conv_tasnet": ICConvTasNet,
    "dprnn": DPRNN,
    "wave_u_net": WaveUNet,
}

__all__ = ["ARCHITECTURES", "DPRNN", "ConvTasNet", "ICConvTasNet", "WaveUNet", "count_parameters"]
