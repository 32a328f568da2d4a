"""The session's background runs (tests/background.py): which start, in what order the modules then run, and
that a session ending first stops the commands they started (quick: no workflow is started here)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from background import STARTED, Background, Cancelled, order, run_until, start, wait_for


def test_a_cancelled_command_is_killed_with_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    # a command that starts a child and waits (as Snakemake starts jobs): both must go
    script = (
        "import subprocess, time; p = subprocess.Popen(['sleep', '60']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    cancel = threading.Event()

    def cancel_once_started():  # the session ends while the command runs
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        cancel.set()

    threading.Thread(target=cancel_once_started, daemon=True).start()
    with pytest.raises(Cancelled, match="session ended first"):
        run_until([sys.executable, "-c", script], timeout=120, cancel=cancel)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        stat = f"/proc/{child}/stat"
        if os.path.exists(stat) and open(stat).read().split(") ", 1)[1].startswith("Z"):
            break  # killed, not yet reaped
        time.sleep(0.1)
    else:
        raise AssertionError(f"child {child} of the cancelled command still runs")


def test_a_finished_command_returns_its_output_and_a_slow_one_times_out():
    out = run_until([sys.executable, "-c", "print('x' * 200000)"], timeout=60)  # more than a pipe buffer
    assert out.returncode == 0 and out.stdout.strip() == "x" * 200000
    with pytest.raises(subprocess.TimeoutExpired):
        run_until([sys.executable, "-c", "import time; time.sleep(60)"], timeout=1)


def _config(collectonly=False):
    return SimpleNamespace(option=SimpleNamespace(collectonly=collectonly), stash=pytest.Stash())


def _item(module: str, *fixtures: str):
    return SimpleNamespace(module=module, nodeid=f"{module}::t", fixturenames=fixtures)


@pytest.mark.parametrize(
    ("items", "collectonly"),
    [
        ([_item("a", "tmp_path"), _item("b", "world")], False),  # nobody uses a background fixture
        ([_item("a", "run", "tmp_path"), _item("b", "run")], False),  # only its tests: computed in its place
        ([_item("a", "run"), _item("b", "tmp_path")], True),  # --collect-only
    ],
)
def test_started_only_beside_other_tests_and_not_when_collecting(items, collectonly):
    config = _config(collectonly)
    start(config, items, ["run"], {})
    assert not config.stash.get(STARTED, {})


def test_modules_waiting_for_background_runs_go_last_in_order_of_their_longest():
    items = [
        _item("a", "slurm"),
        _item("b", "tmp_path"),
        _item("c", "wf"),
        _item("c", "tmp_path"),  # a module moves as a whole
        _item("d", "world"),
        _item("e", "wf", "slurm"),
        _item("f", "wf"),
    ]
    order(items, {"wf": 1, "slurm": 2})
    assert [i.module for i in items] == ["b", "d", "c", "c", "f", "a", "e"]


def test_a_background_failure_is_raised_in_the_session_with_its_traceback(tmp_path):
    run = Background("no_such_fixture", tmp_path / "base")  # conftest.BACKGROUND_RUNS has no such entry
    with pytest.raises(KeyError, match="no_such_fixture") as err:
        run.result()
    (note,) = err.value.__notes__
    assert "in the background run 'no_such_fixture'" in note and "Traceback" in note


def test_a_run_waits_for_the_runs_it_needs_and_starts_only_with_them(tmp_path):
    # needs: started only when what it needs is (here "dep" is used by every test: computed in its fixture)
    config = _config()
    start(config, [_item("a", "run", "dep"), _item("b", "dep")], ["dep", "run"], {"run": ("dep",)})
    assert not config.stash.get(STARTED, {})
    # waiting for a result file: its value, a failure named, or a cancel while it is missing
    out = tmp_path / "dep.result.pickle"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled, match="dep.result.pickle"):
        wait_for(out, cancel)
    out.write_bytes(pickle.dumps((True, {"x": 1}, "")))
    assert wait_for(out, threading.Event()) == {"x": 1}
    out.write_bytes(pickle.dumps((False, ValueError("boom"), "Traceback ...")))
    with pytest.raises(RuntimeError, match="needs failed.*boom"):
        wait_for(out, threading.Event())
