"""Glue shared by the thin scripts in workflow_scripts/: logging to the rule's log file + its MLflow run.

Every :func:`rule_job` ends by logging one :data:`TIMING_PREFIX` line (:func:`timing_line`, parsed back by
:func:`parse_timing`): how long the job's process took to reach it (interpreter start and imports), the
MLflow run's set-up, the work inside the ``with`` block and the closing (MLflow run end, log upload);
``bench/bench_startup.py`` reads them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from se_lib.tracking.runs import rule_run, snakemake_context


@contextlib.contextmanager
def log_to_file(path: str | None) -> Iterator[logging.Logger]:
    """Send logging, stdout and stderr of this process to ``path`` (the rule's ``log:``), if given."""
    logger = logging.getLogger("se")
    if not path:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        yield logger
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", buffering=1) as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = fh
        try:
            yield logger
        except BaseException:
            logger.exception("rule failed")
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            root.removeHandler(handler)


TIMING_PREFIX = "job timing:"
_TIMING_RE = re.compile(r"job timing: (?P<fields>(?:\s*[\w.]+=\S+)+)")


def process_start_time(pid: int | str = "self") -> float:
    """Wall-clock time (seconds since the epoch) at which process ``pid`` started, on Linux from
    ``/proc/<pid>/stat``'s start tick after boot (10 ms) and the boot time of ``CLOCK_BOOTTIME`` (``/proc/stat``'s
    ``btime`` is rounded to the second: up to 1 s off, as psutil's ``create_time``); elsewhere psutil's, else
    ``time.time()`` now."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22, counted after "pid (comm) "
        try:
            boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        except (AttributeError, OSError):
            lines = Path("/proc/stat").read_text().splitlines()
            boot = next(int(line.split()[1]) for line in lines if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    try:
        import psutil

        return psutil.Process(None if pid == "self" else int(pid)).create_time()
    except Exception:
        return time.time()


def timing_line(kind: str, **seconds: float) -> str:
    """``job timing: kind=<kind> <name>=<seconds> ...`` (3 decimals; :func:`parse_timing` reads it back)."""
    fields = " ".join(f"{name}={value:.3f}" for name, value in seconds.items())
    return f"{TIMING_PREFIX} kind={kind} {fields}"


def parse_timing(text: str) -> list[dict[str, Any]]:
    """Every :func:`timing_line` in ``text`` (a log file), as ``{"kind": ..., name: seconds, ...}``."""
    records = []
    for match in _TIMING_RE.finditer(text):
        record: dict[str, Any] = {}
        for field in match["fields"].split():
            key, _, value = field.partition("=")
            try:
                record[key] = float(value)
            except ValueError:
                record[key] = value
        records.append(record)
    return records


@contextlib.contextmanager
def rule_job(smk, params: Mapping[str, Any] | None = None):
    """Context for a Snakemake ``script:``: log to the rule's log file and run inside its MLflow run.

    ``params`` are logged as the run's parameters; ``None`` logs the rule's named ``params:`` as they
    are. Yields ``(logger, run)``. The rule's log file is attached to the run as an artifact at the end.

    A job that succeeds ends its log with a :func:`timing_line` (kind = the rule): ``startup`` (process start
    to this call: interpreter, imports), ``setup`` (to the ``with`` block: the MLflow run), ``work`` (the
    block) and ``closing`` (the run's end), in seconds, and ``process_start`` (epoch seconds).
    """
    entered = time.time()
    started = process_start_time()
    ctx = snakemake_context(smk)
    if params is None:
        params = dict(smk.params.items())
    log_path = ctx["log_files"][0] if ctx["log_files"] else None
    with log_to_file(log_path) as logger:
        with rule_run(ctx["rule"], ctx["wildcards"], ctx["config"], params=params, log_files=ctx["log_files"]) as run:
            logger.info("rule %s wildcards %s -> MLflow run %s", ctx["rule"], ctx["wildcards"], run.info.run_id)
            work_start = time.time()
            yield logger, run
            work_end = time.time()
        logger.info(
            timing_line(
                ctx["rule"],
                startup=entered - started,
                setup=work_start - entered,
                work=work_end - work_start,
                closing=time.time() - work_end,
                process_start=started,
            )
        )
