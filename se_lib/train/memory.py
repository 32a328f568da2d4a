"""Activation memory of a training step, measured on any device (the CPU included).

:func:`saved_activation_bytes` counts what autograd keeps from a forward pass for the backward pass
(``torch.autograd.graph.saved_tensors_hooks``): the distinct storages of the saved tensors, the network's
parameters left out. That is the activation memory a training step holds at the end of its forward
pass, the part of the peak that grows with ``batch x seconds``; it scales linearly with both, so a tiny
batch on the CPU gives the ratio that activation checkpointing (``checkpoint_blocks``) or bf16 autocast
buys at the paper's batch on a GPU. With checkpointing the backward pass also recomputes one stage at a
time: the peak is this count plus one stage's activations (about the unchecked count / stages).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

__all__ = ["saved_activation_bytes"]


def _storage_key(t: Tensor) -> tuple[str, int]:
    storage = t.untyped_storage()
    return (str(t.device), storage.data_ptr())


def saved_activation_bytes(forward: Callable[[], Any], exclude: Iterable[Tensor] = ()) -> tuple[int, Any]:
    """``(bytes, result)``: run ``forward()`` (e.g. the network and the loss), return the bytes of the
    distinct storages autograd saved for the backward pass, without those of ``exclude`` (pass the
    parameters: they are held anyway), and ``forward``'s result (call ``.backward()`` on it)."""
    excluded = {_storage_key(t) for t in exclude}
    seen: dict[tuple[str, int], int] = {}

    def pack(t: Tensor) -> Tensor:
        key = _storage_key(t)
        if key not in excluded and key[1] != 0:
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = forward()
    return sum(seen.values()), result
