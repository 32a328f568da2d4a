"""Speech-enhancement metrics and the batch scorer.

* :mod:`~se_lib.metrics.si_sdr` — SI-SDR / SI-SDRi (Le Roux et al., ICASSP 2019), numpy and torch.
* :mod:`~se_lib.metrics.pesq_wb` — wide-band PESQ (ITU-T P.862.2), NaN when a file cannot be scored.
* :mod:`~se_lib.metrics.stoi` — STOI (Taal et al. 2011) and ESTOI (Jensen & Taal 2016).
* :mod:`~se_lib.metrics.dnsmos` — DNSMOS P.835 SIG/BAK/OVRL + P.808 (Reddy et al. 2021/2022) with the
  ONNX models bundled in ``speechmos``, loaded once per process.
* :mod:`~se_lib.metrics.scorer` — folder of prediction wavs -> per-file and summary TSVs, in parallel.

Names are exported lazily so ``import se_lib.metrics`` stays cheap (no pandas/onnxruntime until used).
"""

from __future__ import annotations

import importlib
from typing import Any

# Only names that differ from the submodule names (``si_sdr``, ``pesq_wb``, ``stoi``, ``dnsmos`` are
# modules: import their functions from them, e.g. ``from se_lib.metrics.si_sdr import si_sdr``).
_EXPORTS = {
    "DNSMOS": "se_lib.metrics.dnsmos",
    "DnsmosScores": "se_lib.metrics.dnsmos",
    "get_dnsmos": "se_lib.metrics.dnsmos",
    "si_sdr_improvement": "se_lib.metrics.si_sdr",
    "score_directory": "se_lib.metrics.scorer",
    "score_mixture": "se_lib.metrics.scorer",
    "summarize": "se_lib.metrics.scorer",
    "ScoringError": "se_lib.metrics.scorer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'se_lib.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
