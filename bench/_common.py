"""Helpers shared by the benchmarks in bench/ (each script puts bench/ on ``sys.path``)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def status_kb(pid: int | str, field: str) -> int:
    """``field`` (e.g. ``VmHWM``, ``VmRSS``) of ``/proc/<pid>/status`` in KiB; 0 when the process is gone
    or the field is absent (not Linux)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mib() -> float:
    """Peak resident set of this process image in MiB: ``VmHWM`` on Linux (``ru_maxrss`` would include
    the parent's RSS at fork time, as Linux carries it across ``execve``), else ``ru_maxrss``."""
    hwm = status_kb("self", "VmHWM")
    if hwm:
        return hwm / 1024
    scale = 1024 if sys.platform != "darwin" else 2**20  # ru_maxrss: KiB on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024


def run_script(script: str | Path, *args: str) -> str:
    """Run ``python <script> <args>`` from the repository root in a fresh process; return its stdout.

    Raises ``RuntimeError`` with the tail of its stderr when it fails.
    """
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(script).name} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout


def last_json(stdout: str) -> dict:
    """The JSON object a child printed last (children report one JSON line at the end)."""
    return json.loads(stdout.strip().splitlines()[-1])


def machine_info() -> dict:
    """Where a benchmark ran: platform, CPU count, torch version and the load average at the start (a
    benchmark adds ``load_avg_end`` when it is done: figures taken under load say so)."""
    import platform

    import torch

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "load_avg": os.getloadavg(),
    }


def torchaudio_conv_tasnet(a: dict):
    """``torchaudio.models.ConvTasNet`` (one source) with the arguments of our Conv-TasNet (paper symbols ``N, L,
    B, H, P, X, R``, ``mask_activation``): the reference implementation the benches put ours beside."""
    from torchaudio.models import ConvTasNet as TAConvTasNet

    return TAConvTasNet(
        num_sources=1,
        enc_kernel_size=a["L"],
        enc_num_feats=a["N"],
        msk_kernel_size=a["P"],
        msk_num_feats=a["B"],
        msk_num_hidden_feats=a["H"],
        msk_num_layers=a["X"],
        msk_num_stacks=a["R"],
        msk_activate=a.get("mask_activation", "sigmoid"),
    )
