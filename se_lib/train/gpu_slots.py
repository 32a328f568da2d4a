"""GPU slots: concurrent GPU jobs on one machine each get their own device(s).

Snakemake only counts GPUs (``--resources gpu=N`` caps the sum of the running jobs' ``gpu``
resources); it does not say *which* GPU a job may use, so without this every job would run on the
first one. :func:`claim_gpus` (called by the train/predict job scripts before torch initialises
CUDA) picks free devices and sets ``CUDA_VISIBLE_DEVICES`` for the job:

* **slots** -- one lock file per device in :func:`lock_dir`, held with ``flock`` for the life of the
  job's process. The kernel drops the lock when the process exits *or dies* (SIGKILL, OOM kill), so a
  crashed job never leaves its device taken. A job that finds fewer free devices than it needs (other
  workflows on the same machine, or Snakemake run without ``--resources gpu=N``) waits for them.
* **scheduler** -- under SLURM (``SLURM_JOB_ID`` set) the scheduler's assignment is respected as it is
  (SLURM sets ``CUDA_VISIBLE_DEVICES`` for the GPUs it granted); nothing is locked.
* **inherited** -- a process started by a job that claimed devices (Lightning's DDP ranks re-run the
  job script) keeps its parent's devices (:data:`ASSIGNED_ENV`).
* **none** -- no GPU on the machine: the job runs on the CPU and says so in its log (one line). Run by the
  local executor, such jobs ask for no ``gpu`` at all (:func:`job_gpus`), so they do not queue behind
  ``--resources gpu=N`` and run side by side as cores allow.

The devices to choose from: ``$SE_GPU_DEVICES`` (comma-separated ids: an override, e.g. fake devices
in tests), else a ``CUDA_VISIBLE_DEVICES`` set before the workflow started (a subset the user allows),
else every GPU NVML reports, by UUID (CUDA's own device order can differ from NVML's; UUIDs are
unambiguous). No nvidia-smi, and CUDA is never initialised here.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEVICES_ENV = "SE_GPU_DEVICES"  # override of the discovered device ids (comma-separated)
LOCK_DIR_ENV = "SE_GPU_LOCK_DIR"  # where the slot lock files live (default: per user, in the temp dir)
ASSIGNED_ENV = "SE_GPU_ASSIGNED"  # devices a parent job claimed; its child processes keep them
CUDA_ENV = "CUDA_VISIBLE_DEVICES"


@dataclass
class GpuClaim:
    """The devices a job got, how (``slots``, ``scheduler``, ``inherited``, ``none``), and the line its
    log shows. Slots are held until :meth:`release` or the end of the process."""

    devices: tuple[str, ...]
    source: str
    message: str
    _fds: list[int] = field(default_factory=list, repr=False)

    def release(self) -> None:
        """Free the slots now (closing the lock files drops the locks)."""
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> GpuClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def job_gpus(
    devices: int, accelerator: str | None, *, local: bool = False, environ: Mapping[str, str] | None = None
) -> int:
    """GPUs a job asks the scheduler for (its ``gpu`` resource): ``devices``; none when it is told to use the
    CPU (``accelerator`` cpu), or when it runs on this machine (``local``: Snakemake's local executor) and the
    machine has no GPU to give (:func:`visible_devices` empty). Such a job runs on the CPU either way; counting it
    against ``--resources gpu=N`` would only keep the CPU jobs of a GPU-less machine from running side by side.
    A cluster executor's jobs run elsewhere: they ask for ``devices`` whatever the submitting machine has."""
    if accelerator == "cpu" or (local and not visible_devices(environ)):
        return 0
    return int(devices)


def lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$SE_GPU_LOCK_DIR``, else ``<temp dir>/se-gpu-slots-<uid>``: one folder per machine and user, so
    that every workflow this user runs on the machine shares the slots."""
    env = os.environ if environ is None else environ
    return Path(env.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / f"se-gpu-slots-{os.getuid()}")


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def nvml_devices() -> list[str]:
    """UUIDs of the GPUs NVML reports (empty without an NVIDIA driver); CUDA is not initialised."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no nvidia-ml-py, no driver, no GPU
        return []
    try:
        uuids = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i))
            uuids.append(uuid.decode() if isinstance(uuid, bytes) else str(uuid))
        return uuids
    except Exception as exc:
        log.warning("NVML lists no usable GPU (%s)", exc)
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def visible_devices(environ: Mapping[str, str] | None = None) -> list[str]:
    """The device ids jobs may claim: ``$SE_GPU_DEVICES``, else ``$CUDA_VISIBLE_DEVICES``, else NVML's."""
    env = os.environ if environ is None else environ
    if env.get(DEVICES_ENV) is not None:
        return _split(env[DEVICES_ENV])
    if env.get(CUDA_ENV) is not None:
        return [d for d in _split(env[CUDA_ENV]) if d != "-1"]
    return nvml_devices()


def nvml_handle(nvml: Any, cuda_index: int, environ: Mapping[str, str] | None = None) -> Any:
    """NVML handle of the GPU CUDA calls ``cuda:<cuda_index>`` in this process. NVML numbers every GPU
    of the machine; CUDA only those ``CUDA_VISIBLE_DEVICES`` lists (by index or UUID), e.g. a job given
    slot ``GPU-5e1...`` sees it as ``cuda:0``."""
    env = os.environ if environ is None else environ
    visible = _split(env.get(CUDA_ENV, "")) if env.get(CUDA_ENV) is not None else []
    if not visible:
        return nvml.nvmlDeviceGetHandleByIndex(int(cuda_index))
    entry = visible[int(cuda_index)]
    if entry.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(entry))
    return nvml.nvmlDeviceGetHandleByUUID(entry)


def _lock_file(folder: Path, device: str) -> Path:
    return folder / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}.lock"


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path`` (which then names this process), or None if taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    return fd


def holders(folder: Path, devices: list[str]) -> dict[str, str]:
    """Who last took each device's slot (``pid host`` as written in its lock file), for log messages."""
    out = {}
    for device in devices:
        try:
            out[device] = _lock_file(folder, device).read_text().strip()
        except OSError:
            out[device] = "?"
    return out


def claim_gpus(
    count: int,
    *,
    environ: MutableMapping[str, str] | None = None,
    folder: str | os.PathLike | None = None,
    poll_seconds: float = 0.5,
    timeout_seconds: float | None = None,
    logger: logging.Logger | None = None,
) -> GpuClaim:
    """Claim ``count`` GPUs for this process and set ``CUDA_VISIBLE_DEVICES`` (in ``environ``, default
    ``os.environ``) to them; logs one line saying what the job got (see the module docstring).

    Waits for free slots (forever, or ``timeout_seconds``: then ``TimeoutError``); asking for more GPUs
    than the machine has is a ``ValueError``. Call it before torch initialises CUDA.
    """
    env = os.environ if environ is None else environ
    say = logger or log
    count = int(count)
    if count <= 0:  # accelerator cpu, or a GPU-less machine (job_gpus asked for none)
        why = "none requested" if visible_devices(env) else f"none found on {socket.gethostname()}"
        claim = GpuClaim((), "none", f"GPU: {why}; this job runs on the CPU")
        say.info(claim.message)
        return claim
    if env.get(ASSIGNED_ENV) is not None:
        devices = tuple(_split(env[ASSIGNED_ENV]))
        return GpuClaim(devices, "inherited", f"GPU: {CUDA_ENV}={','.join(devices)} (claimed by the parent job)")
    if env.get("SLURM_JOB_ID"):
        given = env.get(CUDA_ENV)
        if given:
            claim = GpuClaim(
                tuple(_split(given)),
                "scheduler",
                f"GPU: {CUDA_ENV}={given} as assigned by SLURM job {env['SLURM_JOB_ID']}",
            )
        else:
            claim = GpuClaim(
                (), "scheduler", f"GPU: SLURM job {env['SLURM_JOB_ID']} was given none; this job runs on the CPU"
            )
        say.info(claim.message)
        return claim
    pool = visible_devices(env)
    if not pool:
        claim = GpuClaim((), "none", f"GPU: none found on {socket.gethostname()}; this job runs on the CPU")
        say.warning(claim.message)
        return claim
    if count > len(pool):
        raise ValueError(
            f"this job needs {count} GPUs but only {len(pool)} are visible ({','.join(pool)}); "
            "lower train.devices or make more GPUs visible"
        )
    root = Path(folder) if folder is not None else lock_dir(env)
    root.mkdir(parents=True, exist_ok=True)
    start, waited = time.monotonic(), False
    while True:
        fds: list[int] = []
        got: list[str] = []
        for device in pool:
            fd = _try_lock(_lock_file(root, device))
            if fd is not None:
                fds.append(fd)
                got.append(device)
                if len(got) == count:
                    break
        if len(got) == count:
            break
        for fd in fds:
            os.close(fd)
        if not waited:
            waited = True
            say.info("GPU: waiting for %d free of %s (slots held by %s)", count, pool, holders(root, pool))
        if timeout_seconds is not None and time.monotonic() - start > timeout_seconds:
            raise TimeoutError(f"no {count} free GPU slot(s) of {pool} in {timeout_seconds} s (lock files in {root})")
        time.sleep(poll_seconds)
    value = ",".join(got)
    env[CUDA_ENV] = value
    env[ASSIGNED_ENV] = value
    claim = GpuClaim(tuple(got), "slots", f"GPU: {CUDA_ENV}={value} (slot lock in {root})", fds)
    say.info(claim.message)
    return claim
