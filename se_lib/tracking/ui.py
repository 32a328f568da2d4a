"""The MLflow UI over the project's store, opened at the experiment's runs table (``make mlflow-ui``).

MLflow 3's UI lands on a GenAI "Overview" page (traces, token usage) when opened at its root or at
``#/experiments/<id>``; the classic runs table of an experiment (run name, dataset, duration,
metrics, parameters as columns) is at ``#/experiments/<id>/runs?workflowType=machine_learning`` (the
parameter picks MLflow 3.17's Machine-learning view over its default GenAI one; the experiment also
carries ``mlflow.experimentKind = custom_model_development``, set by
:func:`se_lib.tracking.runs.setup_tracking`) and a run's page (parameters, metrics, tags; artifacts
with an audio player for wavs) at ``#/experiments/<id>/runs/<run_id>`` (:func:`runs_table_url`,
:func:`run_url`; checked in headless Chromium by tests/test_mlflow_ui.py).

:func:`main` (``python -m se_lib.tracking.ui``): resolves the experiment of the workflow config
(:func:`se_lib.config.experiment_name`, store :func:`se_lib.config.tracking_uri`; ``--configfile``
adds config files on top of ``config/config.yaml`` as Snakemake does), prints the runs table's
address, then runs ``mlflow server`` on ``127.0.0.1`` (``--port``, default 5000) in the foreground.
The server's background job runner (GenAI jobs: a handful of worker processes) is switched off
(``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``) unless the environment sets it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from se_lib.tracking.server import server_command, server_env
from se_lib.tracking.urls import DEFAULT_HOST, DEFAULT_PORT, TRAINING_RUNS, run_url, runs_table_url

__all__ = ["experiment_id", "main", "run_url", "runs_table_url", "server_command", "server_env"]


def _store_missing(tracking_uri: str) -> bool:
    return tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///") :]).is_file()


def experiment_id(experiment: str, tracking_uri: str, *, tag_kind: bool = False) -> str:
    """Id of ``experiment`` in the store; ``LookupError`` naming the store's experiments if absent
    (or naming the path of a sqlite store that does not exist: it is not created). ``tag_kind``: give
    an experiment without an experiment-kind tag (a store written before the workflow set one) the
    workflow's (:func:`se_lib.tracking.runs.ensure_experiment_kind`)."""
    if _store_missing(tracking_uri):
        raise LookupError(f"no MLflow store at {tracking_uri} (run the workflow first: make run)")
    from mlflow.entities import ViewType

    from se_lib.tracking.runs import client_for, ensure_experiment_kind

    client = client_for(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY))
        raise LookupError(f"experiment {experiment!r} not in {tracking_uri} (experiments: {', '.join(names)})")
    if tag_kind:
        ensure_experiment_kind(client, exp)
    return exp.experiment_id


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m se_lib.tracking.ui [--port N] [--configfile F] [--experiment E] [--tracking-uri U]``."""
    from se_lib.tracking.table import add_store_options, store_from_args

    p = argparse.ArgumentParser(
        prog="python -m se_lib.tracking.ui",
        description="Serve the MLflow UI over the project's store on 127.0.0.1 and print the address of "
        "the experiment's runs table.",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"interface (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    add_store_options(p)
    p.add_argument("--print-only", action="store_true", help="print the address and the command, do not serve")
    args = p.parse_args(list(argv) if argv is not None else None)
    experiment, uri = store_from_args(args)
    base = f"http://{args.host}:{args.port}"
    try:
        exp_id = experiment_id(experiment, uri, tag_kind=True)
        print(f"MLflow UI, runs table of experiment {experiment}: {runs_table_url(base, exp_id)}", flush=True)
        print(
            f"  training runs and their datasets: {runs_table_url(base, exp_id, TRAINING_RUNS)}\n"
            "  (each snakemake invocation is one row; its + button unfolds the rule runs)",
            flush=True,
        )
    except LookupError as exc:
        if _store_missing(uri):
            sys.stderr.write(f"error: {exc.args[0]}\n")
            return 1
        print(f"note: {exc.args[0]}; the UI lists the experiments at {base}", flush=True)
    from se_lib.tracking.service import busy_port_message, port_free

    if not port_free(args.host, args.port):
        sys.stderr.write(f"error: {busy_port_message(args.host, args.port, 'mlflow-ui')}\n")
        return 1
    cmd = server_command(uri, args.host, args.port)
    print(f"store {uri}; serving with: {' '.join(cmd)} (Ctrl-C stops it)", flush=True)
    if args.print_only:
        return 0
    os.execve(cmd[0], cmd, server_env())
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
