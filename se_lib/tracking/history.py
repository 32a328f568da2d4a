"""Finished training runs as the later rules read them from the MLflow store.

* :func:`read_run_json` - ``results/models/<model>/run.json`` (written by the ``train`` rule) holds
  the MLflow ``run_id`` of the model's training run;
* :func:`learning_curves` - metric histories (``train_loss_epoch``, ``val_loss_epoch``,
  ``val_si_sdr``, ...) against the step, the epoch (Lightning logs ``epoch`` at the same step as the
  metrics) and the time since the run's first value;
* :func:`experiment_runs` - every finished training run of the experiment (tag
  ``se.subcommand = fit``) with its parameters and best validation metric (the table behind the
  report's parallel-coordinates plot; :func:`se_lib.report.plots.hparam_axes` picks its axes).

Writing onto a training run: the test scores, :func:`se_lib.tracking.runs.log_split_metrics`; the
learning-curve diagnosis tag, :func:`set_run_tags`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from se_lib.io import read_json_object
from se_lib.tracking.runs import client_for

__all__ = [
    "experiment_runs",
    "learning_curves",
    "param_short_name",
    "read_run_json",
    "set_run_tags",
]


def read_run_json(path: str | os.PathLike) -> dict[str, Any]:
    """The ``run.json`` of a trained model; must hold a ``run_id``."""
    info = read_json_object(path, "training record", hint="run the train rule first")
    if not info.get("run_id"):
        raise ValueError(f"{path}: no MLflow run_id recorded")
    return info


def learning_curves(
    run_ids: Mapping[str, str],
    metrics: Sequence[str] = ("train_loss_epoch", "val_loss_epoch", "val_si_sdr"),
    *,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """Columns ``model, run_id, metric, step, epoch, time_s, value`` for each model's training run.

    The epoch of a point is the value of the run's ``epoch`` metric at the same (or the latest
    earlier) step; without an ``epoch`` history the point's index is used. ``time_s`` is the seconds
    from the run's first logged value (of these metrics or ``epoch``) to the point's timestamp.
    """
    columns = ["model", "run_id", "metric", "step", "epoch", "time_s", "value"]
    client = client_for(tracking_uri)
    frames = []
    for model, run_id in run_ids.items():
        epoch_hist = client.get_metric_history(run_id, "epoch")
        epochs = sorted(((m.step, m.value) for m in epoch_hist), key=lambda t: t[0])
        histories = {metric: client.get_metric_history(run_id, metric) for metric in metrics}
        stamps = [m.timestamp for h in [epoch_hist, *histories.values()] for m in h]
        t0 = min(stamps) if stamps else 0
        for metric, history in histories.items():
            hist = sorted(history, key=lambda m: (m.step, m.timestamp))
            if not hist:
                continue
            df = pd.DataFrame(
                {
                    "step": [m.step for m in hist],
                    "time_s": [(m.timestamp - t0) / 1000.0 for m in hist],
                    "value": [m.value for m in hist],
                }
            )
            df = df.drop_duplicates("step", keep="last")
            if epochs:
                ep = pd.DataFrame(epochs, columns=["step", "epoch"]).drop_duplicates("step", keep="last")
                df = pd.merge_asof(df.sort_values("step"), ep.sort_values("step"), on="step", direction="backward")
                df["epoch"] = df["epoch"].fillna(0).astype(int)
            else:
                df["epoch"] = range(len(df))
            df.insert(0, "metric", metric)
            df.insert(0, "run_id", run_id)
            df.insert(0, "model", model)
            frames.append(df[columns])
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def param_short_name(key: str) -> str:
    """Short column name of a logged parameter.

    ``net/init_args/N`` -> ``net.N``; ``data/batch_size`` -> ``batch_size``.
    """
    parts = [p for p in re.split(r"[/.]", key) if p not in ("init_args", "model", "data", "dict_kwargs")]
    return ".".join(parts) or key


def experiment_runs(
    experiment: str,
    objective: str = "val_si_sdr",
    mode: str = "max",
    *,
    tracking_uri: str | None = None,
    extra_run_ids: Iterable[str] = (),
    max_runs: int = 500,
) -> pd.DataFrame:
    """Finished training runs of ``experiment`` (plus ``extra_run_ids``): parameters and best objective.

    Columns: ``run_id``, ``run_name``, ``arch`` (tag ``se.model``), ``best_<objective>`` (max or min
    over the run's history, per ``mode``), ``epochs`` and one column per parameter (short names,
    see :func:`param_short_name`; the raw strings).
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    client = client_for(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = []
    if exp is not None:
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string="tags.`se.subcommand` = 'fit' and attributes.status = 'FINISHED'",
            max_results=max_runs,
        )
    seen = {r.info.run_id for r in runs}
    for run_id in extra_run_ids:
        if run_id not in seen:
            runs.append(client.get_run(run_id))
            seen.add(run_id)
    rows = []
    best_col = f"best_{objective}"
    for run in runs:
        hist = [m.value for m in client.get_metric_history(run.info.run_id, objective) if math.isfinite(m.value)]
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "run_name": run.data.tags.get("mlflow.runName", run.info.run_id[:8]),
            "arch": run.data.tags.get("se.model", ""),
            best_col: (max(hist) if mode == "max" else min(hist)) if hist else float("nan"),
            "epochs": len({m.step for m in client.get_metric_history(run.info.run_id, "epoch")}) or pd.NA,
        }
        for key, value in run.data.params.items():
            name = param_short_name(key)
            if name not in row:
                row[name] = None if value in ("None", "null", "") else value
        rows.append(row)
    return pd.DataFrame(rows)


def set_run_tags(tags: Mapping[str, Mapping[str, str]], *, tracking_uri: str | None = None) -> None:
    """Set ``tags[run_id]`` (name -> value) on each run, e.g. ``se.diagnosis`` from the report's
    learning-curve diagnosis (:mod:`se_lib.report.diagnosis`); values are cut to MLflow's 5000 characters."""
    from mlflow.entities import RunTag

    client = client_for(tracking_uri)
    for run_id, values in tags.items():
        if values:
            client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in values.items()])
