"""Fixtures shared by the test modules.

The tiny workflow (config/tiny.yaml) runs once per session from a copy of the source tree committed
to a fresh git repository, as in a fresh clone (``workflow_run``), shared by the end-to-end,
code-input and lineage tests. ``incremental_run`` copies that finished run once and adds, after training, public
test sets and recording sets in one more Snakemake run and its report (tests/incremental.py), shared by
tests/test_test_sets.py and tests/test_recordings.py. When the session runs other tests too, the tiny run, the
incremental run (once the tiny run is done) and the SLURM run of tests/test_slurm.py start in background processes
before the first test, and the modules that need them run last (tests/background.py, ``BACKGROUND_RUNS``): the
other tests use the cores those runs leave idle.

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

import inspect
import os
import shutil
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
import yaml

import background
import corpus_standins as standins
from background import run_until
from incremental import (
    CHIME_SCALE,
    HAVE_ALSA_SOUNDS,
    VBD_SCALE,
    IncrementalRun,
    config_recordings,
    config_test_sets,
    make_recordings,
    relocate_store,
    rule_runs,
)
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


def snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: float = 1700, cancel: threading.Event | None = None
) -> subprocess.CompletedProcess:
    """Run Snakemake on the workflow copy in ``workdir`` (tiny config, 2 cores, :data:`TINY_SCHEDULING`), with
    :func:`snakemake_env`; killed with its jobs on a timeout or when ``cancel`` is set
    (:func:`background.run_until`)."""
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
    out = run_until(cmd, cwd=workdir, env=env, timeout=timeout, cancel=cancel)
    if check and out.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("logs/**/*.log")))
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-6000:]}\n{logs}")
    return out


# ------------------------------------------------------------------------------------------ test tiers
# `make test-quick` runs `pytest -m "not e2e"`: the tests that start no workflow, server or cluster. The e2e
# marker is derived here, at collection, from what each test uses (never kept by hand): a test is e2e when
#   * it is marked with one of E2E_MARKERS,
#   * it asks, directly or through its fixtures, for one of E2E_FIXTURES (the tiny workflow run, its copy with
#     test and recording sets added, the helpers that run Snakemake on its copy, the world the training tests
#     train on), or
#   * its code, its fixtures' code or the helpers of tests/ they call start Snakemake (the program name
#     "snakemake" in a command line) or refer to a function, class or module of E2E_MODULES (the helpers that
#     start PostgreSQL, Chromium, a SLURM cluster, an MLflow server).
# The reason is the marker's argument (e2e_reason(item)); `pytest -m e2e --collect-only -q` lists them.
E2E_MARKERS = ("slow", "postgres")
E2E_FIXTURES = {
    "incremental_run": "Snakemake again on a copy of the tiny workflow run",
    "workflow_run": "the tiny workflow run",
    "run_snakemake": "Snakemake on the workflow copy",
    "snakemake_env": "Snakemake on the workflow copy",
    "train_world": "trains a network on a mixture DB, end to end",
}
E2E_PROGRAMS = {"snakemake": "Snakemake"}  # a string constant naming the program a test runs
E2E_MODULES = {
    "pg": "a PostgreSQL server",
    "browser": "Chromium",
    "slurm_cluster": "the SLURM test cluster",
    "se_lib.tracking.service": "an MLflow server",
    "se_lib.tracking.server": "an MLflow server",
}


def _e2e_module(value: object) -> str | None:
    """What ``value`` (a global a test refers to) starts, when it belongs to one of :data:`E2E_MODULES`
    (exception classes do not count: a test may catch one without starting anything)."""
    if isinstance(value, type) and issubclass(value, BaseException):
        return None
    name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
    return E2E_MODULES.get(name) if isinstance(name, str) else None


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _is_test_helper(func: types.FunctionType) -> bool:
    """Whether ``func`` is defined in tests/ (a test module, conftest.py, worlds.py, ...): followed by
    :func:`_e2e_use`; library functions are judged by their module (:data:`E2E_MODULES`) alone."""
    return Path(func.__code__.co_filename).resolve().parent == ROOT / "tests"


def _e2e_use(func: object, seen: set[int]) -> str | None:
    """What ``func`` (a test or fixture function) starts: a program of :data:`E2E_PROGRAMS` its code names, or
    what the globals its code refers to start (:data:`E2E_MODULES`), following the helpers of tests/ it calls;
    ``None`` when nothing."""
    func = inspect.unwrap(getattr(func, "__func__", func))
    code, namespace = getattr(func, "__code__", None), getattr(func, "__globals__", None)
    if code is None or namespace is None or id(func) in seen:
        return None
    seen.add(id(func))
    for obj in _code_objects(code):
        for const in obj.co_consts:
            if isinstance(const, str) and const in E2E_PROGRAMS:
                return E2E_PROGRAMS[const]
        for name in obj.co_names:
            value = namespace.get(name)
            if value is None:
                continue
            why = _e2e_module(value)
            if why is None and inspect.isfunction(value) and _is_test_helper(value):
                why = _e2e_use(value, seen)
            if why:
                return why
    return None


def e2e_reason(item: pytest.Item) -> str | None:
    """Why test ``item`` is end-to-end (see :data:`E2E_MARKERS`, :data:`E2E_FIXTURES`, :data:`E2E_MODULES`),
    or ``None`` for a quick test."""
    for name in E2E_MARKERS:
        if item.get_closest_marker(name):
            return f"marked {name}"
    fixtures = getattr(item, "fixturenames", ())
    for name, why in E2E_FIXTURES.items():
        if name in fixtures:
            return f"uses {name} ({why})"
    seen: set[int] = set()
    funcs = [getattr(item, "obj", None)]
    info = getattr(item, "_fixtureinfo", None)
    for name in fixtures:
        funcs += [d.func for d in (info.name2fixturedefs.get(name, ()) if info else ())]
    for func in funcs:
        why = _e2e_use(func, seen)
        if why:
            return f"starts {why}"
    return None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every end-to-end test ``e2e`` (:func:`e2e_reason`), so ``-m "not e2e"`` leaves the quick tier; run
    the modules that wait for a background run last (:func:`background.order`)."""
    for item in items:
        why = e2e_reason(item)
        if why:
            item.add_marker(pytest.mark.e2e(why))
    background.order(items, BACKGROUND_ORDER)


def tiny_run(base: Path, cancel: threading.Event | None = None) -> tuple[Path, subprocess.CompletedProcess]:
    """The value of ``workflow_run``: the tiny workflow in a committed copy of the source tree under ``base``."""
    workdir = copy_workflow_source(base)
    commit_workflow_source(workdir)
    return workdir, snakemake(workdir, cancel=cancel)


def slurm_run_in_background(base: Path, cancel: threading.Event):
    import slurm_workflow  # not at the top: it imports this module

    return slurm_workflow.slurm_workflow(base, cancel, background=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Before the first test: start the background runs this session's tests use (tests/background.py)."""
    background.start(session.config, session.items, BACKGROUND_RUNS, BACKGROUND_NEEDS)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a background run that no test waited for (``-x``, an interrupt): no job or daemon outlives the
    session."""
    background.stop_all(session.config)


@pytest.fixture(scope="session")
def run_snakemake():
    """:func:`snakemake`, for tests that run Snakemake again on the workflow copy of ``workflow_run``."""
    return snakemake


@pytest.fixture(scope="session", name="snakemake_env")
def snakemake_env_fixture():
    """:func:`snakemake_env`, for tests that start Snakemake their own way on the workflow copy."""
    return snakemake_env


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory, request):
    """The whole workflow on the tiny config (config/tiny.yaml), run once per session in a copy of the
    source tree committed to a fresh git repository (:func:`commit_workflow_source`; tests that edit
    its files restore them): ``(workdir, CompletedProcess)``, results under ``workdir/results``. Started in
    the background when the session starts if other tests run too (:data:`BACKGROUND_RUNS`)."""
    return background.result(request.config, "workflow_run", lambda: tiny_run(tmp_path_factory.mktemp("wf")))


def incremental(
    base: Path, cancel: threading.Event | None, workflow_run: tuple[Path, subprocess.CompletedProcess]
) -> IncrementalRun:
    """The value of ``incremental_run``, built under ``base`` from the finished tiny run ``workflow_run``."""
    source, _ = workflow_run
    workdir = base / "wf"
    shutil.copytree(source, workdir, symlinks=True)
    relocate_store(workdir, source)
    trained = {r.info.run_id for r in rule_runs(workdir, "train")}
    vbd = standins.voicebank_demand(base / "VoiceBank-DEMAND", VBD_SCALE)
    chime = standins.chime4(base / "CHiME3" / "16kHz", CHIME_SCALE, sets=("et05_simu", "et05_real"))
    config = {"test_sets": config_test_sets(vbd.root, chime.root)}
    recordings_root = base / "recordings"
    recordings = make_recordings(recordings_root) if HAVE_ALSA_SOUNDS else []
    if recordings:
        config["recordings"] = config_recordings(recordings_root)
    extra = base / "incremental.yaml"
    extra.write_text(yaml.safe_dump(config))
    configfiles = ("--configfile", str(workdir / "config" / "tiny.yaml"), str(extra))
    snakemake(workdir, *configfiles, cancel=cancel)
    snakemake(workdir, *configfiles, "--report", "report.html", cancel=cancel)
    return IncrementalRun(workdir, trained, vbd, chime, recordings, recordings_root)


@pytest.fixture(scope="session")
def incremental_run(workflow_run, tmp_path_factory, request) -> IncrementalRun:
    """The finished tiny run (``workflow_run``: the models are trained once per session) copied once, its MLflow
    store pointed at the copy's own artifact folder, then extended after training: one more config file names
    public test sets (``test_sets:``, stand-ins from tests/corpus_standins.py) and recording sets
    (``recordings:``, where alsa-utils' sounds exist), and Snakemake runs again for the targets, then for
    ``report.html``. Adding them must retrain nothing: ``trained`` holds the training runs' ids from before.
    Started in the background as soon as the tiny run is done, when that runs in the background."""
    return background.result(
        request.config,
        "incremental_run",
        lambda: incremental(tmp_path_factory.mktemp("incremental"), None, workflow_run),
    )


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


# Session fixtures computed in the background (tests/background.py): fixture -> compute(base, cancel, *values of
# the fixtures it needs), what it needs, and the order their modules run in (after the modules that need none;
# the longest run last).
BACKGROUND_RUNS = {"workflow_run": tiny_run, "incremental_run": incremental, "slurm_run": slurm_run_in_background}
BACKGROUND_NEEDS = {"incremental_run": ("workflow_run",)}
BACKGROUND_ORDER = {"workflow_run": 1, "incremental_run": 1, "slurm_run": 2}
