"""The MLflow tracking server as a service (``se mlflow start|stop|status``, se_lib/tracking/service.py) and
the clean-up commands on a local store (``se runs delete|gc``, se_lib/tracking/cleanup.py).

Real ``mlflow server`` processes on free loopback ports, each with its own service home under tmp; the
authenticated PostgreSQL-backed server and the workflow against it are in tests/test_mlflow_postgres.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from se_lib.tracking import cleanup, service

SE = str(Path(sys.executable).with_name("se"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def se(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([SE, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def home(tmp_path):
    """A service home; whatever server the test left running there is stopped through its pid file."""
    h = tmp_path / "svc"
    yield h
    service.stop(h, timeout=5)


def _gone(pid: int) -> bool:
    st = service._proc_stat(pid)
    return st is None or st[0] == "Z"


def test_start_status_stop_through_the_pid_file(home):
    port = free_port()
    out = se("mlflow", "--home", str(home), "start", "--port", str(port))
    assert out.returncode == 0, out.stdout + out.stderr
    pid = int((home / "server.pid").read_text())
    assert not _gone(pid) and os.getpgid(pid) == pid  # leads its own process group (its workers are in it)
    assert (home / "server.log").read_text().count("mlflow server") >= 1
    state = json.loads((home / "server.json").read_text())
    assert state["settings"]["port"] == port and state["settings"]["backend_store_uri"].startswith("sqlite:///")

    st = se("mlflow", "--home", str(home), "status")
    assert st.returncode == 0, st.stdout + st.stderr
    assert f"running, pid {pid}, since {state['started']}" in st.stdout
    assert f"http://127.0.0.1:{port}" in st.stdout and "answers:    yes" in st.stdout

    again = se("mlflow", "--home", str(home), "start", "--port", str(free_port()))
    assert again.returncode == 1 and f"already running (pid {pid}" in again.stderr

    stop = se("mlflow", "--home", str(home), "stop")
    assert stop.returncode == 0 and f"stopped (pid {pid})" in stop.stdout, stop.stdout + stop.stderr
    assert not (home / "server.pid").exists() and not (home / "server.json").exists()
    assert _gone(pid)
    assert "Application shutdown complete" in (home / "server.log").read_text()  # SIGTERM: a graceful stop
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    st = se("mlflow", "--home", str(home), "status")
    assert st.returncode == 3 and "not running" in st.stdout


def test_stale_pid_file_is_detected_and_removed(home):
    home.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (home / "server.pid").write_text(f"{dead.pid}\n")
    st = se("mlflow", "--home", str(home), "status")
    assert st.returncode == 3, st.stdout + st.stderr
    assert f"stale pid file {home / 'server.pid'} (pid {dead.pid} is gone): removed" in st.stdout
    assert not (home / "server.pid").exists()

    # a pid that now belongs to another process (recycled) is stale too: its start time differs
    (home / "server.pid").write_text(f"{os.getpid()}\n")
    tick = service._proc_start_tick(os.getpid())
    (home / "server.json").write_text(json.dumps({"settings": {"home": str(home)}, "start_tick": tick + 1}))
    state = service.server_state(home)
    assert not state.running and state.stale_pid == os.getpid()
    assert not (home / "server.pid").exists() and not (home / "server.json").exists()
    stop = se("mlflow", "--home", str(home), "stop")
    assert stop.returncode == 0 and "not running" in stop.stdout


def test_stop_kills_what_ignores_sigterm_after_the_timeout(home):
    """A server stuck in shutdown: SIGTERM to its process group, SIGKILL after --timeout."""
    home.mkdir()
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True)"
    code += "; time.sleep(600)"
    stuck = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert stuck.stdout.readline().strip() == "ready"  # SIGTERM is ignored from here on
    (home / "server.pid").write_text(f"{stuck.pid}\n")
    settings = {"home": str(home), "port": free_port()}
    tick = service._proc_start_tick(stuck.pid)
    (home / "server.json").write_text(json.dumps({"settings": settings, "started": "x", "start_tick": tick}))
    out = se("mlflow", "--home", str(home), "stop", "--timeout", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "still running 2 s after SIGTERM: SIGKILL" in out.stderr and f"stopped (pid {stuck.pid})" in out.stdout
    assert stuck.wait(timeout=30) == -9
    assert not (home / "server.pid").exists()


def test_busy_port_names_the_port_and_how_to_pick_another(home):
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        out = se("mlflow", "--home", str(home), "start", "--port", str(port))
        assert out.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in out.stderr
        assert "MLFLOW_PORT=" in out.stderr and "--port" in out.stderr
        assert "Traceback" not in out.stderr + out.stdout
        assert not (home / "server.pid").exists()
        # a network address needs --allow-remote; with it but without --auth a warning comes first
        remote = se("mlflow", "--home", str(home), "start", "--host", "0.0.0.0", "--port", str(port))
        assert remote.returncode == 1 and "--allow-remote" in remote.stderr
        warned = se("mlflow", "--home", str(home), "start", "--host", "0.0.0.0", "--allow-remote", "--port", str(port))
        assert "WARNING: serving on 0.0.0.0" in warned.stderr and "WITHOUT authentication" in warned.stderr
        assert f"port {port} on 0.0.0.0 is already in use" in warned.stderr


def test_auth_needs_an_admin_password_at_first_start(home):
    env = {k: v for k, v in os.environ.items() if k != service.ADMIN_PASSWORD_ENV}
    out = se("mlflow", "--home", str(home), "start", "--auth", "--port", str(free_port()), env=env)
    assert out.returncode == 1 and service.ADMIN_PASSWORD_ENV in out.stderr and "--admin-password-file" in out.stderr
    assert not (home / "server.pid").exists()


# --- se runs delete / gc on a local sqlite store -------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    """A sqlite store with experiment ``e``: runs of two invocations (one with its parent run), two models,
    one started 40 days ago; each run has an artifact. Returns ``(uri, {name: run_id}, artifact root)``."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    artifacts = tmp_path / "artifacts"
    client = MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=str(artifacts))
    now = int(time.time() * 1000)
    old = int((datetime.now(UTC) - timedelta(days=40)).timestamp() * 1000)
    spec = {
        "parent_a": ({"se.invocation_id": "aaaa1111", "se.run_kind": "invocation"}, now),
        "train_m1": ({"se.invocation_id": "aaaa1111", "snakemake.rule": "train", "se.model": "m1"}, now),
        "train_m2": ({"se.invocation_id": "aaaa1111", "snakemake.rule": "train", "se.model": "m2"}, now),
        "score_m1": ({"se.invocation_id": "bbbb2222", "snakemake.rule": "score", "se.model": "m1"}, now),
        "old_corpus": ({"se.invocation_id": "cccc3333", "snakemake.rule": "corpus"}, old),
    }
    ids = {}
    for name, (tags, start) in spec.items():
        run = client.create_run(exp, start_time=start, tags=tags, run_name=name)
        note = tmp_path / f"{name}.txt"
        note.write_text(name)
        client.log_artifact(run.info.run_id, str(note), artifact_path="logs")
        client.set_terminated(run.info.run_id)
        ids[name] = run.info.run_id
    return uri, ids, artifacts


def _stage(uri: str, run_id: str) -> str:
    from mlflow import MlflowClient

    return MlflowClient(uri).get_run(run_id).info.lifecycle_stage


def test_delete_selects_by_rule_model_invocation_age_and_id(store, capsys):
    uri, ids, _ = store
    store_args = ["--tracking-uri", uri, "--experiment", "e"]
    assert cleanup.main(["delete", *store_args]) == 1
    assert "name the runs to delete" in capsys.readouterr().err

    assert cleanup.main(["delete", "--rule", "train", "--dry-run", *store_args]) == 0
    out = capsys.readouterr().out
    assert "would mark deleted 2 runs" in out and ids["train_m1"] in out and ids["train_m2"] in out
    assert {_stage(uri, r) for r in ids.values()} == {"active"}

    assert cleanup.main(["delete", "--rule", "train", "--model", "m1", *store_args]) == 0
    assert "marked deleted 1 runs" in capsys.readouterr().out
    assert _stage(uri, ids["train_m1"]) == "deleted" and _stage(uri, ids["train_m2"]) == "active"

    table = cleanup.delete_runs("e", uri, invocation="aaaa")  # the invocation's parent run goes with it
    assert set(table["run_id"]) == {ids["parent_a"], ids["train_m2"]}
    table = cleanup.delete_runs("e", uri, older_than=cleanup.parse_age("30d"))
    assert list(table["run_id"]) == [ids["old_corpus"]]
    assert _stage(uri, ids["score_m1"]) == "active"

    assert cleanup.main(["delete", ids["train_m1"], *store_args]) == 1  # already deleted: not an active run
    assert ids["train_m1"] in capsys.readouterr().err
    with pytest.raises(ValueError, match="30x"):
        cleanup.parse_age("30x")


@pytest.mark.slow  # a store with artifacts, then `se runs gc` in a fresh process
def test_gc_removes_only_deleted_runs_and_their_artifacts(store, capsys):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri, ids, artifacts = store
    cleanup.delete_runs("e", uri, rule="train")
    client = MlflowClient(uri)
    dirs = {name: artifacts / run_id for name, run_id in ids.items()}
    assert all((d / "artifacts" / "logs" / f"{n}.txt").is_file() for n, d in dirs.items())

    store_args = ["--tracking-uri", uri, "--experiment", "e"]
    assert cleanup.main(["gc", "--dry-run", *store_args]) == 0
    dry = capsys.readouterr().out
    assert "would remove for good 2 runs" in dry and ids["train_m1"] in dry
    assert _stage(uri, ids["train_m1"]) == "deleted" and dirs["train_m1"].is_dir()

    gc = se("runs", "gc", *store_args)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert "removed for good 2 runs" in gc.stdout
    for name in ("train_m1", "train_m2"):
        with pytest.raises(MlflowException):
            client.get_run(ids[name])
        assert not (dirs[name] / "artifacts").exists()
    for name in ("parent_a", "score_m1", "old_corpus"):
        assert client.get_run(ids[name]).info.lifecycle_stage == "active"
        assert (dirs[name] / "artifacts" / "logs" / f"{name}.txt").is_file()
    assert cleanup.main(["gc", *store_args]) == 0
    assert "removed for good 0 runs" in capsys.readouterr().out
