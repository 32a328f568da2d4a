"""Session fixtures that take minutes and need nothing from the rest of the session, started in processes of
their own when the session starts, so the tests that do not need them run meanwhile.

Such a run is a whole workflow run (the tiny workflow, the tiny workflow through SLURM), and much of its wall
time leaves a core idle (one-core job chains, Python start-up between jobs, the scheduler's latency under
SLURM). tests/conftest.py names them (``BACKGROUND_RUNS``: fixture -> what computes it); :func:`start` starts
those the session's tests use, before the first test (``pytest_runtestloop``), each in a process of its own
(:class:`Background`: the environment of that moment, untouched by what tests monkeypatch later); :func:`order`
runs the modules that wait for them after the others; the fixture takes its value with :func:`result` (or
computes it itself when nothing was started: a session of only that fixture's tests, which then runs as it did
alone); :func:`stop_all` stops what still runs when the session ends (``-x``, an interrupt): each run's
commands are killed and its own cleanup runs (the SLURM run cancels its jobs and stops its daemons).

The price: what runs beside the background runs shares the cores with them, so wall times measured inside such
a session (the SLURM/local ratio of tests/test_slurm.py) are not measurements; run the module alone for those.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest


class Cancelled(RuntimeError):
    """The session ended before the background run did (:meth:`Background.cancel`)."""


def run_until(
    cmd: list[str], *, timeout: float, cancel: threading.Event | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)`` in a process group of its own
    (Snakemake and the jobs it starts), killed as a whole on a timeout (``TimeoutExpired``, as ``subprocess.run``
    raises it) or when ``cancel`` is set (:class:`Cancelled`)."""
    deadline = time.monotonic() + timeout
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs
    ) as proc:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=1)  # retried after a timeout: no output is lost
                break
            except subprocess.TimeoutExpired:
                timed_out = time.monotonic() > deadline
                if not timed_out and not (cancel is not None and cancel.is_set()):
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                if timed_out:
                    raise subprocess.TimeoutExpired(cmd, timeout) from None
                raise Cancelled(f"{' '.join(map(str, cmd[:4]))} ... stopped: the test session ended first") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


class Background:
    """``compute(base, cancel, *values)`` of :data:`conftest.BACKGROUND_RUNS` ``[name]`` in a Python process of its
    own (this file run as a script, see :func:`main`), started now: it has the environment and working directory
    of this moment, whatever later tests monkeypatch in this process. ``values``: the results of the runs in
    ``after`` (the process waits for them). :meth:`result` waits for its value (or re-raises its exception here,
    its traceback as a note); :meth:`cancel` asks it to stop (SIGTERM: its commands are killed, its own cleanup
    runs) and waits."""

    def __init__(self, name: str, base: Path, after: tuple[Background, ...] = ()):
        self.name = name
        self.out = base.parent / f"{base.name}.result.pickle"
        self.log = base.parent / f"{base.name}.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, name, str(base), str(self.out), *(str(run.out) for run in after)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # an interrupt of the session reaches it through cancel() only
            )

    def result(self) -> Any:
        code = self.proc.wait()
        if not self.out.exists():
            tail = self.log.read_text(errors="replace")[-5000:]
            raise RuntimeError(f"background run {self.name!r} exited {code} without a result:\n{tail}")
        try:
            ok, value, trace = load(self.out)
        except Exception as exc:  # an exception type that cannot be rebuilt here
            raise RuntimeError(f"background run {self.name!r}: unreadable result ({exc}); log {self.log}") from exc
        if ok:
            return value
        value.add_note(f"(in the background run {self.name!r}; log {self.log})\n{trace}")
        raise value

    def cancel(self, timeout: float = 300) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def load(out: Path) -> tuple[bool, Any, str]:
    """A result file of :func:`main`: ``(ok, value or exception, traceback)``."""
    return pickle.loads(out.read_bytes())


def wait_for(out: Path, cancel: threading.Event) -> Any:
    """The value in result file ``out`` once it is written (a run this one needs); raises when that run failed."""
    while not out.exists():
        if cancel.wait(1):
            raise Cancelled(f"stopped while waiting for {out.name}: the test session ended first")
    ok, value, _ = load(out)
    if not ok:
        raise RuntimeError(f"a background run this one needs failed ({out.name}): {value!r}")
    return value


def main(name: str, base: str, out: str, *needs: str) -> int:
    """The background process: compute ``BACKGROUND_RUNS[name](base, cancel, *values)`` (``cancel`` is set by
    SIGTERM; ``values`` read from the result files ``needs``, waited for) and pickle ``(True, value, "")`` or
    ``(False, exception, traceback)`` to ``out``."""
    import conftest  # tests/ is this script's folder, so first on sys.path

    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    try:
        values = [wait_for(Path(need), cancel) for need in needs]
        outcome = (True, conftest.BACKGROUND_RUNS[name](Path(base), cancel, *values), "")
    except BaseException as exc:  # noqa: BLE001 - handed to the session, which raises it
        outcome = (False, exc, traceback.format_exc())
    tmp = Path(out + ".tmp")
    try:
        tmp.write_bytes(pickle.dumps(outcome))
    except Exception as exc:  # noqa: BLE001 - an unpicklable exception: its text
        tmp.write_bytes(pickle.dumps((False, RuntimeError(repr(outcome[1])), outcome[2] or repr(exc))))
    tmp.replace(out)  # whole or absent
    return 0


STARTED = pytest.StashKey[dict[str, Background]]()  # config.stash: fixture name -> its background run


def users(items: list[pytest.Item], fixture: str) -> list[pytest.Item]:
    """The items that use ``fixture``, directly or through other fixtures."""
    return [item for item in items if fixture in getattr(item, "fixturenames", ())]


def start(
    config: pytest.Config, items: list[pytest.Item], names: Iterable[str], needs: dict[str, tuple[str, ...]]
) -> None:
    """Start the background run (:class:`Background`) of every fixture of ``names`` (in that order) that some of
    ``items`` use but not all (alone, a fixture's tests have nothing to overlap with: it runs in its place), and
    whose ``needs`` (fixtures whose values it takes) were started too."""
    if config.option.collectonly:
        return
    started = config.stash.setdefault(STARTED, {})
    for name in names:
        after = needs.get(name, ())
        if 0 < len(users(items, name)) < len(items) and name not in started and all(n in started for n in after):
            base = config._tmp_path_factory.mktemp(name)  # the tmp_path_factory fixture's own object
            started[name] = Background(name, base, tuple(started[n] for n in after))


def result(config: pytest.Config, name: str, compute_here: Callable[[], Any]) -> Any:
    """The value of fixture ``name``: its background run's, or ``compute_here()`` when none was started."""
    background = config.stash.get(STARTED, {}).get(name)
    return background.result() if background is not None else compute_here()


def stop_all(config: pytest.Config) -> None:
    for background in config.stash.get(STARTED, {}).values():
        background.cancel()


def order(items: list[pytest.Item], ranks: dict[str, int]) -> None:
    """Reorder ``items`` in place: whole modules, by the highest rank of the fixtures in ``ranks`` their tests use
    (0 for none; stable otherwise), so the modules that wait for a background run come after those that need
    none, and those that wait for the longest run last."""

    def module(item):
        return getattr(item, "module", None) or item.nodeid.split("::")[0]

    rank: dict[Any, int] = {}
    for item in items:
        used = [r for name, r in ranks.items() if name in getattr(item, "fixturenames", ())]
        rank[module(item)] = max([rank.get(module(item), 0), *used])
    items.sort(key=lambda item: rank[module(item)])


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
