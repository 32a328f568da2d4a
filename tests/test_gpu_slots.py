"""GPU slots (se_lib.train.gpu_slots) with fake devices and real processes.

* Snakemake runs four ``gpu=1`` jobs with ``--resources gpu=2`` over two fake devices
  (``SE_GPU_DEVICES``); each job claims a slot as the workflow's scripts do and records what it saw:
  jobs that overlap in time saw different devices, and both devices were used.
* A slot held by a process that is SIGKILLed is free again: a job waiting for a device gets it.
* Under SLURM the scheduler's ``CUDA_VISIBLE_DEVICES`` is kept; without a GPU the job says it runs on
  the CPU; asking for more GPUs than visible is a clear error.
* The workflow's train/predict jobs ask for a ``gpu`` only where the machine has one (local executor).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from se_lib.train.gpu_slots import (
    ASSIGNED_ENV,
    CUDA_ENV,
    DEVICES_ENV,
    LOCK_DIR_ENV,
    claim_gpus,
    job_gpus,
    nvml_handle,
)

JOB_SCRIPT = """
import json, os, time
from se_lib.train.gpu_slots import claim_gpus

from pathlib import Path

claim = claim_gpus(snakemake.resources.gpu, poll_seconds=0.1)
start = time.time()
started = Path("started")
started.mkdir(exist_ok=True)
(started / snakemake.wildcards.i).touch()
while len(list(started.iterdir())) < 2 and time.time() < start + 60:  # the first two jobs overlap
    time.sleep(0.05)
time.sleep(1.0)
record = {"job": snakemake.wildcards.i, "pid": os.getpid(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
          "devices": list(claim.devices), "start": start, "end": time.time()}
open(snakemake.output[0], "w").write(json.dumps(record))
"""

SNAKEFILE = """
rule all:
    input: expand("out/{i}.json", i=range(4))

rule gpu_job:
    output: "out/{i}.json"
    resources: gpu=1
    script: "job.py"
"""

HOLDER = """
import os, sys, time
from se_lib.train.gpu_slots import claim_gpus

claim = claim_gpus(1, poll_seconds=0.1)
open(sys.argv[1], "w").write(os.environ["CUDA_VISIBLE_DEVICES"])
time.sleep(120)
"""


def slot_env(tmp_path: Path, devices: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CUDA_ENV, ASSIGNED_ENV, "SLURM_JOB_ID")}
    return {**env, DEVICES_ENV: devices, LOCK_DIR_ENV: str(tmp_path / "locks")}


def test_concurrent_snakemake_jobs_get_distinct_devices(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE, encoding="utf-8")
    (tmp_path / "job.py").write_text(JOB_SCRIPT, encoding="utf-8")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "4", "--resources", "gpu=2", "--quiet", "all"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=slot_env(tmp_path, "0,1"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("*.json"))]
    assert len(records) == 4
    assert all(r["cuda"] in ("0", "1") and r["devices"] == [r["cuda"]] for r in records)
    assert {r["cuda"] for r in records} == {"0", "1"}
    overlaps = 0
    for i, a in enumerate(records):
        for b in records[i + 1 :]:
            if a["start"] < b["end"] and b["start"] < a["end"]:
                overlaps += 1
                assert a["cuda"] != b["cuda"], (a, b)
    assert overlaps >= 1  # two jobs did run at the same time


def _wait_for(path: Path, seconds: float = 60.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path} not written in {seconds} s")


def test_slot_of_a_killed_process_is_reused(tmp_path):
    (tmp_path / "holder.py").write_text(HOLDER, encoding="utf-8")
    env = slot_env(tmp_path, "0,1")
    procs = {}

    def start(name: str) -> Path:
        seen = tmp_path / f"{name}.txt"
        procs[name] = subprocess.Popen([sys.executable, str(tmp_path / "holder.py"), str(seen)], cwd=tmp_path, env=env)
        return seen

    try:
        first = _wait_for(start("a"))
        second = _wait_for(start("b"))
        assert {first, second} == {"0", "1"}
        waiting = start("c")
        time.sleep(2.0)
        assert not waiting.exists() and procs["c"].poll() is None  # both devices taken: c waits
        procs["a"].send_signal(signal.SIGKILL)
        procs["a"].wait(timeout=30)
        assert _wait_for(waiting, 30) == first  # the killed process's device
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


def test_scheduler_cpu_and_limits(tmp_path, caplog):
    # SLURM assigned the devices: kept as they are, nothing locked
    env = {"SLURM_JOB_ID": "42", CUDA_ENV: "3", DEVICES_ENV: "0,1,2,3", LOCK_DIR_ENV: str(tmp_path / "locks")}
    claim = claim_gpus(1, environ=env)
    assert (claim.source, claim.devices, env[CUDA_ENV]) == ("scheduler", ("3",), "3")
    assert not (tmp_path / "locks").exists()
    # no GPU on the machine: the job says it runs on the CPU
    env = {DEVICES_ENV: "", LOCK_DIR_ENV: str(tmp_path / "locks")}
    with caplog.at_level("INFO"):
        claim = claim_gpus(1, environ=env)
    assert claim.source == "none" and CUDA_ENV not in env
    assert "this job runs on the CPU" in caplog.text
    # ... also when the workflow asked for none because of that (job_gpus on a GPU-less machine), or the CPU
    caplog.clear()
    with caplog.at_level("INFO"):
        assert claim_gpus(0, environ=dict(env)).source == "none"
        claim_gpus(0, environ={DEVICES_ENV: "0"})
    assert "GPU: none found on" in caplog.text and "GPU: none requested; this job runs on the CPU" in caplog.text
    # more GPUs than visible: named, not waited for
    with pytest.raises(ValueError, match="needs 3 GPUs but only 2 are visible"):
        claim_gpus(3, environ={DEVICES_ENV: "0,1", LOCK_DIR_ENV: str(tmp_path / "locks")})
    # two devices for one job (DDP); its child processes keep them; release frees them at once
    env = {DEVICES_ENV: "a,b,c", LOCK_DIR_ENV: str(tmp_path / "locks")}
    with claim_gpus(2, environ=env) as claim:
        assert claim.devices == ("a", "b") and env[CUDA_ENV] == "a,b"
        child = claim_gpus(2, environ=dict(env))
        assert (child.source, child.devices) == ("inherited", ("a", "b"))
        with pytest.raises(TimeoutError):
            claim_gpus(2, environ={DEVICES_ENV: "a,b,c", LOCK_DIR_ENV: str(tmp_path / "locks")}, timeout_seconds=0.3)
    again = claim_gpus(2, environ={DEVICES_ENV: "a,b,c", LOCK_DIR_ENV: str(tmp_path / "locks")})
    assert again.devices == ("a", "b")
    again.release()
    assert job_gpus(2, "auto") == 2 and job_gpus(2, "cpu") == 0
    # run here (local executor): only when this machine has a GPU to give; a cluster's jobs ask regardless
    assert job_gpus(2, "auto", local=True, environ={DEVICES_ENV: "a,b"}) == 2
    assert job_gpus(2, "auto", local=True, environ={DEVICES_ENV: ""}) == 0
    assert job_gpus(1, "gpu", local=True, environ={CUDA_ENV: "-1"}) == 0
    assert job_gpus(2, "auto", local=False, environ={DEVICES_ENV: ""}) == 2


def test_gpu_monitor_watches_the_slot_it_was_given():
    """NVML numbers all GPUs of the machine; CUDA only the visible ones (by index or UUID)."""
    nvml = types.SimpleNamespace(
        nvmlDeviceGetHandleByIndex=lambda i: ("index", i), nvmlDeviceGetHandleByUUID=lambda u: ("uuid", u)
    )
    assert nvml_handle(nvml, 1, {}) == ("index", 1)
    assert nvml_handle(nvml, 1, {CUDA_ENV: "3,2"}) == ("index", 2)
    assert nvml_handle(nvml, 0, {CUDA_ENV: "GPU-5e1f"}) == ("uuid", "GPU-5e1f")


@pytest.mark.parametrize(("devices", "expected"), [("", "0"), ("0", "1")])
def test_workflow_asks_for_a_gpu_only_where_there_is_one(tmp_path, devices, expected):
    """The real workflow's train and predict jobs (a dry run, local executor): ``gpu=1`` on a machine with a GPU,
    ``gpu=0`` without one, so there they run side by side instead of queueing behind ``--resources gpu=1``."""
    from conftest import copy_workflow_source, snakemake_env

    workdir = copy_workflow_source(tmp_path / "wf")
    env = {**snakemake_env(workdir), DEVICES_ENV: devices}
    cmd = [sys.executable, "-m", "snakemake", "-n", "--resources", "gpu=1", "--configfile", "config/tiny.yaml"]
    out = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    jobs = re.findall(r"^(?:local)?rule (\w+):.*?resources: ([^\n]*)", out.stdout, re.M | re.S)
    gpus = {rule: dict(kv.split("=", 1) for kv in res.split(", ")).get("gpu") for rule, res in jobs}
    assert gpus["train"] == gpus["predict"] == expected, gpus
    assert gpus["score"] is None
