"""Environment provenance: lock-file digest, Python, torch/CUDA versions and the compute device."""

from __future__ import annotations

import hashlib
import platform
import socket
from functools import lru_cache

from se_lib.config import REPO_ROOT


def file_digest(path, algo: str = "sha256", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=1)
def environment_tags() -> dict[str, str]:
    """Tags describing the software/hardware environment of this process."""
    tags = {
        "se.env.python": platform.python_version(),
        "se.env.platform": platform.platform(),
        "se.env.host": socket.gethostname(),
    }
    lock = REPO_ROOT / "uv.lock"
    tags["se.env.uv_lock_sha256"] = file_digest(lock) if lock.exists() else "missing"
    try:
        import torch

        tags["se.env.torch"] = torch.__version__
        tags["se.env.cuda"] = torch.version.cuda or "none"
        if torch.cuda.is_available():
            tags["se.env.device"] = torch.cuda.get_device_name(0)
            tags["se.env.cuda_available"] = "true"
        else:
            tags["se.env.device"] = f"cpu ({platform.processor() or platform.machine()})"
            tags["se.env.cuda_available"] = "false"
    except ImportError:  # pragma: no cover - torch is a hard dependency
        tags["se.env.torch"] = "missing"
    return tags
