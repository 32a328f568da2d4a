"""Sweep analysis: one table per sweep (points x hyper-parameters x metrics) and its three views.

* :func:`sweep_table` - one row per point of a sweep (:mod:`se_lib.sweep`): its swept values, the
  best validation metric of its training run (max over the run's MLflow history) and the mean test
  metrics of its score summaries (``<split>_<metric>``). Saved as CSV: the data of every figure.
* :func:`plot_sweep_parallel` - parallel coordinates, hyper-parameters -> test metrics -> best
  validation metric (:func:`se_lib.report.plots.plot_parallel_coordinates`, coloured by the latter);
* :func:`plot_sweep_scatter` - each metric against each hyper-parameter (one panel per pair; a log
  axis where values span two decades, e.g. learning rates; the best point ringed);
* :func:`plot_sweep_contour` - a metric over a grid of two hyper-parameters (filled contours where
  the grid has at least 2 x 2 values, the grid's values at even steps, each point annotated with its
  value; pairs from :func:`se_lib.sweep.contour_pairs`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from se_lib.report.figures import new_figure, save_figure
from se_lib.report.names import METRIC_LABELS
from se_lib.report.plots import plot_parallel_coordinates

__all__ = [
    "metric_label",
    "plot_sweep_contour",
    "plot_sweep_parallel",
    "plot_sweep_scatter",
    "sweep_table",
]


def metric_label(column: str) -> str:
    """Display label of a sweep-table metric column: ``test_si_sdri`` -> ``test SI-SDRi [dB]``."""
    if column.startswith("best_"):
        return f"best {column[5:]}"
    split, _, metric = column.partition("_")
    return f"{split} {METRIC_LABELS[metric]}" if metric in METRIC_LABELS else column


def _cell(value: Any) -> Any:
    """A swept value as a table cell: scalars as they are, lists as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def sweep_table(
    points: Sequence[Mapping[str, Any]],
    run_ids: Mapping[str, str],
    summaries: Mapping[str, Mapping[str, str | os.PathLike]],
    *,
    objective: str = "val_si_sdr",
    mode: str = "max",
    metrics: Sequence[str] = (),
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """Rows: ``points`` (each ``system``, ``origin``, ``values``). Columns: ``system``, ``origin``, the
    swept keys, ``best_<objective>`` (from run ``run_ids[system]``), ``epochs``, ``run_id`` and
    ``<split>_<metric>`` for ``metrics`` of ``summaries[system][split]`` (a scorer summary TSV)."""
    from se_lib.report.tables import read_summary
    from se_lib.tracking.runs import client_for

    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    client = client_for(tracking_uri)
    rows = []
    for p in points:
        system = p["system"]
        run_id = run_ids[system]
        hist = [m.value for m in client.get_metric_history(run_id, objective) if math.isfinite(m.value)]
        row: dict[str, Any] = {"system": system, "origin": p.get("origin", "grid")}
        row.update({k: _cell(v) for k, v in p["values"].items()})
        row[f"best_{objective}"] = (max(hist) if mode == "max" else min(hist)) if hist else float("nan")
        row["epochs"] = len({m.step for m in client.get_metric_history(run_id, "epoch")})
        row["run_id"] = run_id
        for split, path in summaries[system].items():
            summary = read_summary(path)
            for m in metrics:
                row[f"{split}_{m}"] = float(summary.at[m, "mean"]) if m in summary.index else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def plot_sweep_parallel(
    table: pd.DataFrame,
    keys: Sequence[str],
    objective: str,
    metrics: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str,
) -> None:
    """Parallel coordinates: ``keys`` (the hyper-parameters), then ``metrics``, then ``objective``."""
    plot_parallel_coordinates(table, objective, path, label="system", axes=[*keys, *metrics], title=title)


def _numeric(col: pd.Series) -> pd.Series | None:
    x = pd.to_numeric(col, errors="coerce")
    return x.astype(float) if x.notna().all() else None


def _is_log(x: pd.Series) -> bool:
    return bool((x > 0).all() and x.max() / x.min() >= 100)


def plot_sweep_scatter(
    table: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str], path: str | os.PathLike, *, title: str
) -> None:
    """One panel per (hyper-parameter, metric): the points' metric against the value, the best ringed.
    Panels in rows of up to three metrics, one block of rows per hyper-parameter."""
    if table.empty:
        raise ValueError("sweep scatter: no points")
    ncols = min(3, len(metrics))
    per_key = math.ceil(len(metrics) / ncols)
    fig = new_figure(3.3 * ncols + 0.4, 2.5 * per_key * len(keys) + 0.6)
    grid = fig.subplots(per_key * len(keys), ncols, squeeze=False)
    for ax in grid.ravel():
        ax.set_visible(False)
    for j, key in enumerate(keys):
        x = _numeric(table[key])
        ticks: tuple[list[float], list[str]] | None = None
        if x is None:  # categorical: evenly spaced, labelled
            cats = sorted({str(v) for v in table[key]})
            x = table[key].astype(str).map({c: k for k, c in enumerate(cats)}).astype(float)
            ticks = (list(range(len(cats))), cats)
        elif x.nunique() <= 6:  # few values (a grid): label each
            uniq = sorted(x.unique())
            ticks = (uniq, [f"{v:g}" for v in uniq])
        for i, metric in enumerate(metrics):
            ax = grid[j * per_key + i // ncols][i % ncols]
            ax.set_visible(True)
            y = pd.to_numeric(table[metric], errors="coerce").astype(float)
            if _is_log(x):
                ax.set_xscale("log")
            ax.scatter(x, y, s=28, color="tab:blue", zorder=3)
            if y.notna().any():
                best = int(np.nanargmax(y.to_numpy()))
                ax.scatter([x.iloc[best]], [y.iloc[best]], s=110, facecolors="none", edgecolors="tab:red", zorder=4)
            if ticks is not None:
                ax.set_xticks(ticks[0], ticks[1])
                ax.minorticks_off()
            ax.grid(alpha=0.3)
            ax.set_xlabel(key, fontsize=8)
            ax.set_ylabel(metric_label(metric), fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    shown = [c for c in ("system", *keys, *metrics) if c in table.columns]
    save_figure(fig, path, data=table[list(dict.fromkeys(shown))])


def plot_sweep_contour(
    table: pd.DataFrame, x_key: str, y_key: str, metrics: Sequence[str], path: str | os.PathLike, *, title: str
) -> None:
    """``metrics`` (one panel each) over the grid ``x_key`` x ``y_key``: filled contours of the mean per
    grid cell (points sharing a cell, e.g. other swept keys, are averaged), each cell's value written
    on it. The grid's values sit at even steps in their order (a learning-rate grid is usually
    logarithmic), labelled with the values."""
    fig = new_figure(max(4.6, 4.4 * len(metrics)), 3.9)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        cells = table.groupby([x_key, y_key])[metric].mean().unstack(y_key)  # rows x, columns y (sorted)
        xs, ys = cells.index.to_numpy(), cells.columns.to_numpy()
        z = cells.to_numpy(float).T  # [y, x]
        gx, gy = np.meshgrid(np.arange(len(xs), dtype=float), np.arange(len(ys), dtype=float))
        if len(xs) >= 2 and len(ys) >= 2 and np.isfinite(z).sum() >= 3:
            filled = ax.contourf(gx, gy, np.ma.masked_invalid(z), levels=12, cmap="viridis")
            fig.colorbar(filled, ax=ax, label=metric_label(metric), shrink=0.9)
        ax.scatter(gx.ravel(), gy.ravel(), s=14, color="white", edgecolors="black", linewidths=0.5, zorder=3)
        for xi, yi, zi in zip(gx.ravel(), gy.ravel(), z.ravel(), strict=True):
            if np.isfinite(zi):
                ax.annotate(
                    f"{zi:.2f}",
                    (xi, yi),
                    xytext=(0, 7),
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
                    zorder=4,
                )
        ax.set_xticks(range(len(xs)), [f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in xs], fontsize=7)
        ax.set_yticks(range(len(ys)), [f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in ys], fontsize=7)
        ax.set_xlim(-0.35, len(xs) - 0.65)
        ax.set_ylim(-0.35, len(ys) - 0.65)
        ax.set_xlabel(x_key, fontsize=8)
        ax.set_ylabel(y_key, fontsize=8)
        ax.set_title(metric_label(metric), fontsize=9)
    fig.suptitle(title, fontsize=10)
    cells = table.groupby([x_key, y_key])[list(metrics)].mean().reset_index()  # the values drawn, per grid cell
    save_figure(fig, path, data=cells)
