"""The runs table of an experiment as people read it in the MLflow UI: ``uv run se runs``.

One row per MLflow run, newest first: start time (UTC), run name, rule (``snakemake.rule``; ``cli``
for an ad-hoc ``se`` command), model (the ``model`` wildcard, i.e. the system: a model or a sweep
point ``<model>--<point>``; else ``se.model``), status, short
commit (``*`` when the tree was dirty), the invocation id, the registered model version
(``se.registered_model``), the best validation SI-SDR of a training run and the test summaries the
scoring rules logged onto it (:data:`KEY_METRICS`), and the run id.

:func:`runs_table` returns it as a DataFrame (filters: model, rule, invocation id or its prefix);
:func:`main` is the command line (``se runs --help``), kept free of Lightning so it starts quickly;
``se runs delete`` / ``se runs gc`` (marking runs deleted, removing them for good) are in
:mod:`se_lib.tracking.cleanup`.
Defaults come from the workflow config (``--configfile``, as Snakemake takes it):
:func:`se_lib.config.experiment_name` and :func:`se_lib.config.tracking_uri`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "COLUMNS",
    "KEY_METRICS",
    "add_store_options",
    "format_table",
    "main",
    "runs_table",
    "store_from_args",
    "workflow_config",
]

#: Metric columns: (column, metric key on the run). ``best_val_si_sdr`` is the maximum of the history.
KEY_METRICS: tuple[tuple[str, str], ...] = (
    ("best_val_si_sdr", "val_si_sdr"),
    ("test_si_sdri", "test_si_sdri"),
    ("test_pesq_wb", "test_pesq_wb"),
    ("test_stoi", "test_stoi"),
    ("test_dnsmos_ovrl", "test_dnsmos_ovrl"),
)
COLUMNS: tuple[str, ...] = (
    "start_time",
    "run_name",
    "rule",
    "model",
    "status",
    "commit",
    "invocation",
    "model_version",
    *(c for c, _ in KEY_METRICS),
    "run_id",
)


def _start_time(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short_commit(tags: dict[str, str]) -> str:
    commit = tags.get("mlflow.source.git.commit", "")
    short = commit[:8] if commit and commit != "unknown" else commit
    return short + ("*" if tags.get("se.git.dirty") == "true" else "")


def _row(client: Any, run: Any) -> dict[str, Any]:
    tags, metrics = run.data.tags, run.data.metrics
    row: dict[str, Any] = {
        "start_time": _start_time(run.info.start_time),
        "run_name": tags.get("mlflow.runName", run.info.run_name or ""),
        # the parent run of a `snakemake` invocation has no rule: it groups the rule runs under it
        "rule": tags.get("snakemake.rule") or ("(invocation)" if tags.get("se.run_kind") == "invocation" else ""),
        "model": tags.get("snakemake.wildcards.model") or tags.get("se.model", ""),
        "status": run.info.status,
        "commit": _short_commit(tags),
        "invocation": tags.get("se.invocation_id", ""),
        "model_version": tags.get("se.registered_model", ""),
    }
    for column, key in KEY_METRICS:
        value = float("nan")
        if key in metrics:
            if column.startswith("best_"):
                hist = [m.value for m in client.get_metric_history(run.info.run_id, key) if math.isfinite(m.value)]
                value = max(hist) if hist else float("nan")
            else:
                value = float(metrics[key])
        row[column] = value
    row["run_id"] = run.info.run_id
    return row


def runs_table(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    model: str | None = None,
    rule: str | None = None,
    invocation: str | None = None,
    run_ids: Sequence[str] = (),
    started_before: datetime | None = None,
    deleted: bool = False,
    max_runs: int = 5000,
) -> pd.DataFrame:
    """The runs of ``experiment`` in the store ``tracking_uri``, newest first, columns :data:`COLUMNS`.

    ``model`` / ``rule`` keep runs whose model / rule equals it; ``invocation`` keeps runs whose
    invocation id starts with it; ``run_ids`` keeps those runs; ``started_before`` keeps runs started
    before it. ``deleted``: the runs marked deleted (``se runs delete``) instead of the active ones.
    Raises ``LookupError`` naming the experiments of the store when ``experiment`` is not one of them,
    or naming the path of a sqlite store that does not exist (it is not created).
    """
    from mlflow.entities import ViewType

    from se_lib.tracking.runs import client_for

    if tracking_uri and tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[10:]).is_file():
        raise LookupError(f"no MLflow store at {tracking_uri} (run the workflow first, or pass --tracking-uri)")
    client = client_for(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY))
        raise LookupError(
            f"experiment {experiment!r} not found in {tracking_uri or 'the current store'}"
            f" (experiments: {', '.join(names) or 'none'}; --experiment NAME picks one)"
        )
    filters = []
    if rule:
        quoted = rule.replace("'", "\\'")
        filters.append(f"tags.`snakemake.rule` = '{quoted}'")
    if run_ids:
        filters.append("attributes.run_id IN (" + ", ".join(f"'{r}'" for r in run_ids) + ")")
    if started_before is not None:
        filters.append(f"attributes.start_time < {int(started_before.timestamp() * 1000)}")
    runs, token = [], None
    while len(runs) < max_runs:
        page = client.search_runs(
            [exp.experiment_id],
            filter_string=" and ".join(filters),
            order_by=["attributes.start_time DESC"],
            run_view_type=ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY,
            max_results=min(1000, max_runs - len(runs)),
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    rows = []
    for run in runs:
        tags = run.data.tags
        if model and model not in (tags.get("se.model"), tags.get("snakemake.wildcards.model")):
            continue
        if invocation and not tags.get("se.invocation_id", "").startswith(invocation):
            continue
        rows.append(_row(client, run))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def format_table(table: pd.DataFrame, digits: int = 2) -> str:
    """Plain-text table: metrics rounded to ``digits``, empty cells for missing values."""
    if table.empty:
        return "(no runs)"
    shown = table.copy()
    for column, _ in KEY_METRICS:
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}f}")
    shown = shown.fillna("")
    return shown.to_string(index=False)


DEFAULT_CONFIGFILE = "config/config.yaml"


def workflow_config(configfiles: Sequence[str] = ()) -> dict[str, Any] | None:
    """The workflow config as Snakemake reads it, unvalidated: ``config/config.yaml`` (when present in
    the working directory), then each of ``configfiles`` merged on top (``snakemake --configfile``).
    None when there is none; a named file that does not exist is an error naming it."""
    from se_lib.config import ConfigError, read_config_files

    paths = [p for p in [DEFAULT_CONFIGFILE, *configfiles] if p != DEFAULT_CONFIGFILE or Path(p).is_file()]
    if not paths:
        return None
    try:
        config, _ = read_config_files(paths)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from exc
    if isinstance(config.get("tracking"), dict):
        config["tracking"].setdefault("uri", None)
    return config


def add_store_options(p: argparse.ArgumentParser) -> None:
    """``--experiment``, ``--tracking-uri`` and ``--configfile``: which store and experiment a command reads
    (``se runs``, ``make mlflow-ui``); :func:`store_from_args` resolves them."""
    p.add_argument("--experiment", help="experiment name (default: the workflow config's `experiment`)")
    p.add_argument(
        "--tracking-uri",
        help="MLflow store (default: config tracking.uri, $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    p.add_argument(
        "--configfile",
        action="append",
        default=[],
        help=f"workflow config file(s) merged on top of {DEFAULT_CONFIGFILE}, as snakemake --configfile",
    )


def add_run_filters(p: argparse.ArgumentParser, *, parent_too: bool = False) -> None:
    """``--model``, ``--rule`` and ``--invocation``: which runs a command selects (``se runs``, ``se runs
    delete``); the same selection as :func:`runs_table`'s keyword arguments. ``parent_too``: the
    invocation's parent run is selected with its children (``delete``)."""
    p.add_argument("--model", help="only runs of this model or sweep point (tag se.model or wildcard model)")
    p.add_argument("--rule", help="only runs of this Snakemake rule (cli: ad-hoc `se` commands)")
    p.add_argument(
        "--invocation",
        help="only runs of this workflow invocation id (or a prefix of it)"
        + (", its parent run too" if parent_too else ""),
    )


def store_from_args(args: argparse.Namespace) -> tuple[str, str]:
    """``(experiment, tracking URI)`` of :func:`add_store_options`' arguments: the options, else the workflow
    config's (:func:`se_lib.config.experiment_name`, :func:`se_lib.config.tracking_uri`). A tracking server
    that does not answer or refuses the environment's credentials is an error saying so
    (:func:`se_lib.tracking.service.check_server_access`), not a traceback."""
    from se_lib.config import experiment_name, tracking_uri
    from se_lib.tracking.service import ServiceError, check_server_access

    config = workflow_config(args.configfile)
    uri = args.tracking_uri or tracking_uri(config)
    try:
        check_server_access(uri)
    except ServiceError as exc:
        raise SystemExit(f"error: {exc}") from None
    return experiment_name(config, args.experiment), uri


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="se runs",
        description="The runs table of an MLflow experiment (what the MLflow UI's runs table shows), newest "
        "first: start time (UTC), run name, rule, model, status, short commit (* = dirty tree), "
        "invocation, registered model version, best val_si_sdr and test SI-SDRi/PESQ/STOI/DNSMOS.",
        epilog="examples:  se runs --rule train | se runs --model dprnn --csv > dprnn.csv | "
        "se runs --configfile config/config.yaml --configfile config/tiny.yaml",
    )
    add_run_filters(p)
    add_store_options(p)
    p.add_argument("--csv", action="store_true", help="write CSV (all digits) instead of the text table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``se runs [options]``; returns the exit status."""
    args = parser().parse_args(list(argv) if argv is not None else None)
    experiment, uri = store_from_args(args)
    try:
        table = runs_table(experiment, tracking_uri=uri, model=args.model, rule=args.rule, invocation=args.invocation)
    except LookupError as exc:
        sys.stderr.write(f"error: {exc.args[0]}\n")
        return 1
    try:
        if args.csv:
            table.to_csv(sys.stdout, index=False)
        else:
            print(f"experiment {experiment} ({uri}): {len(table)} runs")
            print(format_table(table))
        sys.stdout.flush()
    except BrokenPipeError:  # `se runs | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
