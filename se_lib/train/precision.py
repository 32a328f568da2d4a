"""Numerical precision and compilation of a training job: the workflow's ``train.precision`` and
``train.compile`` (config/schema/config.schema.yaml), resolved in the job and passed to ``se fit``.

* :func:`resolve_precision`: ``auto`` becomes ``bf16-mixed`` on a CUDA device that supports bfloat16
  (Ampere and newer: A100, H100, ...), else ``32-true`` (the CPU, older GPUs, ``accelerator: cpu``);
  any other value is Lightning's own (``--trainer.precision``). It is resolved where the job runs,
  after its GPUs were claimed, and the resolved value is what the run logs (param ``trainer/precision``).
  Under ``*-mixed`` the losses and validation metrics are computed in float32 anyway
  (:func:`se_lib.train.losses.in_fp32`).
* :func:`compile_network`: ``train.compile: true`` (``se fit --compile true``) runs the network's forward
  through ``torch.compile`` (``nn.Module.compile``: in place, so parameter names and checkpoints are
  those of the plain network and inference loads them without ``torch.compile``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["AUTO", "PRECISIONS", "compile_network", "resolve_precision"]

AUTO = "auto"
# The values the workflow accepts (the schema's enum lists the same): auto, or Lightning's names.
PRECISIONS = (AUTO, "32-true", "bf16-mixed", "16-mixed")


def resolve_precision(value: str, accelerator: str = "auto") -> str:
    """The Lightning precision for ``train.precision`` = ``value`` on this machine.

    ``auto``: ``bf16-mixed`` when ``accelerator`` is not ``cpu`` and ``torch.cuda.is_available()`` and
    ``torch.cuda.is_bf16_supported()``, else ``32-true``. Other values are returned as they are; an unknown
    one raises ``ValueError`` naming ``train.precision``.
    """
    if value not in PRECISIONS:
        raise ValueError(f"train.precision: {value!r} is not one of {', '.join(PRECISIONS)}")
    if value != AUTO:
        return value
    if accelerator == "cpu":
        return "32-true"
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def compile_network(net: nn.Module, **options: Any) -> nn.Module:
    """Compile ``net``'s forward with ``torch.compile`` in place (``options``: its keyword arguments) and
    return it. The parameters and ``state_dict`` keys stay those of the plain network."""
    net.compile(**options)
    return net
