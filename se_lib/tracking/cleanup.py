"""Cleaning an MLflow store up: ``se runs delete`` marks runs deleted, ``se runs gc`` (``make mlflow-gc``)
removes the deleted runs and their artifacts for good.

* :func:`delete_runs` - the active runs of an experiment selected by run id, rule, model, invocation
  (its parent run included) or age (``--older-than 30d``: started before that) are marked deleted
  (MLflow's lifecycle stage ``deleted``). This can be undone: ``mlflow runs restore --run-id ID`` or the
  UI's "Restore". At least one selector is required, so nothing is deleted by accident; ``--dry-run``
  lists what would go.
* :func:`collect_garbage` - runs ``mlflow gc --run-ids <the deleted runs of the experiment>`` against the
  backend store: their metadata, metrics and artifacts are gone for good (no undo). Only those runs are
  named, so deleted experiments, logged models, other experiments' runs and every file of the workflow
  (results/, the mixture DB) stay as they are. The backend store is the tracking URI itself for a
  database store, or, for an ``http(s)://`` server, the backend of the service started by
  ``make mlflow-start`` (its ``server.json``) unless ``--backend-store-uri`` names it. Artifacts
  served by the server are deleted through it (it must be running; credentials from
  ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``).

Both print the runs table (:func:`se_lib.tracking.table.format_table`) of what they touch; a run that
holds a registered model version is named, since that version's files go with the run at ``gc``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from se_lib.tracking.table import add_run_filters, add_store_options, format_table, runs_table, store_from_args

__all__ = ["collect_garbage", "delete_runs", "main", "parse_age"]

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` -> timedelta; ``ValueError`` naming the text otherwise."""
    m = _AGE.match(text.strip())
    if not m:
        raise ValueError(f"age {text!r}: expected a number and a unit s/m/h/d/w, e.g. 30d or 12h")
    return timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})


def _registered(table: pd.DataFrame) -> list[str]:
    return [f"{r.run_id} holds model version {r.model_version}" for r in table.itertuples() if r.model_version]


def delete_runs(
    experiment: str,
    tracking_uri: str,
    *,
    run_ids: Sequence[str] = (),
    rule: str | None = None,
    model: str | None = None,
    invocation: str | None = None,
    older_than: timedelta | None = None,
    dry_run: bool = False,
) -> pd.DataFrame:
    """Mark the selected active runs of ``experiment`` deleted (all selectors must match); returns them.

    ``ValueError`` when no selector is given; ``LookupError`` for an unknown experiment or a run id
    that is not an active run of it.
    """
    if not (run_ids or rule or model or invocation or older_than):
        raise ValueError("name the runs to delete: run ids, --rule, --model, --invocation and/or --older-than")
    before = datetime.now(UTC) - older_than if older_than else None
    table = runs_table(
        experiment,
        tracking_uri=tracking_uri,
        model=model,
        rule=rule,
        invocation=invocation,
        run_ids=run_ids,
        started_before=before,
    )
    missing = sorted(set(run_ids) - set(table["run_id"]))
    if missing:
        raise LookupError(
            f"not active runs of experiment {experiment!r} in {tracking_uri} (or not matching the other "
            f"selectors): {', '.join(missing)}"
        )
    if not dry_run and not table.empty:
        from se_lib.tracking.runs import client_for

        client = client_for(tracking_uri)
        for run_id in table["run_id"]:
            client.delete_run(run_id)
    return table


def _backend_store(tracking_uri: str, backend_store_uri: str | None, home: str | None) -> str:
    """The backend store URI ``mlflow gc`` works on (see the module docstring)."""
    if backend_store_uri or not tracking_uri.startswith(("http://", "https://")):
        return backend_store_uri or tracking_uri
    from se_lib.tracking.service import default_home, server_state

    state = server_state(home or default_home())
    if not state.running:
        raise LookupError(
            f"{tracking_uri} is a tracking server: gc needs its backend store. Run this where the service runs "
            f"(make mlflow-start; home {Path(home or default_home()).resolve()}) or pass --backend-store-uri"
        )
    if urllib.parse.urlsplit(tracking_uri).port != state.settings.port:
        raise LookupError(
            f"the service in {state.settings.home} serves {state.settings.url}, not {tracking_uri}: "
            "pass --backend-store-uri or --home"
        )
    return state.settings.backend_store_uri


def collect_garbage(
    experiment: str,
    tracking_uri: str,
    *,
    backend_store_uri: str | None = None,
    home: str | None = None,
    dry_run: bool = False,
) -> pd.DataFrame:
    """Remove the deleted runs of ``experiment`` for good with ``mlflow gc`` (unless ``dry_run``); returns
    them. ``RuntimeError`` with mlflow's output when ``mlflow gc`` fails."""
    table = runs_table(experiment, tracking_uri=tracking_uri, deleted=True)
    if dry_run or table.empty:
        return table
    backend = _backend_store(tracking_uri, backend_store_uri, home)
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe) if exe.exists() else "mlflow", "gc", "--backend-store-uri", backend, "--tracking-uri", tracking_uri]
    cmd += ["--run-ids", ",".join(table["run_id"])]
    # artifacts a server serves (mlflow-artifacts:/...) are deleted through it, with the environment's credentials
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mlflow gc failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return table


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="se runs",
        description="Clean an MLflow experiment up: `delete` marks runs deleted (undo: mlflow runs restore); "
        "`gc` removes the deleted runs and their artifacts for good (no undo).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("delete", help="mark runs deleted (by run id, rule, model, invocation, age)")
    d.add_argument("run_ids", nargs="*", help="run ids")
    add_run_filters(d, parent_too=True)
    d.add_argument("--older-than", type=parse_age, help="runs started longer ago than this (30d, 12h, 2w)")
    g = sub.add_parser("gc", help="remove the deleted runs and their artifacts for good (mlflow gc)")
    g.add_argument("--backend-store-uri", help="the server's backend store (default: the running service's)")
    g.add_argument("--home", help="directory of the service started by make mlflow-start (default mlflow-service)")
    for s in (d, g):
        add_store_options(s)
        s.add_argument("--dry-run", action="store_true", help="list what would go, change nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``se runs delete ...`` / ``se runs gc ...``; returns the exit status."""
    args = parser().parse_args(list(argv) if argv is not None else None)
    experiment, uri = store_from_args(args)
    try:
        if args.command == "delete":
            table = delete_runs(
                experiment,
                uri,
                run_ids=args.run_ids,
                rule=args.rule,
                model=args.model,
                invocation=args.invocation,
                older_than=args.older_than,
                dry_run=args.dry_run,
            )
            verb = "would mark deleted" if args.dry_run else "marked deleted"
            tail = "" if args.dry_run else " (undo: mlflow runs restore --run-id ID; for good: make mlflow-gc)"
        else:
            table = collect_garbage(
                experiment, uri, backend_store_uri=args.backend_store_uri, home=args.home, dry_run=args.dry_run
            )
            verb = "would remove for good" if args.dry_run else "removed for good"
            tail = ""
    except (ValueError, LookupError, RuntimeError) as exc:
        sys.stderr.write(f"error: {exc.args[0]}\n")
        return 1
    print(f"experiment {experiment} ({uri}): {verb} {len(table)} runs{tail}")
    print(format_table(table))
    for note in _registered(table):
        print(f"note: {note}; its files go with the run at gc")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
