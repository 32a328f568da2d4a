"""Glue shared by the thin scripts in workflow_scripts/: logging to the rule's log file + its MLflow run."""

from __future__ import annotations

import contextlib
import logging
import sys
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


@contextlib.contextmanager
def rule_job(smk, params: Mapping[str, Any] | None = None):
    """Context for a Snakemake ``script:``: log to the rule's log file and run inside its MLflow run.

    ``params`` are logged as the run's parameters; ``None`` logs the rule's named ``params:`` as they
    are. Yields ``(logger, run)``. The rule's log file is attached to the run as an artifact at the end.
    """
    ctx = snakemake_context(smk)
    if params is None:
        params = dict(smk.params.items())
    log_path = ctx["log_files"][0] if ctx["log_files"] else None
    with log_to_file(log_path) as logger:
        with rule_run(ctx["rule"], ctx["wildcards"], ctx["config"], params=params, log_files=ctx["log_files"]) as run:
            logger.info("rule %s wildcards %s -> MLflow run %s", ctx["rule"], ctx["wildcards"], run.info.run_id)
            yield logger, run
