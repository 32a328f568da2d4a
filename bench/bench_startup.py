"""Start-up benchmark of the workflow's jobs: how much of a tiny job's wall time is its own work, and how
much is start-up (interpreter, imports, MLflow run) -- as ratios to ``python -c "import torch, mlflow"``
measured side by side in the same run (never absolute targets).

1. The tiny workflow (config/tiny.yaml) runs once in a temporary copy of the source tree committed to a
   fresh git repository, as the tests run it (tests/conftest.py: ``copy_workflow_source``,
   ``commit_workflow_source``, ``snakemake`` with ``TINY_SCHEDULING``).
2. The reference ``python -c "import torch, mlflow"`` runs ``--reference-runs`` times (median wall).
3. One job of each kind is forced to run again alone, ``--repeats`` times (median of each column):
   ``snakemake <its output> --forcerun <rule> --allowed-rules <rule>`` with the tiny config, for rules
   ``predict``, ``score``, ``score_noisy``, ``report_table`` (report) and ``train`` (up to its first batch).

Per job, from the job's own log and its process (the script Snakemake starts; found by its command line
and polled from ``/proc`` until it exits):

* ``wall``: the process's lifetime (start to exit); for ``train``, start to its first training batch;
* ``work``: the job's in-process work -- the body of :func:`se_lib.workflow.rule_job` (its ``job timing``
  log line), for ``train`` the fit's start to the first batch (data set-up, loaders, sanity validation:
  :class:`se_lib.train.callbacks.FirstBatchTimer`);
* ``overhead`` = wall - work, of which ``startup`` is the process start to ``rule_job`` (interpreter and
  imports; for ``train`` to the trainer's creation: imports, parsing, model, MLflow run) and the rest the
  MLflow run's set-up and closing and the interpreter's exit.

Usage::

    uv run python bench/bench_startup.py                  # ~10 min on 2 idle cores (the tiny run: ~4 min)
    uv run python bench/bench_startup.py --repeats 3      # medians of 3 forced reruns per job
    uv run python bench/bench_startup.py --rev HEAD~1     # the source tree of a commit, not the working tree
    uv run python bench/bench_startup.py --workdir /tmp/su --keep   # keep (or reuse, finishing it) the copy

Writes ``bench/out/bench_startup.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "tests"))  # the tests' helpers that copy and run the tiny workflow
from conftest import WORKFLOW_SOURCES, commit_workflow_source, copy_workflow_source, snakemake  # noqa: E402
from se_lib.io import write_json_atomic  # noqa: E402
from se_lib.workflow import parse_timing, process_start_time  # noqa: E402

REFERENCE = "import torch, mlflow"
KINDS = ("predict", "score", "score_noisy", "report", "train")


def source_tree(dest: Path, rev: str | None) -> Path:
    """The workflow's source under ``dest``: the working tree (as the tests copy it) or commit ``rev``."""
    if rev is None:
        return copy_workflow_source(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = [
        n for n in WORKFLOW_SOURCES if subprocess.run(["git", "cat-file", "-e", f"{rev}:{n}"], cwd=REPO).returncode == 0
    ]
    archive = subprocess.run(["git", "archive", rev, *names], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def reference_seconds(runs: int) -> list[float]:
    """Wall seconds of ``python -c "import torch, mlflow"`` (this interpreter), ``runs`` times."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", REFERENCE], check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def _proc_state(pid: int) -> str | None:
    """``/proc/<pid>/stat``'s state letter, ``None`` when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


class ScriptWatcher(threading.Thread):
    """Finds the job's script process (command line naming ``.snakemake/scripts/tmp...<script>`` of
    ``workdir``) and records when it exits (gone or a zombie), polling ``/proc``."""

    def __init__(self, workdir: Path, script: str) -> None:
        super().__init__(daemon=True)
        self.workdir, self.script = workdir, script
        self.pid: int | None = None
        self.exited: float | None = None
        self.stop = threading.Event()

    def _find(self) -> int | None:
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            for arg in args:
                text = arg.decode(errors="replace")
                if ".snakemake/scripts/tmp" in text and text.endswith("." + self.script):
                    path = Path(text) if Path(text).is_absolute() else self.workdir / text
                    if path.is_file() and path.resolve().is_relative_to(self.workdir.resolve()):
                        found.append(int(proc.name))
        # the job's process, not the workers it forks (same command line, started later)
        return min(found, key=process_start_time) if found else None

    def run(self) -> None:
        while not self.stop.is_set() and self.pid is None:
            self.pid = self._find()
            if self.pid is None:
                time.sleep(0.1)
        while self.pid is not None and not self.stop.is_set():
            if _proc_state(self.pid) in (None, "Z"):
                self.exited = time.time()
                return
            time.sleep(0.02)


def log_sizes(workdir: Path) -> dict[Path, tuple[int, int]]:
    """``(inode, size)`` of every log file (Snakemake removes a job's log before running it again)."""
    return {p: (p.stat().st_ino, p.stat().st_size) for p in workdir.glob("logs/**/*.log")}


def new_timings(workdir: Path, before: dict[Path, tuple[int, int]]) -> list[dict]:
    """The ``job timing`` records written to the logs since ``before`` (:func:`log_sizes`)."""
    records = []
    for path in sorted(workdir.glob("logs/**/*.log")):
        inode, size = before.get(path, (None, 0))
        with path.open("rb") as fh:
            fh.seek(size if inode == path.stat().st_ino else 0)
            records += parse_timing(fh.read().decode(errors="replace"))
    return records


def targets(workdir: Path) -> dict[str, tuple[str, str, str]]:
    """Per job kind: ``(rule, target file, script)`` of one job of the tiny run (its first model, first
    prediction split)."""
    from se_lib.config import read_config_files, validate_config

    config = validate_config(read_config_files([workdir / "config/config.yaml", workdir / "config/tiny.yaml"])[0])
    model, split = config["models"][0], config["predict"]["splits"][0]
    return {
        "predict": ("predict", f"results/predictions/{model}/{split}_predict_stats.json", "predict.py"),
        "score": ("score", f"results/scores/{model}/{split}_summary.tsv", "score.py"),
        "score_noisy": ("score_noisy", f"results/scores/noisy/{split}_summary.tsv", "score.py"),
        "report": ("report_table", f"results/report/{split}/comparison.tsv", "report_table.py"),
        "train": ("train", f"results/models/{model}/run.json", "train.py"),
    }


def rerun(workdir: Path, kind: str, rule: str, target: str, script: str) -> dict:
    """Force the job of ``rule`` making ``target`` to run again alone; its timings (see module docstring)."""
    before = log_sizes(workdir)
    watcher = ScriptWatcher(workdir, script)
    watcher.start()
    start = time.perf_counter()
    snakemake(workdir, "--forcerun", rule, "--allowed-rules", rule, "--", target, timeout=3600)
    snakemake_s = time.perf_counter() - start
    watcher.stop.set()
    watcher.join()
    want = "train_first_batch" if kind == "train" else rule
    records = [r for r in new_timings(workdir, before) if r.get("kind") == want]
    if not records:
        raise RuntimeError(f"{kind}: no 'job timing: kind={want}' line in the logs of the rerun")
    rec = records[-1]
    started = rec["process_start"]
    process_s = (watcher.exited - started) if watcher.exited else float("nan")
    if kind == "train":
        wall = rec["startup"] + rec["setup"] + rec["work"]  # process start to the first batch
    else:
        wall = process_s
    return {
        "wall": wall,
        "work": rec["work"],
        "overhead": wall - rec["work"],
        "startup": rec["startup"],
        "process": process_s,
        "snakemake": snakemake_s,
        "record": rec,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=1, help="forced reruns per job kind (median)")
    ap.add_argument("--reference-runs", type=int, default=5)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--rev", help="benchmark the source tree of this commit (default: the working tree)")
    ap.add_argument("--workdir", help="folder for the tiny run's copy (reused when it holds a finished run)")
    ap.add_argument("--keep", action="store_true", help="keep the copy (default: removed at the end)")
    ap.add_argument("--timeout", type=float, default=3 * 3600, help="seconds the tiny run may take (shared machines)")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "bench_startup.json"))
    args = ap.parse_args()

    tmp = None
    if args.workdir:
        workdir = Path(args.workdir).resolve()
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_startup_")
        workdir = Path(tmp.name) / "wf"
    try:
        if not (workdir / "Snakefile").exists():
            source_tree(workdir, args.rev)
            commit_workflow_source(workdir)
        else:  # a copy from an earlier (perhaps interrupted) run: finish it
            print(f"reusing the copy in {workdir}", flush=True)
            snakemake(workdir, "--unlock")
        print(f"tiny workflow in {workdir} ...", flush=True)
        start = time.perf_counter()
        snakemake(workdir, "--rerun-incomplete", timeout=args.timeout)
        tiny_s = time.perf_counter() - start
        print(f"  done in {tiny_s:.0f} s", flush=True)
        jobs = targets(workdir)
        ref_runs = reference_seconds(1 + args.reference_runs)[1:]  # the first warms the page cache
        results: dict[str, dict] = {}
        for kind in args.kinds:
            runs = []
            for _ in range(args.repeats):
                print(f"  rerun {kind} ({jobs[kind][0]}) ...", flush=True)
                runs.append(rerun(workdir, kind, *jobs[kind]))
            results[kind] = {
                key: statistics.median(r[key] for r in runs)
                for key in ("wall", "work", "overhead", "startup", "process", "snakemake")
            }
            results[kind]["runs"] = runs
        ref_runs += reference_seconds(args.reference_runs)  # before and after the reruns: the same load
    finally:
        if tmp is not None and not args.keep:
            tmp.cleanup()
        elif tmp is not None:
            print(f"kept {workdir}")

    ref = statistics.median(ref_runs)
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rev": args.rev or "working tree",
        "tiny_workflow_seconds": tiny_s,
        "reference": {"command": f'python -c "{REFERENCE}"', "median_s": ref, "runs_s": ref_runs},
        "jobs": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, report)

    print(f'\nreference: python -c "{REFERENCE}" median {ref:.2f} s ({len(ref_runs)} runs, before and after)')
    print("ratios to the reference (seconds in brackets); train: to its first batch")
    print(f"{'job':<13} {'wall':>14} {'work':>14} {'overhead':>14} {'of which start-up':>18}")
    for kind, r in results.items():
        cells = [f"{r[k] / ref:5.2f} ({r[k]:5.1f})" for k in ("wall", "work", "overhead", "startup")]
        print(f"{kind:<13} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14} {cells[3]:>18}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
