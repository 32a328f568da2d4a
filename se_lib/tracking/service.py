"""The MLflow tracking server as a background service of the team (``make mlflow-start|stop|status``).

One service lives in a *home* directory (``--home``, default ``$SE_MLFLOW_HOME`` else ``mlflow-service/``
in the working directory, ignored by git and never touched by ``make clean-results``):

* ``server.pid`` - the pid of the ``mlflow server`` process, which leads its own process group (the
  uvicorn workers are in it); ``server.json`` - how it was started (address, stores, auth, start time,
  the process's start tick so a recycled pid is not taken for it); ``server.log`` - its output;
* with ``--auth``: ``basic_auth.ini`` (MLflow's auth config: user DB, default permission) and
  ``secret_key`` (the Flask secret for CSRF, generated once, mode 600) unless
  ``$MLFLOW_FLASK_SERVER_SECRET_KEY`` is set;
* by default the backend store ``sqlite:///<home>/mlflow.db`` and the artifacts ``<home>/artifacts``
  (``--backend-store-uri``: any SQLAlchemy URL, e.g. PostgreSQL; ``--artifacts-destination``: a
  directory or an object store URI). Artifacts are always served by the server (``--serve-artifacts``),
  so clients need nothing but the server's address.

:func:`start` refuses a busy port with a message naming it and how to pick another, a second start
while one runs, and a non-loopback address unless ``allow_remote`` (then warns unless ``auth``).
With ``auth`` MLflow's ``basic-auth`` app runs: the admin password comes from
``$MLFLOW_AUTH_ADMIN_PASSWORD`` or ``--admin-password-file`` (read by MLflow only when it creates the
admin user at the first start; never stored by this module). :func:`stop` sends SIGTERM to the
process group of the pid file, then SIGKILL after ``timeout``; never a process found by name.
:func:`status` tells whether it runs, where, since when and whether ``/health`` answers. A pid file
whose process is gone (or is another process now) is reported as stale and removed.

:func:`check_server_access` is what the workflow calls before any job starts (``onstart``): a tracking
URI ``http(s)://...`` must answer and accept the credentials of ``$MLFLOW_TRACKING_USERNAME`` /
``$MLFLOW_TRACKING_PASSWORD``.

CLI: ``se mlflow start|stop|status`` (= ``python -m se_lib.tracking.service``).
"""

from __future__ import annotations

import argparse
import base64
import errno
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from se_lib.tracking.urls import DEFAULT_HOST, DEFAULT_PORT

__all__ = [
    "HOME_ENV",
    "ServiceError",
    "ServiceSettings",
    "check_server_access",
    "main",
    "server_state",
    "start",
    "status",
    "stop",
]

HOME_ENV = "SE_MLFLOW_HOME"
DEFAULT_HOME = "mlflow-service"
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"


class ServiceError(RuntimeError):
    """A service command that cannot proceed; the message says why and what to do."""


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME)


@dataclass(frozen=True)
class ServiceSettings:
    """How to start the server; written to ``server.json`` so status/stop/gc know it later."""

    home: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    backend_store_uri: str = ""  # "" -> sqlite:///<home>/mlflow.db
    artifacts_destination: str = ""  # "" -> <home>/artifacts
    auth: bool = False
    allow_remote: bool = False
    allowed_hosts: str = ""  # "" -> MLflow's default (localhost and private networks); else + 127.0.0.1/localhost
    workers: int = 1

    def resolved(self) -> ServiceSettings:
        home = Path(self.home).resolve()
        return ServiceSettings(
            **{
                **asdict(self),
                "home": str(home),
                "backend_store_uri": self.backend_store_uri or f"sqlite:///{home / 'mlflow.db'}",
                "artifacts_destination": self.artifacts_destination or str(home / "artifacts"),
            }
        )

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"


def _paths(home: str | os.PathLike) -> dict[str, Path]:
    h = Path(home)
    return {
        "pid": h / "server.pid",
        "state": h / "server.json",
        "log": h / "server.log",
        "secret": h / "secret_key",
        "auth_ini": h / "basic_auth.ini",
        "auth_db": h / "basic_auth.db",
    }


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_command(s: ServiceSettings) -> list[str]:
    """``mlflow server`` for resolved settings ``s``: the UI's command (:func:`se_lib.tracking.server.server_command`)
    with artifacts proxied, and the basic-auth app with ``s.auth``."""
    from se_lib.tracking.server import server_command as base_command

    cmd = base_command(s.backend_store_uri, s.host, s.port, s.workers)
    cmd += ["--serve-artifacts", "--artifacts-destination", s.artifacts_destination]
    if s.allowed_hosts:  # plus this machine's own names, so status, gc and local jobs keep working
        hosts = [h.strip() for h in s.allowed_hosts.split(",") if h.strip()]
        hosts += [h for h in (f"127.0.0.1:{s.port}", f"localhost:{s.port}") if h not in hosts]
        cmd += ["--allowed-hosts", ",".join(hosts)]
    if s.auth:
        cmd += ["--app-name", "basic-auth"]
    return cmd


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, process group, start tick)`` of ``pid`` from Linux ``/proc``; None if gone or unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def _proc_start_tick(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (tells a recycled pid from the server)."""
    st = _proc_stat(pid)
    return st[2] if st else None


def _alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not Path("/proc").is_dir():
        return True
    st = _proc_stat(pid)
    return st is not None and st[0] != "Z"


def _group_alive(pgid: int) -> bool:
    """Some process of group ``pgid`` is still running (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    if not Path("/proc").is_dir():
        return True
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if st is not None and st[1] == pgid and st[0] != "Z":
                return True
    return False


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def busy_port_message(host: str, port: int, target: str) -> str:
    """What to say when ``host:port`` is taken (``target``: the make target that was run)."""
    return (
        f"port {port} on {host} is already in use (another server or program); pick another with "
        f"make {target} MLFLOW_PORT=<port> (or --port <port>), e.g. MLFLOW_PORT={port + 1}"
    )


def health(url: str, timeout: float = 3.0) -> bool:
    """Whether the server at ``url`` answers ``GET /health`` with 200 (needs no credentials)."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class ServerState:
    """What ``status`` reports."""

    running: bool
    pid: int | None = None
    stale_pid: int | None = None  # a pid file whose process is gone (removed)
    settings: ServiceSettings | None = None
    started: str | None = None
    answers: bool = False


def server_state(home: str | os.PathLike | None = None, *, clean_stale: bool = True) -> ServerState:
    """The service in ``home``: running (pid alive and the same process as recorded) or not; a stale pid
    file (and its state file) is removed when ``clean_stale``."""
    p = _paths(home or default_home())
    if not p["pid"].exists():
        return ServerState(running=False)
    try:
        pid = int(p["pid"].read_text().split()[0])
    except (ValueError, IndexError):
        pid = -1
    info = json.loads(p["state"].read_text()) if p["state"].exists() else {}
    same = pid > 0 and _alive(pid) and info.get("start_tick") in (None, _proc_start_tick(pid))
    if not same:
        if clean_stale:
            for key in ("pid", "state"):
                p[key].unlink(missing_ok=True)
        return ServerState(running=False, stale_pid=pid)
    settings = ServiceSettings(**info["settings"]) if "settings" in info else None
    answers = health(settings.url) if settings else False
    return ServerState(True, pid, None, settings, info.get("started"), answers)


def _secret_key(home: Path) -> str:
    """``$MLFLOW_FLASK_SERVER_SECRET_KEY``, else the key in ``<home>/secret_key`` (created once, mode 600)."""
    if os.environ.get(SECRET_KEY_ENV):
        return os.environ[SECRET_KEY_ENV]
    path = _paths(home)["secret"]
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def _auth_env(s: ServiceSettings, admin_password_file: str | None) -> dict[str, str]:
    """Environment of a basic-auth server: its config file (user DB in the home), the secret key, and the
    admin password for the first start (from the environment or ``admin_password_file``)."""
    p = _paths(s.home)
    if not p["auth_ini"].exists():
        p["auth_ini"].write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{p['auth_db']}\n"
            "admin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
            encoding="utf-8",
        )
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(p["auth_ini"]), SECRET_KEY_ENV: _secret_key(Path(s.home))}
    if admin_password_file:
        try:
            env[ADMIN_PASSWORD_ENV] = Path(admin_password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ServiceError(f"cannot read the admin password file {admin_password_file}: {exc}") from None
    elif not os.environ.get(ADMIN_PASSWORD_ENV) and not p["auth_db"].exists():
        raise ServiceError(
            f"first start with --auth: set {ADMIN_PASSWORD_ENV} (at least 12 characters) or pass "
            "--admin-password-file FILE (a file outside git); it becomes the password of user 'admin'"
        )
    return env


def start(s: ServiceSettings, *, admin_password_file: str | None = None, timeout: float = 120.0) -> ServerState:
    """Start the server of settings ``s`` in the background; wait until ``/health`` answers.

    Raises :class:`ServiceError` (running already, busy port, non-loopback address without
    ``allow_remote``, server exited during start-up: the end of its log is in the message).
    """
    s = s.resolved()
    p = _paths(s.home)
    Path(s.home).mkdir(mode=0o700, parents=True, exist_ok=True)  # it may hold the secret key and user DB
    state = server_state(s.home)
    if state.running:
        raise ServiceError(f"already running (pid {state.pid}, {state.settings.url}); make mlflow-stop first")
    if not is_loopback(s.host):
        if not s.allow_remote:
            raise ServiceError(
                f"host {s.host} is reachable from the network: pass --allow-remote to bind it "
                "(with --auth; see README 'Tracking service'), or keep the default 127.0.0.1"
            )
        if not s.auth:
            print(
                f"WARNING: serving on {s.host}:{s.port} WITHOUT authentication: anyone who reaches this "
                "machine can read, change and delete every run (use --auth)",
                file=sys.stderr,
                flush=True,
            )
    if not port_free(s.host, s.port):
        raise ServiceError(busy_port_message(s.host, s.port, "mlflow-start"))
    if s.artifacts_destination.startswith("/") or "://" not in s.artifacts_destination:
        Path(s.artifacts_destination).mkdir(parents=True, exist_ok=True)
    from se_lib.tracking.server import server_env

    env = server_env()  # the environment without the server's GenAI job workers
    if s.auth:
        env.update(_auth_env(s, admin_password_file))
    cmd = server_command(s)
    with open(p["log"], "ab") as log:
        log.write(f"\n=== {datetime.now(UTC).isoformat(timespec='seconds')} {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    started = datetime.now(UTC).isoformat(timespec="seconds")
    p["state"].write_text(
        json.dumps({"settings": asdict(s), "started": started, "start_tick": _proc_start_tick(proc.pid)}, indent=1)
    )
    p["pid"].write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            for key in ("pid", "state"):
                p[key].unlink(missing_ok=True)
            tail = p["log"].read_text(errors="replace")[-2500:]
            raise ServiceError(f"the MLflow server exited during start-up ({proc.returncode}); {p['log']}:\n{tail}")
        if health(s.url, timeout=2):
            return ServerState(True, proc.pid, None, s, started, True)
        time.sleep(0.5)
    stop(s.home)
    raise ServiceError(f"the MLflow server did not answer {s.url}/health within {timeout:.0f} s (see {p['log']})")


def stop(home: str | os.PathLike | None = None, timeout: float = 20.0) -> ServerState:
    """Stop the service of ``home`` through its pid file: SIGTERM to its process group, SIGKILL after
    ``timeout`` s. Returns the state before stopping (``running`` False: nothing ran)."""
    home = home or default_home()
    p = _paths(home)
    state = server_state(home)
    if not state.running:
        return state
    pgid = state.pid  # started with start_new_session: the server leads its own process group
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _group_alive(pgid) and time.monotonic() < deadline:
        _reap(state.pid)
        time.sleep(0.2)
    if _group_alive(pgid):
        print(f"MLflow server (pid {pgid}) still running {timeout:.0f} s after SIGTERM: SIGKILL", file=sys.stderr)
        os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _group_alive(pgid) and time.monotonic() < deadline:
            _reap(state.pid)
            time.sleep(0.1)
    _reap(state.pid)
    for key in ("pid", "state"):
        p[key].unlink(missing_ok=True)
    return state


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own child (a server started by this process, e.g. in tests)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(home: str | os.PathLike | None = None) -> tuple[int, str]:
    """``(exit status, text)``: 0 running and answering, 1 running but not answering, 3 not running."""
    home = home or default_home()
    state = server_state(home)
    lines = []
    if state.stale_pid is not None:
        lines.append(f"stale pid file {_paths(home)['pid']} (pid {state.stale_pid} is gone): removed")
    if not state.running:
        lines.append(f"MLflow server: not running (home {Path(home).resolve()}; make mlflow-start)")
        return 3, "\n".join(lines)
    s = state.settings
    lines += [
        f"MLflow server: running, pid {state.pid}, since {state.started} (UTC)",
        f"  address:    {s.url}  (host {s.host}, port {s.port})",
        f"  answers:    {'yes' if state.answers else 'NO'} ({s.url}/health)",
        f"  auth:       {'basic-auth' if s.auth else 'off'}",
        f"  backend:    {_redact(s.backend_store_uri)}",
        f"  artifacts:  {s.artifacts_destination}",
        f"  log:        {_paths(home)['log']}",
        f"  workflow:   export MLFLOW_TRACKING_URI={s.url}"
        + (f"  (+ {USERNAME_ENV}, {PASSWORD_ENV})" if s.auth else ""),
    ]
    return (0 if state.answers else 1), "\n".join(lines)


def _redact(uri: str) -> str:
    """``uri`` without a password (``postgresql://user:***@host/db``)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return uri


def check_server_access(tracking_uri: str, env: Mapping[str, str] | None = None, timeout: float = 10.0) -> None:
    """For an ``http(s)://`` tracking URI: the server answers and accepts the credentials in ``env``
    (default ``os.environ``: ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``), else
    :class:`ServiceError` saying what to fix. Other URIs (sqlite, ...) pass unchecked."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    env = os.environ if env is None else env
    base = tracking_uri.rstrip("/")
    req = urllib.request.Request(f"{base}/api/2.0/mlflow/experiments/search?max_results=1")
    user, password = env.get(USERNAME_ENV), env.get(PASSWORD_ENV)
    if user or password:
        token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            who = f"user {user!r}" if user else f"no credentials ({USERNAME_ENV} is not set)"
            raise ServiceError(
                f"MLflow server {base} refused {who} (HTTP {exc.code}): set {USERNAME_ENV} and {PASSWORD_ENV} "
                "to an account of the server in the environment (never in the config file)"
            ) from None
        raise ServiceError(f"MLflow server {base} answered HTTP {exc.code} to a search request: {exc.reason}") from None
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(
            f"no MLflow server answers at {base} ({reason}); start it (make mlflow-start) or point "
            "tracking.uri / MLFLOW_TRACKING_URI elsewhere"
        ) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="se mlflow",
        description="The MLflow tracking server as a background service (pid file, log file, health check).",
    )
    p.add_argument("--home", default=None, help=f"service directory (default ${HOME_ENV}, else {DEFAULT_HOME}/)")
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("start", help="start the server in the background")
    st.add_argument("--host", default=DEFAULT_HOST, help=f"interface (default {DEFAULT_HOST}: this machine only)")
    st.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    st.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host (use with --auth)")
    st.add_argument("--auth", action="store_true", help="MLflow's basic-auth app (users, passwords, permissions)")
    st.add_argument("--admin-password-file", help=f"admin password at first start (else ${ADMIN_PASSWORD_ENV})")
    st.add_argument("--allowed-hosts", default="", help="Host headers accepted (MLflow --allowed-hosts)")
    st.add_argument("--backend-store-uri", default="", help="SQLAlchemy URL (default sqlite:///<home>/mlflow.db)")
    st.add_argument("--artifacts-destination", default="", help="artifact directory/URI (default <home>/artifacts)")
    st.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    st.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /health (default 120)")
    sp = sub.add_parser("stop", help="stop it (SIGTERM, SIGKILL after --timeout)")
    sp.add_argument("--timeout", type=float, default=20.0, help="seconds between SIGTERM and SIGKILL (default 20)")
    sub.add_parser("status", help="running? where, since when, answering? (exit 0 yes, 1 not answering, 3 no)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(argv) if argv is not None else None)
    home = Path(args.home) if args.home else default_home()
    try:
        if args.command == "start":
            settings = ServiceSettings(
                home=str(home),
                host=args.host,
                port=args.port,
                backend_store_uri=args.backend_store_uri,
                artifacts_destination=args.artifacts_destination,
                auth=args.auth,
                allow_remote=args.allow_remote,
                allowed_hosts=args.allowed_hosts,
                workers=args.workers,
            )
            state = start(settings, admin_password_file=args.admin_password_file, timeout=args.timeout)
            print(f"MLflow server started: {state.settings.url} (pid {state.pid}, log {_paths(home)['log']})")
            print(status(home)[1])
            return 0
        if args.command == "stop":
            state = stop(home, timeout=args.timeout)
            if state.stale_pid is not None:
                print(f"stale pid file (pid {state.stale_pid} is gone): removed")
            print(f"MLflow server stopped (pid {state.pid})" if state.running else "MLflow server: not running")
            return 0
        code, text = status(home)
        print(text)
        return code
    except ServiceError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
