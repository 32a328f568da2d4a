"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a checkout needs to run the workflow (the same files a user's `make run` reads).
WORKFLOW_SOURCES = ("Snakefile", "rules", "se_lib", "workflow_scripts", "config", "report", "envs", "profiles")


def copy_workflow_source(dest: Path) -> Path:
    """Copy the workflow's source tree to ``dest`` (no caches), so a test may run or edit it freely."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake_env(workdir: Path) -> dict[str, str]:
    """Environment of a Snakemake run on the workflow copy in ``workdir``: ``PYTHONPATH`` puts the copy's
    se_lib ahead of the installed (editable) one, so the jobs run the copied code; MLflow/SE variables of
    the calling environment are dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SE_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(workdir), *filter(None, [env.get("PYTHONPATH")])])
    return env


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 1700) -> subprocess.CompletedProcess:
    """Run Snakemake on the workflow copy in ``workdir`` (tiny config, 2 cores), with :func:`snakemake_env`."""
    env = snakemake_env(workdir)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config" / "tiny.yaml"), "--cores", "2", *args]
    out = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("logs/**/*.log")))
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-6000:]}\n{logs}")
    return out


@pytest.fixture(scope="session")
def run_snakemake():
    """:func:`snakemake`, for tests that run Snakemake again on the workflow copy of ``workflow_run``."""
    return snakemake


@pytest.fixture(scope="session", name="snakemake_env")
def snakemake_env_fixture():
    """:func:`snakemake_env`, for tests that start Snakemake their own way on the workflow copy."""
    return snakemake_env


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory):
    """The whole workflow on the tiny config (config/tiny.yaml), run once per session in a copy of the
    source tree: ``(workdir, CompletedProcess)``, results under ``workdir/results``."""
    workdir = copy_workflow_source(tmp_path_factory.mktemp("wf"))
    return workdir, snakemake(workdir)
