"""Throw-away PostgreSQL server for tests (real server, no mocks).

``postgres_server()`` is a context manager yielding a SQLAlchemy URL
(``postgresql+psycopg://se@127.0.0.1:<port>/se_test``) of a fresh cluster:

1. finds ``initdb``/``pg_ctl`` (``$PATH``, then ``/usr/lib/postgresql/*/bin``); if missing and
   running as root, installs Debian's ``postgresql`` package with ``apt-get`` (printing what it
   does); otherwise raises :class:`PostgresUnavailable` with the reason (tests turn it into a skip);
2. runs ``initdb`` in a new temp dir (trust auth for the local test user, UTF8, C locale). The
   server refuses to run as root, so as root everything runs as the ``postgres`` system user via
   ``runuser`` (the temp dir is chowned to it);
3. starts the server with ``pg_ctl`` on a free port bound to 127.0.0.1 only, the unix socket in
   the temp dir, fsync off (throw-away data);
4. creates the database, yields the URL, and at exit stops the server (``pg_ctl stop -m fast``)
   and deletes the temp dir.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DB_NAME = "se_test"
DB_USER = "se"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries and no way to install them."""


def _is_root() -> bool:
    return os.geteuid() == 0


def find_bin_dir() -> Path | None:
    """Directory holding ``initdb`` and ``pg_ctl``, or None."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    for initdb in reversed(candidates):
        bin_dir = Path(initdb).parent
        if (bin_dir / "pg_ctl").exists():
            return bin_dir
    return None


def ensure_binaries() -> Path:
    """``find_bin_dir()``, installing the ``postgresql`` package first if needed and possible."""
    bin_dir = find_bin_dir()
    if bin_dir is not None:
        return bin_dir
    if not _is_root() or not shutil.which("apt-get"):
        raise PostgresUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not found and cannot install them (needs root and apt-get)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
    ):
        print(f"tests/pg.py: running {' '.join(cmd)}", flush=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode == 0 and cmd[1] == "install":
            break
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(f"apt-get install postgresql failed: {proc.stderr.strip()[-500:]}")
    return bin_dir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """System user to run the server as (None: the current, non-root user)."""
    if not _is_root():
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        print("tests/pg.py: creating system user 'postgres'", flush=True)
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return "postgres"


def _run(cmd: list[str], user: str | None, **kw) -> subprocess.CompletedProcess:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 120), check=False, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return proc


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away server; yield its SQLAlchemy URL; stop and delete it afterwards."""
    bin_dir = ensure_binaries()
    user = _server_user()
    base = Path(tempfile.mkdtemp(prefix="se-pg-"))
    data, sock, logfile = base / "data", base / "sock", base / "server.log"
    sock.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for p in (base, sock):
            os.chown(p, entry.pw_uid, entry.pw_gid)
    started = False
    try:
        _run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust", "--encoding=UTF8", "--locale=C"],
            user,
            timeout=300,
        )
        for attempt in range(5):
            port = _free_port()
            opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off -c full_page_writes=off"
            try:
                _run(
                    [
                        str(bin_dir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-l",
                        str(logfile),
                        "-o",
                        opts,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    user,
                    timeout=120,
                )
                started = True
                break
            except RuntimeError:
                if attempt == 4:
                    log = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
                    raise RuntimeError(f"PostgreSQL did not start; log:\n{log}") from None
                time.sleep(0.5)
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user=DB_USER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        yield f"postgresql+psycopg://{DB_USER}@127.0.0.1:{port}/{DB_NAME}"
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], user, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
