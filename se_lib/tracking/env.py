"""Environment provenance: lock-file digest, Python, torch/CUDA versions and the compute device."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import platform
import socket
import sys
from functools import lru_cache
from pathlib import Path

from se_lib.config import REPO_ROOT


def file_digest(path, algo: str = "sha256", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def torch_build() -> tuple[str, str]:
    """torch's version and the CUDA version it was built for (``"none"``), as ``torch.__version__`` and
    ``torch.version.cuda`` give them, without importing torch (2-4 s a job that runs no network need not pay):
    already imported, from the module; else from the installed package's ``torch/version.py``, the file
    ``torch.version`` is (its assignments are literals, read with :func:`ast.literal_eval`)."""
    mod = sys.modules.get("torch")
    if mod is not None and hasattr(mod, "version"):
        return str(mod.__version__), mod.version.cuda or "none"
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return "missing", "none"
    values: dict[str, object] = {}
    source = Path(next(iter(spec.submodule_search_locations)), "version.py").read_text()
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(target, ast.Name) and node.value is not None:
            try:
                values[target.id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return str(values.get("__version__", "unknown")), str(values.get("cuda") or "none")


def cuda_device_name(cuda_build: str) -> str | None:
    """Name of the GPU this process would call ``cuda:0`` (``torch.cuda.get_device_name(0)``), or None when it
    has none: torch built without CUDA, ``CUDA_VISIBLE_DEVICES`` empty, or no NVIDIA driver/GPU. Asked of torch
    when the job imported it anyway, else of NVML (no CUDA context; the device ``CUDA_VISIBLE_DEVICES`` maps to
    ``cuda:0``, :func:`se_lib.train.gpu_slots.nvml_handle`)."""
    if cuda_build == "none":
        return None
    mod = sys.modules.get("torch")
    if mod is not None and hasattr(mod, "cuda"):
        return mod.cuda.get_device_name(0) if mod.cuda.is_available() else None
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None and not [
        d for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip() and d.strip() != "-1"
    ]:
        return None
    try:
        import pynvml

        from se_lib.train.gpu_slots import nvml_handle

        pynvml.nvmlInit()
    except Exception:  # no nvidia-ml-py, no driver, no GPU
        return None
    try:
        name = pynvml.nvmlDeviceGetName(nvml_handle(pynvml, 0))
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


@lru_cache(maxsize=1)
def environment_tags() -> dict[str, str]:
    """Tags describing the software/hardware environment of this process: Python, platform, host, the uv.lock
    digest, torch and its CUDA build, and the device (the GPU ``cuda:0`` is, or the CPU). Reading them does not
    import torch (:func:`torch_build`, :func:`cuda_device_name`)."""
    tags = {
        "se.env.python": platform.python_version(),
        "se.env.platform": platform.platform(),
        "se.env.host": socket.gethostname(),
    }
    lock = REPO_ROOT / "uv.lock"
    tags["se.env.uv_lock_sha256"] = file_digest(lock) if lock.exists() else "missing"
    tags["se.env.torch"], tags["se.env.cuda"] = torch_build()
    gpu = cuda_device_name(tags["se.env.cuda"])
    tags["se.env.device"] = gpu or f"cpu ({platform.processor() or platform.machine()})"
    tags["se.env.cuda_available"] = "true" if gpu else "false"
    return tags
