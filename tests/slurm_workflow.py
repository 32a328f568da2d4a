"""The tiny workflow through a real SLURM scheduler with the slurm profile (profiles/slurm): the run that
tests/test_slurm.py checks, done once per session by :func:`slurm_workflow`, in order:

1. starts a single-node SLURM cluster (tests/slurm_cluster.py: munged, slurmctld, slurmd; Debian's
   ``slurm-wlm`` + ``munge`` installed with apt-get when missing and root, else :class:`SlurmUnavailable`,
   which the tests turn into a skip) and an MLflow server (``mlflow server``, artifacts served by the server);
2. in a fresh copy of the source tree, ``snakemake --profile profiles/slurm`` without a tracking URI: the
   workflow must refuse the local sqlite store before submitting anything;
3. the same with ``MLFLOW_TRACKING_URI`` = the server: every job goes through sbatch;
4. in a second copy, one training with ``train.devices: 2`` through sbatch: DDP over the job's two tasks;
5. stops the server and the daemons (and records whether they are gone).

It needs nothing of the rest of the session (the tests compare it with the local run afterwards), and much of
its wall time is the scheduler's latency (sbatch -> start, job step start, status polls: ~10 s per job, a core
idle), so a session that runs other tests too starts it in the background when it starts (tests/background.py)
and the ``slurm_run`` fixture waits for it. Run alone (``pytest tests/test_slurm.py``), the fixture runs it
after the local run, so the local/SLURM ratio ``test_timings`` prints is a measurement; in the background it
is not (the output says so).

Test-only settings on top of the profile (a test cluster, not a site's): the first status check after 2 s
(the plugin's default 40 s suits real clusters), train/predict asking for a quarter of the node's memory
(the rules' 8/4 GB may exceed a CI machine; SLURM rejects a job asking for more than a node has), and the
scheduling the local run uses too (conftest.TINY_SCHEDULING: one CPU per job, two GPU jobs in flight), so
two jobs share the 2-CPU node and one is queued while another finishes (the local run: 367 -> 202 s, the SLURM
run: 740 -> 391 s on an idle 2-core machine).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from background import run_until
from conftest import TINY_SCHEDULING, commit_workflow_source, copy_workflow_source, snakemake_env
from slurm_cluster import Cluster, mlflow_server, slurm_cluster

EXPERIMENT = "tiny_smoke"  # config/tiny.yaml
DDP_EXPERIMENT = "tiny_ddp"  # the DDP training's own experiment (ddp_training)
PROFILE = "profiles/slurm"
GPU_RULES = ("train", "predict")


@dataclass
class SlurmRun:
    workdir: Path
    cluster: Cluster
    refused: subprocess.CompletedProcess
    jobs_after_refusal: list
    run: subprocess.CompletedProcess
    seconds: float
    store: str  # the server's backend store, read directly once the server is stopped
    history: list  # the scheduler's job-completion records
    squeue: dict  # job id -> state, as squeue lists them at the end (MinJobAge keeps finished jobs an hour)
    alive_after_stop: dict
    scontrol_seconds_after: float
    ddp_workdir: Path  # the DDP training (ddp_training) and its scheduler records
    ddp: subprocess.CompletedProcess
    ddp_history: list
    background: bool = False  # run while other tests ran (tests/background.py): its times are not measurements


def profile_set_resources(workdir: Path, mem_mb: int) -> list[str]:
    """The profile's set-resources as command-line values, plus ``mem_mb`` for the GPU rules."""
    profile = yaml.safe_load((workdir / PROFILE / "config.yaml").read_text())
    out = []
    for rule, resources in profile["set-resources"].items():
        resources = {**resources, **({"mem_mb": mem_mb} if rule in GPU_RULES else {})}
        out += [f"{rule}:{key}={value}" for key, value in resources.items()]
    return out


def real_memory(cluster: Cluster) -> int:
    return int(re.search(r"RealMemory=(\d+)", cluster.conf.read_text()).group(1))


def run_slurm_snakemake(
    workdir: Path,
    cluster: Cluster,
    env: dict,
    *targets: str,
    configfiles: tuple[str, ...] = ("config/tiny.yaml",),
    timeout: float = 2400,
    cancel: threading.Event | None = None,
):
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *targets,  # first: --set-resources, --resources and --configfile take every following word as theirs
        "--profile",
        PROFILE,
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--set-resources",
        *profile_set_resources(workdir, real_memory(cluster) // 4),
        *TINY_SCHEDULING,
        "--configfile",
        *configfiles,
    ]
    return run_until(cmd, cwd=workdir, env=env, timeout=timeout, cancel=cancel)


def ddp_training(
    base: Path, cluster: Cluster, env: dict, cancel: threading.Event | None = None
) -> tuple[Path, subprocess.CompletedProcess]:
    """Step 4 of the module docstring: Conv-TasNet of the tiny config with ``train.devices: 2`` through sbatch,
    in a copy of its own with MLflow experiment :data:`DDP_EXPERIMENT` (its data stage runs locally first: not
    what this checks). ``(workdir, the SLURM run)``."""
    workdir = copy_workflow_source(base / "ddp")
    (workdir / "config" / "ddp.yaml").write_text(f"experiment: {DDP_EXPERIMENT}\ntrain:\n  devices: 2\n")
    commit_workflow_source(workdir)
    configfiles = ("config/tiny.yaml", "config/ddp.yaml")
    local_env = {k: v for k, v in env.items() if k not in ("SLURM_CONF", "MLFLOW_TRACKING_URI")}
    cmd = [sys.executable, "-m", "snakemake", "results/db/digest.txt", "--cores", "2", *TINY_SCHEDULING]
    data = run_until([*cmd, "--configfile", *configfiles], cwd=workdir, env=local_env, timeout=900, cancel=cancel)
    if data.returncode != 0:
        raise AssertionError(f"data stage for the DDP run failed:\n{data.stdout[-3000:]}\n{data.stderr[-3000:]}")
    return workdir, run_slurm_snakemake(
        workdir,
        cluster,
        env,
        "results/models/conv_tasnet/best.ckpt",
        configfiles=configfiles,
        timeout=1200,
        cancel=cancel,
    )


def cancel_jobs(cluster: Cluster, timeout: float = 120) -> None:
    """Cancel every job of the test cluster and wait until the scheduler lists none (its daemon kills their
    processes; stopped before that, it would leave them running). Finished jobs are not listed: after a run that
    ended normally this returns at once."""
    with contextlib.suppress(Exception):
        cluster.run("scancel", "--user", "root")
        deadline = time.monotonic() + timeout
        while cluster.run("squeue", "-h").strip() and time.monotonic() < deadline:
            time.sleep(1)


def slurm_workflow(base: Path, cancel: threading.Event | None = None, background: bool = False) -> SlurmRun:
    """Steps 1-5 of the module docstring under ``base``; raises :class:`SlurmUnavailable` when SLURM cannot be
    had, :class:`Cancelled` when ``cancel`` is set before the end (the cluster and server are stopped either
    way)."""
    workdir = copy_workflow_source(base / "wf")
    commit_workflow_source(workdir)
    squeue: dict = {}
    history: list = []
    cluster_cm = slurm_cluster(base / "cluster")
    cluster = cluster_cm.__enter__()
    try:
        with mlflow_server(base / "mlflow") as url:
            env = {**snakemake_env(workdir), "SLURM_CONF": str(cluster.conf)}
            refused = run_slurm_snakemake(workdir, cluster, env, timeout=600, cancel=cancel)
            jobs_after_refusal = cluster.completed_jobs() + cluster.run("squeue", "-h", "-t", "all").splitlines()
            start = time.monotonic()
            run = run_slurm_snakemake(workdir, cluster, {**env, "MLFLOW_TRACKING_URI": url}, cancel=cancel)
            seconds = time.monotonic() - start
            history = cluster.completed_jobs()
            with contextlib.suppress(Exception):
                squeue = dict(
                    line.split() for line in cluster.run("squeue", "-h", "-t", "all", "-o", "%i %T").splitlines()
                )
            if run.returncode == 0:
                ddp_workdir, ddp = ddp_training(base, cluster, {**env, "MLFLOW_TRACKING_URI": url}, cancel)
    finally:
        # after a cancel, a timeout or a failure no job may outlive its scheduler (none left after a finished run)
        cancel_jobs(cluster)
        ddp_history = [rec for rec in cluster.completed_jobs() if rec not in history]
        logs = cluster.logs()
        cluster_cm.__exit__(None, None, None)
    if run.returncode != 0:
        slurm_logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted(workdir.glob("logs/slurm/**/*.log")))
        raise AssertionError(f"slurm run failed:\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}\n{slurm_logs}\n{logs}")
    # scontrol without SLURM_CONF (as every later snakemake start calls it): fails at once, no wait
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    t0 = time.monotonic()
    subprocess.run(["scontrol", "show", "config"], env=env, capture_output=True, timeout=60, check=False)
    return SlurmRun(
        workdir,
        cluster,
        refused,
        jobs_after_refusal,
        run,
        seconds,
        f"sqlite:///{base}/mlflow/mlflow.db",
        history,
        squeue,
        cluster.alive(),
        time.monotonic() - t0,
        ddp_workdir,
        ddp,
        ddp_history,
        background,
    )
