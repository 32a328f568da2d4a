"""Report figures: metric versus input SNR, learning curves, parallel coordinates of hyper-parameters.

All functions draw with matplotlib's object API (:func:`se_lib.report.figures.new_figure`; no
pyplot state) and write PNGs atomically with the data they show as CSV beside them
(:func:`se_lib.report.figures.save_figure`). Spectrogram
panels are :mod:`se_lib.report.spectrogram`.

* :func:`plot_metric_vs_snr` - per-file scores binned by the mixture's input SNR (equal-width bins
  over the observed range), mean and Student-t 95 % interval per bin and system, files as dots;
* :func:`plot_learning_curves` - training/validation loss, validation SI-SDR and the live speech
  metrics, one line per model, with EMA smoothing, log scale and an x axis by epoch, step or time;
* :func:`plot_parallel_coordinates` - one polyline per training run across hyper-parameter axes
  (each axis scaled to its own range; categorical values spread evenly; missing values drawn on a
  separate "n/a" level below the axis), coloured by the best validation metric, which is the last
  axis (Inselberg's parallel coordinates; the layout of ``pandas.plotting.parallel_coordinates``
  with per-axis scaling added); :func:`hparam_axes` chooses its axes;
* :func:`select_examples` - a few mixtures spread over the input-SNR range (for the spectrogram
  examples).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from se_lib.report.figures import new_figure, save_figure
from se_lib.report.tables import BASELINE, METRIC_LABELS, mean_ci95

__all__ = [
    "LEARNING_CURVE_METRICS",
    "X_AXES",
    "curve_table",
    "ema_smooth",
    "hparam_axes",
    "plot_learning_curves",
    "plot_metric_vs_snr",
    "plot_parallel_coordinates",
    "select_examples",
    "snr_bins",
]

# the live speech metrics of se_lib.train.live_metrics are drawn too ("not logged" where a run lacks them)
LEARNING_CURVE_METRICS = (
    "train_loss_epoch",
    "val_loss_epoch",
    "val_si_sdr",
    "val_pesq",
    "val_stoi",
    "val_dnsmos_ovrl",
)
_CURVE_LABELS = {
    "train_loss_epoch": "training loss",
    "val_loss_epoch": "validation loss",
    "val_si_sdr": "validation SI-SDR [dB]",
    "val_pesq": "validation PESQ-WB (subset)",
    "val_stoi": "validation STOI (subset)",
    "val_dnsmos_ovrl": "validation DNSMOS OVRL (subset)",
}


def _system_colors(names: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    models = [n for n in names if n != BASELINE]
    colors = {n: cmap(i % 10) for i, n in enumerate(models)}
    colors[BASELINE] = (0.35, 0.35, 0.35, 1.0)
    return colors


# --------------------------------------------------------------------------- metric vs input SNR
def snr_bins(per_file: Mapping[str, pd.DataFrame], metric: str, n_bins: int = 5) -> pd.DataFrame:
    """Bin every system's per-file ``metric`` by input ``snr_db`` (same edges for all systems).

    Returns columns ``system, bin_low, bin_high, snr_center, mean, ci95, count``. Systems without
    the metric are skipped.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    snrs = np.concatenate([df["snr_db"].to_numpy(float) for df in per_file.values()]) if per_file else np.array([])
    snrs = snrs[np.isfinite(snrs)]
    if snrs.size == 0:
        raise ValueError("no finite input SNRs in the per-file scores")
    lo, hi = float(snrs.min()), float(snrs.max())
    if hi - lo < 1e-9:
        lo, hi, n_bins = lo - 0.5, hi + 0.5, 1
    edges = np.linspace(lo, hi, n_bins + 1)
    rows = []
    for name, df in per_file.items():
        if metric not in df.columns:
            continue
        idx = np.clip(np.searchsorted(edges, df["snr_db"].to_numpy(float), side="right") - 1, 0, n_bins - 1)
        values = df[metric].to_numpy(float)
        for b in range(n_bins):
            mean, ci, count = mean_ci95(values[idx == b])
            rows.append(
                {
                    "system": name,
                    "bin_low": edges[b],
                    "bin_high": edges[b + 1],
                    "snr_center": 0.5 * (edges[b] + edges[b + 1]),
                    "mean": mean,
                    "ci95": ci,
                    "count": count,
                }
            )
    return pd.DataFrame(rows, columns=["system", "bin_low", "bin_high", "snr_center", "mean", "ci95", "count"])


def plot_metric_vs_snr(
    per_file: Mapping[str, pd.DataFrame],
    metric: str,
    path: str | os.PathLike,
    *,
    n_bins: int = 5,
    title: str | None = None,
) -> pd.DataFrame:
    """Plot ``metric`` against input SNR for every system; returns the binned table."""
    binned = snr_bins(per_file, metric, n_bins)
    if binned.empty:
        raise ValueError(f"no system has per-file values of {metric!r}")
    colors = _system_colors(list(per_file))
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    systems = list(dict.fromkeys(binned["system"]))
    width = float((binned["bin_high"] - binned["bin_low"]).iloc[0])
    for k, name in enumerate(systems):
        df = per_file[name]
        color = colors[name]
        jitter = (k - (len(systems) - 1) / 2) * 0.06 * width  # keep systems' markers apart
        ax.scatter(df["snr_db"] + jitter, df[metric], s=9, alpha=0.25, color=color, linewidths=0)
        b = binned[(binned["system"] == name) & (binned["count"] > 0)]
        ax.errorbar(
            b["snr_center"] + jitter,
            b["mean"],
            yerr=b["ci95"].fillna(0.0),
            color=color,
            marker="o",
            ms=4,
            capsize=3,
            lw=1.6,
            ls="--" if name == BASELINE else "-",
            label=name,
        )
    ax.set_xlabel("input SNR at the reference mic [dB]")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric)} versus input SNR")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    save_figure(fig, path, data=binned)
    return binned


# ---------------------------------------------------------------------------------- learning curves
X_AXES = {
    "epoch": ("epoch", "epoch"),
    "step": ("step", "optimiser step"),
    "time": ("time_min", "time since start [min]"),
}


def ema_smooth(values: Sequence[float], weight: float) -> np.ndarray:
    """Exponential moving average with bias correction (TensorBoard's smoothing): ``weight`` 0 returns the
    values, values near 1 smooth strongly. Non-finite values pass through without entering the average."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {weight}")
    x = np.asarray(values, dtype=np.float64)
    if weight == 0.0:
        return x.copy()
    out = np.empty_like(x)
    acc, n = 0.0, 0
    for i, v in enumerate(x):
        if not np.isfinite(v):
            out[i] = v
            continue
        acc, n = acc * weight + (1.0 - weight) * v, n + 1
        out[i] = acc / (1.0 - weight**n)
    return out


def curve_table(curves: pd.DataFrame, *, smoothing: float = 0.0, x_axis: str = "epoch") -> pd.DataFrame:
    """``curves`` plus ``x`` (the chosen axis: ``epoch``, ``step`` or ``time`` in minutes since the run's
    first logged value) and ``smoothed`` (:func:`ema_smooth` per model and metric): the data a learning-curve
    figure shows, written beside it as CSV."""
    if x_axis not in X_AXES:
        raise ValueError(f"x_axis must be one of {sorted(X_AXES)}, got {x_axis!r}")
    need = ("model", "metric", "epoch", "value") + (("step",) if x_axis == "step" else ())
    need += ("time_s",) if x_axis == "time" else ()
    missing = [c for c in need if c not in curves.columns]
    if missing:
        raise ValueError(f"learning curves lack column(s) {missing}")
    df = curves.copy()
    if x_axis == "time":
        df["time_min"] = df["time_s"] / 60.0
    df["x"] = df[X_AXES[x_axis][0]]
    df = df.sort_values(["model", "metric", "x"], kind="mergesort").reset_index(drop=True)
    df["smoothed"] = np.nan
    for _, idx in df.groupby(["model", "metric"], sort=False).groups.items():
        df.loc[idx, "smoothed"] = ema_smooth(df.loc[idx, "value"].to_numpy(float), smoothing)
    return df


def plot_learning_curves(
    curves: pd.DataFrame,
    path: str | os.PathLike,
    metrics: Sequence[str] = LEARNING_CURVE_METRICS,
    *,
    smoothing: float = 0.0,
    log_scale: bool = False,
    x_axis: str = "epoch",
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One panel per metric, one line per model; writes the PNG and its data (:func:`curve_table`) as CSV.

    ``curves``: columns ``model, metric, epoch, value`` (+ ``step`` / ``time_s`` for those axes; see
    :func:`se_lib.tracking.history.learning_curves`). ``smoothing``: EMA weight in [0, 1) (raw values drawn
    faintly behind the smoothed line). ``log_scale``: logarithmic y axes (symmetric-log with a linear
    range of +-1 where a panel has values <= 0, e.g. negative-SI-SDR losses). ``x_axis``: ``epoch``,
    ``step`` or ``time``. ``labels``: legend text per model (e.g. with its diagnosis). Returns the table.
    """
    table = curve_table(curves, smoothing=smoothing, x_axis=x_axis)
    models = list(dict.fromkeys(curves["model"]))
    colors = _system_colors(models)
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig = new_figure(4.0 * ncols, 3.4 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    xs = table["x"].to_numpy(float)
    xs = xs[np.isfinite(xs)]
    lo, hi = (float(xs.min()), float(xs.max())) if xs.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    for ax, metric in zip(axes, metrics, strict=False):
        ax.set_xlim(lo - pad, hi + pad)  # one x range for every panel (metrics scored every k epochs line up)
        sub = table[table["metric"] == metric]
        for name in models:
            c = sub[sub["model"] == name]
            if c.empty:
                continue
            label = (labels or {}).get(name, name)
            marker = "o" if len(c) < 30 else None
            if smoothing > 0:
                ax.plot(c["x"], c["value"], color=colors[name], alpha=0.25, lw=1)
            ax.plot(c["x"], c["smoothed"], marker=marker, ms=3, color=colors[name], label=label)
        if sub.empty:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="0.5")
        elif log_scale:
            values = sub["value"].to_numpy(float)
            if np.all(values[np.isfinite(values)] > 0):
                ax.set_yscale("log")
            else:
                ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(_CURVE_LABELS.get(metric, metric))
        ax.set_xlabel(X_AXES[x_axis][1])
        if x_axis != "time":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    handles, names = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab, strict=True):
            if ll not in names:
                handles.append(hh)
                names.append(ll)
    if handles:
        fig.legend(handles, names, fontsize="small", loc="outside lower center", ncols=min(4, len(names)))
    if smoothing > 0:
        fig.suptitle(f"EMA smoothing {smoothing:g} (raw values faint)", fontsize="small")
    save_figure(fig, path, data=table)
    return table


# ------------------------------------------------------------------------------ parallel coordinates
# Parameters that describe plumbing, not the model or its training (never plotted as axes).
_EXCLUDE = re.compile(
    r"(url|path|_dir|dir$|root|seed|num_workers|predict_split|max_items|_instantiator|num_val_samples_to_log"
    r"|sample_rate|ckpt|logger|enable_|callbacks|devices|accelerator|precision|strategy|num_nodes|^mlflow"
    r"|class_path)",  # the architecture is the `arch` column
    re.IGNORECASE,
)
_PREFERRED = (
    "arch",
    "optimizer.lr",
    "optimizer.weight_decay",
    "loss",
    "batch_size",
    "segment_seconds",
    "snr_range",
    "lr_scheduler.patience",
    "lr_scheduler.factor",
)


def hparam_axes(runs: pd.DataFrame, objective_col: str, max_axes: int = 10) -> list[str]:
    """Parameter columns worth plotting: plumbing excluded, varying ones first, at most ``max_axes``.

    ``runs`` is a table like :func:`se_lib.tracking.history.experiment_runs` returns. ``arch``
    comes first when several architectures are present; then preferred training parameters (lr,
    weight decay, loss, batch size, ...) that vary; then other varying columns by how many runs set
    them. When nothing varies the preferred columns present are returned.
    """
    skip = {"run_id", "run_name", objective_col, "epochs"}
    candidates = [c for c in runs.columns if c not in skip and not _EXCLUDE.search(c)]

    def varies(c: str) -> bool:
        return runs[c].astype(str).nunique(dropna=False) > 1

    varying = [c for c in candidates if varies(c)]
    preferred = [c for c in _PREFERRED if c in candidates]
    ordered = [c for c in preferred if c in varying]
    rest = sorted((c for c in varying if c not in ordered), key=lambda c: (-int(runs[c].notna().sum()), c))
    chosen = (ordered + rest) if varying else preferred
    return chosen[:max_axes]


def _axis_values(col: pd.Series) -> tuple[np.ndarray, list[float], list[str]]:
    """Scale one column to [0, 1]; missing -> -0.12. Returns positions, tick positions, tick labels."""
    numeric = pd.to_numeric(col, errors="coerce")
    missing = col.isna().to_numpy()
    if (numeric.notna() | col.isna()).all():  # numeric axis
        v = numeric.to_numpy(float)
        finite = v[np.isfinite(v)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        log = finite.size > 0 and lo > 0 and hi / lo >= 100  # e.g. learning rates
        f = (lambda x: np.log10(x)) if log else (lambda x: x)
        span = f(hi) - f(lo)
        pos = np.where(np.isfinite(v), (f(np.where(np.isfinite(v), v, lo)) - f(lo)) / span if span else 0.5, -0.12)
        uniq = np.unique(finite)
        if span and uniq.size <= 6:  # few distinct values: label each of them
            ticks = [float((f(u) - f(lo)) / span) for u in uniq]
            labels = [f"{u:.3g}" for u in uniq]
        else:
            ticks = [0.0, 1.0] if span else [0.5]
            labels = [f"{lo:.3g}", f"{hi:.3g}"] if span else [f"{lo:.3g}"]
    else:  # categorical axis
        cats = sorted({str(x) for x in col[~col.isna()]})
        where = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
        pos = np.array([where[str(x)] if not m else -0.12 for x, m in zip(col, missing, strict=True)])
        ticks, labels = [where[c] for c in cats], cats
    if missing.any():
        ticks, labels = ticks + [-0.12], labels + ["n/a"]
    return pos, ticks, labels


def plot_parallel_coordinates(
    table: pd.DataFrame,
    objective: str,
    path: str | os.PathLike,
    *,
    label: str | None = None,
    axes: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """One line per row of ``table`` over ``axes`` (default: every column but ``objective``/``label``),
    then the ``objective`` axis; lines coloured by ``objective``. ``label`` names runs in the legend."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    if objective not in table.columns:
        raise ValueError(f"parallel coordinates: objective column {objective!r} missing")
    if table.empty:
        raise ValueError("parallel coordinates: no runs to plot")
    cols = list(axes) if axes is not None else [c for c in table.columns if c not in (objective, label)]
    cols.append(objective)
    placed = [_axis_values(table[c]) for c in cols]
    obj = pd.to_numeric(table[objective], errors="coerce").to_numpy(float)
    finite = obj[np.isfinite(obj)]
    norm = Normalize(float(finite.min()) if finite.size else 0.0, float(finite.max()) if finite.size else 1.0)
    cmap = colormaps["viridis"]
    fig = new_figure(max(6.0, 1.25 * len(cols) + 2.0), 4.6)
    ax = fig.add_subplot()
    x = np.arange(len(cols))
    order = np.argsort(np.nan_to_num(obj, nan=-np.inf))  # best runs drawn last (on top)
    for i in order:
        y = [p[0][i] for p in placed]
        color = cmap(norm(obj[i])) if np.isfinite(obj[i]) else (0.6, 0.6, 0.6, 1.0)
        name = str(table[label].iloc[i]) if label else None
        ax.plot(x, y, color=color, lw=1.8, alpha=0.9, marker="o", ms=3)
        if name:
            ax.annotate(
                name, (x[-1], y[-1]), xytext=(6, 0), textcoords="offset points", fontsize=7, va="center", color=color
            )
    for xi, (_, ticks, labels) in zip(x, placed, strict=True):
        ax.axvline(xi, color="0.3", lw=0.8)
        for t, lab in zip(ticks, labels, strict=True):
            ax.text(xi - 0.04, t, lab if len(lab) <= 18 else lab[:17] + "…", ha="right", va="center", fontsize=7)
    ax.set_xticks(x, [c if len(c) <= 24 else "…" + c[-23:] for c in cols], rotation=30, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.2, 1.08)
    ax.set_xlim(-0.6, len(cols) - 0.4)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    from matplotlib.cm import ScalarMappable

    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=objective, shrink=0.85)
    ax.set_title(title or f"Hyper-parameters against {objective} ({len(table)} runs)")
    shown = ([label] if label else []) + [c for c in cols if c != label]
    save_figure(fig, path, data=table[list(dict.fromkeys(shown))])


# ---------------------------------------------------------------------------- spectrogram examples
def select_examples(
    per_file: pd.DataFrame, n: int, by: Sequence[str] = ("snr_db", "sid", "nid1", "nid2", "rid")
) -> pd.DataFrame:
    """``n`` rows spread over the range of ``by``'s first column (default the input SNR: lowest, ..., highest),
    in that order; ties by the next columns of ``by`` (those present)."""
    if n < 1 or per_file.empty:
        return per_file.iloc[:0]
    keys = [c for c in by if c in per_file.columns]
    ordered = per_file.sort_values(keys, kind="mergesort").reset_index(drop=True)
    if n >= len(ordered):
        return ordered
    idx = np.unique(np.round(np.linspace(0, len(ordered) - 1, n)).astype(int))
    return ordered.iloc[idx].reset_index(drop=True)
