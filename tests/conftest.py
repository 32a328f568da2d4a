"""Fixtures shared by the test modules.

The tiny workflow (config/tiny.yaml) runs once per session from a copy of the source tree committed
to a fresh git repository, as in a fresh clone (``workflow_run``), shared by the end-to-end,
code-input and lineage tests.

Mixture worlds (see tests/worlds.py): a synthetic corpus, simulated rooms and a mixture DB under a
temporary root, built once per session on first use and shared by every module that asks for one.
They are read-only: a test that changes a world (its files or its DB) builds its own with
``worlds.build_world`` under ``tmp_path``.

* ``world`` -- the default world (``worlds.tiny_config``: 40/8/6 train/val/test mixtures of 2 s, four
  rooms, 3 speech and 3 noise files per split). Used by the DB, PostgreSQL, render and data-module
  tests.
* ``train_world`` -- a smaller world for the tests that train a network on it (6/4/3 mixtures, 2
  speech and 3 noise files per split; the predict step of tests/test_train.py counts its 3 test
  mixtures). Used by tests/test_train.py and tests/test_resume.py.

Both are :class:`worlds.World` tuples (``root, config, url``; ``world.rows()`` lists the mixtures).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from worlds import World, build_world, tiny_config

ROOT = Path(__file__).resolve().parent.parent
# What a checkout needs to run the workflow (the same files a user's `make run` reads).
WORKFLOW_SOURCES = (
    "Snakefile",
    "rules",
    "se_lib",
    "workflow_scripts",
    "config",
    "report",
    "envs",
    "profiles",
    ".gitignore",
)


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


def git(workdir: Path, *args: str) -> str:
    """``git <args>`` in ``workdir`` (a test identity, no signing); returns stdout, fails loudly."""
    cmd = ["git", "-c", "user.name=se-tests", "-c", "user.email=se-tests@example.invalid", "-c", "commit.gpgsign=false"]
    out = subprocess.run([*cmd, *args], cwd=workdir, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} in {workdir} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def commit_workflow_source(workdir: Path) -> str:
    """Make ``workdir`` a git repository holding its files in one commit, like a fresh clone; return the
    commit."""
    git(workdir, "init", "-q", "-b", "main")
    git(workdir, "add", "-A")
    git(workdir, "commit", "-q", "-m", "workflow source under test")
    return git(workdir, "rev-parse", "HEAD").strip()


def snakemake_env(workdir: Path) -> dict[str, str]:
    """Environment of a Snakemake run on the workflow copy in ``workdir``: ``PYTHONPATH`` puts the copy's
    se_lib ahead of the installed (editable) one, so the jobs run the copied code; MLflow/SE variables of
    the calling environment are dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SE_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(workdir), *filter(None, [env.get("PYTHONPATH")])])
    return env


# How the tests schedule the tiny workflow, locally and through SLURM alike: one core per job, so two jobs share
# the 2-core CI machine (a tiny job is mostly Python start-up and imports, which use one core; at the 2 threads
# rooms, predict and score ask for, each would wait for the one before it), and two GPU-declaring jobs in flight
# (under SLURM, where train/predict ask for a GPU whatever the submitting machine has: the test cluster has two
# fake GPUs, and the plugin only submits what Snakemake lets through; run locally here they ask for none).
TINY_SCHEDULING = (
    "--set-threads",
    "rooms=1",
    "train=1",
    "predict=1",
    "score=1",
    "score_noisy=1",
    "--resources",
    "gpu=2",
)


def run_in_own_group(cmd: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True)`` in a process group of its own: on a timeout the
    whole group (Snakemake and the jobs it started) is killed, not just ``cmd``, then ``TimeoutExpired`` is
    raised as usual."""
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 1700) -> subprocess.CompletedProcess:
    """Run Snakemake on the workflow copy in ``workdir`` (tiny config, 2 cores, :data:`TINY_SCHEDULING`), with
    :func:`snakemake_env`."""
    env = snakemake_env(workdir)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(workdir / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config" / "tiny.yaml"),
        "--cores",
        "2",
        *TINY_SCHEDULING,
        *args,
    ]
    out = run_in_own_group(cmd, cwd=workdir, env=env, timeout=timeout)
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
    source tree committed to a fresh git repository (:func:`commit_workflow_source`; tests that edit
    its files restore them): ``(workdir, CompletedProcess)``, results under ``workdir/results``."""
    workdir = copy_workflow_source(tmp_path_factory.mktemp("wf"))
    commit_workflow_source(workdir)
    return workdir, snakemake(workdir)


@pytest.fixture(scope="session")
def git_cmd():
    """:func:`git`, for tests that inspect or change the git repository of ``workflow_run``."""
    return git


def _build(
    tmp_path_factory: pytest.TempPathFactory, name: str, counts: dict[str, int] | None = None, **corpus: int
) -> World:
    """Build a world under a fresh temporary ``name`` directory; ``counts`` overrides the mixture counts
    of ``tiny_config`` and ``corpus`` the files per split of ``write_corpus``."""
    root = tmp_path_factory.mktemp(name)
    config = tiny_config(root, count=counts) if counts else tiny_config(root)
    config, url = build_world(root, config, **corpus)
    return World(root, config, url)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The default synthetic world (read-only, built once per session)."""
    return _build(tmp_path_factory, "world")


@pytest.fixture(scope="session")
def train_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The small world the training tests train on (read-only, built once per session)."""
    return _build(
        tmp_path_factory, "train_world", {"train": 6, "val": 4, "test": 3}, speech_per_split=2, noise_per_split=3
    )
