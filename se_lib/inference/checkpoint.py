"""A trained network from a ``se fit`` checkpoint, with plain torch (no Lightning, no pickle).

A LightningCLI checkpoint of :class:`se_lib.train.module.EnhancementModule` holds

* ``hyper_parameters``: the module's arguments (``sample_rate``, ``loss``, ...) and ``net``, the
  network's config as the ``se`` command resolved it (``{"class_path": ..., "init_args": {...}}``,
  recorded by :meth:`se_lib.train.secli.SECLI.instantiate_classes`);
* ``state_dict``: the module's tensors, the network's under the prefix ``net.`` (the loss may add
  buffers of its own, which inference does not need).

:func:`load_network` reads it with ``torch.load(..., weights_only=True)`` (tensors and plain
containers only: a checkpoint cannot run code when loaded), imports the class named by
``net.class_path`` (it must be a :class:`torch.nn.Module`), builds it from ``net.init_args`` and
loads the weights strictly. Errors name the checkpoint and what is missing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CheckpointError", "LoadedNetwork", "import_class", "load_network", "network_state_dict", "torch_device"]

NET_PREFIX = "net."


class CheckpointError(ValueError):
    """A checkpoint that cannot be turned into a network; the message names the file and the key."""


@dataclass
class LoadedNetwork:
    """A network rebuilt from a checkpoint.

    Attributes:
        net: the :class:`torch.nn.Module`, in eval mode, on ``device``.
        sample_rate: rate (Hz) the network was trained at (the module's ``sample_rate``).
        class_path: dotted path of the network's class.
        init_args: the arguments it was built with.
        hparams: all hyper-parameters of the checkpoint (the module's).
        path: the checkpoint file.
    """

    net: nn.Module
    sample_rate: int
    class_path: str
    init_args: dict[str, Any]
    hparams: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    @property
    def in_channels(self) -> int | None:
        """Microphones the network takes (None: any; single-channel models read ``ref_mic``)."""
        value = getattr(self.net, "in_channels", None)
        return int(value) if value is not None else None

    @property
    def ref_mic(self) -> int:
        return int(getattr(self.net, "ref_mic", 0))

    @property
    def parameters(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))


def torch_device(name: str = "auto") -> torch.device:
    """The device a network runs on: ``auto`` (the first visible CUDA GPU, else the CPU), ``cpu``, ``gpu`` or
    ``cuda`` (the first visible GPU), ``cuda:N``, ``mps``. ``ValueError`` for a name that is not a device or a
    GPU that is not visible; the caller says which option it came from."""
    text = str(name).lower()
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device("cuda:0" if text in ("gpu", "cuda") else text)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name!r}: not a device name (auto, cpu, gpu/cuda, cuda:N, mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}: no CUDA device is visible")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif device.type not in ("cpu", "mps"):
        raise ValueError(f"{name!r}: not a device name (auto, cpu, gpu/cuda, cuda:N, mps)")
    return device


def import_class(class_path: str, *, what: str = "class_path") -> type:
    """The class ``package.module.Name`` names; ``CheckpointError`` naming ``what`` if it cannot be imported."""
    module_name, _, name = str(class_path).rpartition(".")
    if not module_name:
        raise CheckpointError(f"{what}: {class_path!r} is not a dotted path package.module.Class")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"{what}: cannot import {class_path!r} ({exc})") from exc
    if not isinstance(cls, type):
        raise CheckpointError(f"{what}: {class_path!r} is not a class")
    return cls


def network_state_dict(state: Mapping[str, Any], prefix: str = NET_PREFIX) -> dict[str, torch.Tensor]:
    """The entries of a module's ``state_dict`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def load_network(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> LoadedNetwork:
    """The network of the ``se fit`` checkpoint at ``path`` (see the module docstring), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, pickled objects beyond weights
        raise CheckpointError(f"checkpoint {path}: cannot be read with torch.load(weights_only=True): {exc}") from exc
    if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
        raise CheckpointError(f"checkpoint {path}: no 'state_dict' (not a Lightning checkpoint)")
    hparams = dict(ckpt.get("hyper_parameters") or {})
    net_cfg = hparams.get("net")
    if not isinstance(net_cfg, Mapping) or "class_path" not in net_cfg:
        raise CheckpointError(
            f"checkpoint {path}: hyper_parameters has no 'net' with a class_path (was it written by `se fit`?)"
        )
    class_path = str(net_cfg["class_path"])
    cls = import_class(class_path, what=f"checkpoint {path}: hyper_parameters.net.class_path")
    if not issubclass(cls, nn.Module):
        raise CheckpointError(f"checkpoint {path}: {class_path} is not a torch.nn.Module")
    init_args = dict(net_cfg.get("init_args") or {})
    try:
        net = cls(**init_args)
    except TypeError as exc:
        raise CheckpointError(f"checkpoint {path}: {class_path}(**hyper_parameters.net.init_args): {exc}") from exc
    weights = network_state_dict(ckpt["state_dict"])
    if not weights:
        raise CheckpointError(f"checkpoint {path}: state_dict has no '{NET_PREFIX}*' entries")
    try:
        net.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: the weights do not fit {class_path}: {exc}") from exc
    net.to(map_location).eval()
    if "sample_rate" not in hparams:
        raise CheckpointError(f"checkpoint {path}: hyper_parameters has no 'sample_rate'")
    return LoadedNetwork(
        net=net,
        sample_rate=int(hparams["sample_rate"]),
        class_path=class_path,
        init_args=init_args,
        hparams=hparams,
        path=str(path),
    )


# The pyfunc model's artifact key of its checkpoint (se_lib.inference.pyfunc).
CHECKPOINT_KEY = "checkpoint"


def checkpoint_of(local_dir: str | os.PathLike) -> Path:
    """The checkpoint file inside a downloaded model folder: the pyfunc model's ``checkpoint`` artifact (its
    MLmodel says where), or -- a version registered before the pyfunc layout -- the folder's ``best.ckpt``."""
    local = Path(local_dir)
    if (local / "MLmodel").is_file():
        from mlflow.models import Model

        flavor = Model.load(str(local)).flavors.get("python_function", {})
        rel = (flavor.get("artifacts") or {}).get(CHECKPOINT_KEY, {}).get("path")
        if rel and (local / rel).is_file():
            return local / rel
    found = sorted(local.rglob("*.ckpt"))
    if not found:
        raise FileNotFoundError(f"{local}: neither a pyfunc model with a checkpoint artifact nor a *.ckpt file")
    return found[0]


def download_model(uri: str, tracking_uri: str) -> Path:
    """The local folder of MLflow model ``uri`` -- ``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` or
    ``models:/<name>@<alias>`` -- from the store ``tracking_uri`` (also its registry). A registered version is
    resolved with a client of that store, not MLflow's global registry URI (which ``download_artifacts``
    would use for ``models:/`` whatever it is told)."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    source = uri
    if uri.startswith("models:/"):
        rest = uri[len("models:/") :].strip("/")
        client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        if "@" in rest:
            name, alias = rest.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        elif "/" in rest and rest.rsplit("/", 1)[1].isdigit():
            name, number = rest.rsplit("/", 1)
            version = client.get_model_version(name, number)
        else:
            raise ValueError("expected models:/<name>/<version> or models:/<name>@<alias>")
        source = version.source
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=tracking_uri))
