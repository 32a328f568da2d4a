"""Throw-away single-node SLURM cluster and MLflow tracking server for tests (real daemons, no mocks).

``slurm_cluster(base)`` is a context manager yielding a :class:`Cluster`:

1. finds ``slurmctld``/``slurmd``/``sbatch``/``munged``; if missing and running as root, installs Debian's
   ``slurm-wlm`` and ``munge`` with ``apt-get`` (printing what it does); otherwise raises
   :class:`SlurmUnavailable` with the reason (the test turns it into a skip);
2. writes everything under ``base``: a fresh munge key and ``munged`` on its own socket, a ``slurm.conf``
   describing this machine as it is (``slurmd -C``: real CPUs and memory) plus two fake GPUs (``Gres=gpu:2``
   on /dev/tty0-1, ``AutoDetect=off``) so jobs asking for ``gpu: 1`` schedule, accounting off (as on many
   lab clusters) and a job-completion log (``jobcomp/filetxt``) as the scheduler's own history;
3. starts ``munged``, ``slurmctld`` and ``slurmd`` as root on free ports, waits until the node is idle, and
   at exit stops them (and checks they are gone: :meth:`Cluster.stop` raises if one survives).

Clients find the cluster through ``SLURM_CONF`` (:attr:`Cluster.env`) and, while it runs, through
/etc/slurm/slurm.conf, a link to the test's file: the plugin's job step drops every ``SLURM_*`` variable but
the job's identity before it calls ``srun``, so ``srun`` inside a job reads the default path. The link is
removed at exit (a machine that has its own /etc/slurm/slurm.conf is left alone: SlurmUnavailable). With no
/etc/slurm/slurm.conf, ``scontrol`` fails at once, so the SLURM executor plugin, which calls ``scontrol show
config`` when it is imported, costs later ``snakemake`` starts nothing (a slurm.conf naming a controller
that is down makes each start wait ~9 s).

``mlflow_server(base)`` starts ``mlflow server`` on 127.0.0.1 (a free port, sqlite backend under ``base``,
artifacts served by the server itself: ``--serve-artifacts``) and yields its URL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "munged", "mungekey")
SBIN = ("/usr/sbin", "/usr/bin", "/sbin")
FAKE_GPUS = 2


class SlurmUnavailable(RuntimeError):
    """No SLURM/munge binaries and no way to install them."""


def _which(name: str) -> str | None:
    return shutil.which(name) or next((f"{d}/{name}" for d in SBIN if os.access(f"{d}/{name}", os.X_OK)), None)


def ensure_binaries() -> dict[str, str]:
    """Paths of :data:`BINARIES`, installing :data:`PACKAGES` with apt-get first when missing and root."""
    missing = [b for b in BINARIES if _which(b) is None]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise SlurmUnavailable(
                f"SLURM/munge binaries {missing} not found and cannot install {' '.join(PACKAGES)} "
                "(needs root and apt-get)"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
        for cmd in (install, ["apt-get", "update"], install):
            print(f"tests/slurm_cluster.py: running {' '.join(cmd)}", flush=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
            if proc.returncode == 0 and cmd[1] == "install":
                break
        missing = [b for b in BINARIES if _which(b) is None]
        if missing:
            raise SlurmUnavailable(f"apt-get install {' '.join(PACKAGES)} left {missing} missing: {proc.stderr[-500:]}")
    if os.geteuid() != 0:
        raise SlurmUnavailable("the test cluster runs slurmd/slurmctld as root; not root")
    return {b: _which(b) for b in BINARIES}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_line(slurmd: str) -> tuple[str, str]:
    """This machine as ``slurmd -C`` sees it: ``(node name, "CPUs=.. Boards=.. ... RealMemory=..")``."""
    out = subprocess.run([slurmd, "-C"], capture_output=True, text=True, timeout=60, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("NodeName="))
    name, hardware = line.split(None, 1)
    return name.split("=", 1)[1], hardware


def slurm_conf(base: Path, node: str, hardware: str, ports: tuple[int, int]) -> str:
    """slurm.conf of the one-node test cluster under ``base`` (see module docstring)."""
    return f"""\
ClusterName=se-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={base}/munge/munge.socket
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={base}/jobcomp.log
MinJobAge=3600
ReturnToService=2
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 {hardware} Gres=gpu:{FAKE_GPUS} State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    """A running test cluster: ``env`` points SLURM clients at it (``SLURM_CONF``)."""

    base: Path
    conf: Path
    node: str
    bins: dict[str, str]
    procs: dict[str, int] = field(default_factory=dict)  # daemon -> pid

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, timeout: float = 60) -> str:
        """A SLURM client command against this cluster; stdout (fails loudly)."""
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc.stdout

    def completed_jobs(self) -> list[dict[str, str]]:
        """The scheduler's job-completion log: one ``{JobId, Name, JobState, ...}`` per finished job."""
        path = self.base / "jobcomp.log"
        if not path.exists():
            return []
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in path.read_text().splitlines() if line.strip()]

    def logs(self) -> str:
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.base.glob("*.log")))

    def alive(self) -> dict[str, int]:
        """Daemons of this cluster still running (name -> pid)."""
        alive = {}
        for name, pid in self.procs.items():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            stat = Path(f"/proc/{pid}/stat")
            if stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"):
                continue  # zombie: exited, not yet reaped
            alive[name] = pid
        return alive

    def stop(self, timeout: float = 30) -> None:
        """Stop slurmd, slurmctld and munged (SIGTERM, then SIGKILL); raise if one is still there."""
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.procs.get(name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self.alive().values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        if self.alive():
            raise RuntimeError(f"SLURM test daemons still running: {self.alive()}")


def _pid(path: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):  # IndexError: created, not yet written
            return int(path.read_text().split()[0])
        time.sleep(0.1)
    raise RuntimeError(f"no pid file {path} after {timeout} s")


def _start(cluster: Cluster, name: str, cmd: list[str], pidfile: Path) -> None:
    proc = subprocess.run(cmd, env=cluster.env, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}\n{cluster.logs()}")
    cluster.procs[name] = _pid(pidfile)


@contextlib.contextmanager
def slurm_cluster(base: Path) -> Iterator[Cluster]:
    """Start munged, slurmctld and slurmd under ``base``; yield the :class:`Cluster`; stop them at exit."""
    bins = ensure_binaries()
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    for sub in ("munge", "state", "spool"):
        (base / sub).mkdir(mode=0o700, exist_ok=True)
    node, hardware = node_line(bins["slurmd"])
    conf = base / "slurm.conf"
    conf.write_text(slurm_conf(base, node, hardware, (free_port(), free_port())))
    # gres.conf is read from beside slurm.conf; no autodetection: two "GPUs" that are harmless tty devices
    (base / "gres.conf").write_text(f"AutoDetect=off\nNodeName={node} Name=gpu File=/dev/tty[0-{FAKE_GPUS - 1}]\n")
    cluster = Cluster(base, conf, node, bins)
    if DEFAULT_CONF.is_symlink() and _left_by_a_test_cluster(DEFAULT_CONF):
        DEFAULT_CONF.unlink()  # left by a test cluster that was killed before its cleanup
    if DEFAULT_CONF.exists() or DEFAULT_CONF.is_symlink():
        raise SlurmUnavailable(f"{DEFAULT_CONF} exists: this machine has a SLURM of its own, the test leaves it alone")
    key = base / "munge" / "munge.key"
    subprocess.run([bins["mungekey"], "--create", f"--keyfile={key}"], check=True, capture_output=True, timeout=60)
    try:
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_CONF.symlink_to(conf)
        munge = base / "munge"
        _start(
            cluster,
            "munged",
            [
                bins["munged"],
                "--force",
                f"--socket={munge}/munge.socket",
                f"--key-file={key}",
                f"--pid-file={munge}/munged.pid",
                f"--log-file={munge}/munged.log",
                f"--seed-file={munge}/munged.seed",
            ],
            munge / "munged.pid",
        )
        _start(cluster, "slurmctld", [bins["slurmctld"], "-f", str(conf), "-i"], base / "slurmctld.pid")
        _start(cluster, "slurmd", [bins["slurmd"], "-f", str(conf)], base / "slurmd.pid")
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline and len(cluster.alive()) == 3:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                state = cluster.run(bins["sinfo"], "-h", "-N", "-o", "%T").strip()
                if state in ("idle", "mixed"):
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"SLURM node not idle (state {state!r}, daemons {cluster.alive()}):\n{cluster.logs()}")
        yield cluster
    finally:
        with contextlib.suppress(FileNotFoundError):
            if DEFAULT_CONF.is_symlink() and DEFAULT_CONF.readlink() == conf:
                DEFAULT_CONF.unlink()
        cluster.stop()


def _left_by_a_test_cluster(link: Path) -> bool:
    """Whether ``link`` (a symlink) is this module's own, left behind by a test cluster killed before its
    cleanup: dangling, or pointing at a slurm.conf of ``ClusterName=se-test`` whose slurmctld is not
    running (a live test cluster of another session keeps its link)."""
    target = link.resolve()
    if not target.exists():
        return True
    try:
        text = target.read_text()
    except OSError:
        return False
    if "ClusterName=se-test" not in text:
        return False
    pid_file = target.parent / "slurmctld.pid"
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return True  # no pid file, or its process is gone
    return False


@contextlib.contextmanager
def mlflow_server(base: Path, timeout: float = 300) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1:<free port>, sqlite backend and served artifacts under ``base``."""
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(base / "mlflow-server.log", "w")  # noqa: SIM115 - closed below
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{base}/mlflow.db",
        "--serve-artifacts",
        "--artifacts-destination",
        str(base / "artifacts"),
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            if proc.poll() is not None or time.monotonic() > deadline:
                log_text = (base / "mlflow-server.log").read_text()[-3000:]
                raise RuntimeError(f"mlflow server did not come up:\n{log_text}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
