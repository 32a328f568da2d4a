"""The model-comparison table: one row per system (noisy input baseline + every model).

Inputs are the scorer's summary TSVs (columns ``metric mean ci95 count nan_count``, one row per
metric; see :mod:`se_lib.metrics`) and the prediction statistics JSON written by
:class:`se_lib.train.prediction_writer.AudioPredictionWriter` (parameter count, real-time factor).
The 95 % confidence interval is the scorer's half-width of the interval for the mean over test
files (Student-t), reported as ``mean ± ci95``.

Metrics, all "higher is better": SI-SDR and its improvement over the noisy reference mic (Le Roux
et al., ICASSP 2019), wide-band PESQ (ITU-T P.862.2), STOI (Taal et al., TASLP 2011), ESTOI (Jensen
& Taal, TASLP 2016) and DNSMOS P.835 SIG/BAK/OVRL and P.808 (Reddy et al., ICASSP 2021/2022).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from se_lib.io import read_json_object
from se_lib.report.names import APPROX_METRICS, APPROX_NOTE, BASELINE, METRIC_LABELS, METRICS, TABLE_METRICS

__all__ = [
    "METRICS",
    "METRIC_LABELS",
    "BASELINE",
    "best_models",
    "comparison_table",
    "mean_ci95",
    "read_per_file",
    "read_stats",
    "read_summary",
    "table_html",
    "write_comparison",
]

SUMMARY_COLUMNS = ("metric", "mean", "ci95", "count", "nan_count")
# Per-file TSV columns identifying the mixture (the scorer may add more, e.g. the file name).
ID_COLUMNS = ("sid", "nid1", "nid2", "rid", "snr_db")


def _read_tsv(path: str | os.PathLike, required: Sequence[str], what: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {p} not found")
    try:
        df = pd.read_csv(p, sep="\t")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: unreadable {what} ({exc})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{p}: {what} lacks column(s) {missing} (has {list(df.columns)})")
    return df


def read_summary(path: str | os.PathLike) -> pd.DataFrame:
    """A scorer summary TSV indexed by metric (columns ``mean ci95 count nan_count``)."""
    df = _read_tsv(path, SUMMARY_COLUMNS, "score summary")
    if df["metric"].duplicated().any():
        raise ValueError(
            f"{path}: score summary lists metric(s) {sorted(df['metric'][df['metric'].duplicated()])} twice"
        )
    return df.set_index("metric")


def read_per_file(path: str | os.PathLike) -> pd.DataFrame:
    """A scorer per-file TSV (mixture ids, ``snr_db`` and one column per metric)."""
    df = _read_tsv(path, ("snr_db",), "per-file scores")
    if df.empty:
        raise ValueError(f"{path}: per-file scores hold no rows")
    return df


def read_stats(path: str | os.PathLike | None) -> dict[str, Any]:
    """Prediction statistics JSON (``predict_stats.json``); ``{}`` for ``None``."""
    if path is None:
        return {}
    return read_json_object(path, "prediction statistics", hint="run the predict rule first")


def mean_ci95(values: Any) -> tuple[float, float, int]:
    """Mean, half-width of the Student-t 95 % interval of the mean, and count of finite values."""
    from scipy import stats as sstats

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = float(x.mean())
    if n == 1:
        return mean, float("nan"), 1
    half = float(sstats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, half, n


def comparison_table(
    summaries: Mapping[str, pd.DataFrame],
    stats: Mapping[str, Mapping[str, Any]] | None = None,
    metrics: Sequence[str] = TABLE_METRICS,
) -> pd.DataFrame:
    """One row per system (``summaries`` order, the baseline first if present).

    Columns: ``system``, ``n_files``, ``<metric>`` (mean) and ``<metric>_ci95`` per metric,
    ``parameters``, ``real_time_factor`` (inference seconds per second of audio) and ``device``.
    Metrics a summary lacks are NaN; metrics no system has are dropped.
    """
    stats = stats or {}
    names = list(summaries)
    if BASELINE in names:
        names.remove(BASELINE)
        names.insert(0, BASELINE)
    rows = []
    for name in names:
        summary = summaries[name]
        row: dict[str, Any] = {"system": name}
        counts = summary["count"] if "count" in summary else pd.Series(dtype=float)
        row["n_files"] = int(counts.max()) if len(counts) else 0
        for m in metrics:
            if m in summary.index:
                row[m] = float(summary.at[m, "mean"])
                row[f"{m}_ci95"] = float(summary.at[m, "ci95"])
            else:
                row[m] = row[f"{m}_ci95"] = float("nan")
        st = stats.get(name) or {}
        row["parameters"] = int(st["parameters"]) if st.get("parameters") is not None else pd.NA
        row["real_time_factor"] = (
            float(st["real_time_factor"]) if st.get("real_time_factor") is not None else float("nan")
        )
        row["device"] = st.get("device_name") or st.get("device") or ""
        rows.append(row)
    df = pd.DataFrame(rows)
    dropped = [m for m in metrics if df[m].isna().all()]
    df = df.drop(columns=[c for m in dropped for c in (m, f"{m}_ci95")])
    df["parameters"] = df["parameters"].astype("Int64")
    return df


def _fmt(x: float, digits: int) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _digits(metric: str) -> int:
    return (
        2 if metric in ("si_sdr", "si_sdri", "pesq_wb", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808") else 3
    )


def _params(n: Any) -> str:
    if n is None or n is pd.NA or (isinstance(n, float) and not np.isfinite(n)):
        return "–"
    n = int(n)
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def best_models(df: pd.DataFrame, metrics: Sequence[str]) -> dict[str, float]:
    """Per metric, the best model's value (higher is better) -- NaN where no model beats the noisy input
    (a "best" worse than doing nothing is not worth bolding, e.g. a negative SI-SDRi)."""
    models = df["system"] != BASELINE
    noisy = df.loc[~models]
    best = {}
    for m in metrics:
        top = df.loc[models, m].max() if models.any() else np.nan
        ref = float(noisy[m].iloc[0]) if len(noisy) else np.nan
        if m == "si_sdri" and not np.isfinite(ref):
            ref = 0.0  # the improvement of the noisy input over itself
        best[m] = top if np.isfinite(top) and (not np.isfinite(ref) or top > ref) else np.nan
    return best


def published_html(published: pd.DataFrame | None, metrics: Sequence[str]) -> str:
    """The rows papers report on this test set (:func:`se_lib.report.published.published_frame`), marked as not
    run here, each with its source and PESQ implementation: a ``<tbody>`` under ours (empty without any)."""
    if published is None or published.empty:
        return ""
    from se_lib.report.published import PUBLISHED_LABEL

    span = 2 + len(metrics) + 2
    rows = [f'<tr class="published-head"><th colspan="{span}">{html.escape(PUBLISHED_LABEL.capitalize())}</th></tr>']
    for _, r in published.iterrows():
        cells = [f'<th scope="row">{html.escape(str(r["system"]))}</th>', "<td></td>"]
        cells += [f"<td>{_fmt(r[m], _digits(m)) if np.isfinite(r[m]) else ''}</td>" for m in metrics]
        source = f"{r['source']}; PESQ: {r['pesq_implementation']}"
        cells.append(f'<td colspan="2" class="source">{html.escape(source)}</td>')
        rows.append('<tr class="published">' + "".join(cells) + "</tr>")
    return '<tbody class="published">\n' + "\n".join(rows) + "\n</tbody>"


def table_html(df: pd.DataFrame, caption: str, note: str = "", published: pd.DataFrame | None = None) -> str:
    """Standalone HTML page with the comparison table (best model per metric in bold where it beats the
    noisy input, :func:`best_models`), and under it the published rows of the test set, if any."""
    metrics = [m for m in TABLE_METRICS if m in df.columns]
    best = best_models(df, metrics)
    head = "".join(f"<th>{html.escape(METRIC_LABELS.get(m, m))}</th>" for m in metrics)
    body = []
    for _, r in df.iterrows():
        cells = [f'<th scope="row">{html.escape(str(r["system"]))}</th>', f"<td>{int(r['n_files'])}</td>"]
        for m in metrics:
            # the interval on its own line (CSS) keeps the table narrow; its text reads "mean ± ci"
            text = f'{_fmt(r[m], _digits(m))} <span class="ci">± {_fmt(r[f"{m}_ci95"], _digits(m))}</span>'
            is_best = r["system"] != BASELINE and np.isfinite(r[m]) and r[m] == best[m]
            cells.append(f'<td class="best">{text}</td>' if is_best else f"<td>{text}</td>")
        cells.append(f"<td>{_params(r['parameters'])}</td>")
        cells.append(f"<td>{_fmt(r['real_time_factor'], 4)}</td>")
        cls = ' class="baseline"' if r["system"] == BASELINE else ""
        body.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    if any(m in APPROX_METRICS for m in metrics):
        note = (note + " " if note else "") + APPROX_NOTE
    note_html = f"<p>{html.escape(note)}</p>" if note else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(caption)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #1e293b; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
caption {{ caption-side: top; font-weight: 600; font-size: 1.1em; text-align: left; padding-bottom: 0.5em; }}
th, td {{ border-bottom: 1px solid #cbd5e1; padding: 0.3em 0.5em; text-align: right; white-space: nowrap; }}
thead th {{ white-space: normal; vertical-align: bottom; max-width: 6em; }}
span.ci {{ display: block; font-size: 0.8em; color: #64748b; font-weight: 400; }}
th[scope=row], thead th:first-child {{ text-align: left; }}
thead th {{ background: #f1f5f9; }}
tr.baseline {{ color: #64748b; font-style: italic; }}
td.best {{ font-weight: 700; }}
tr.published {{ color: #475569; }}
tr.published-head th {{ text-align: left; background: #f8fafc; font-style: italic; }}
td.source {{ text-align: left; white-space: normal; font-size: 0.85em; }}
p {{ font-size: 0.85em; color: #475569; max-width: 60em; }}
</style></head>
<body>
<table id="comparison">
<caption>{html.escape(caption)}</caption>
<thead><tr><th>system</th><th>files</th>{head}<th>parameters</th><th>RTF</th></tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
{published_html(published, metrics)}
</table>
<p>Mean ± half-width of the 95 % confidence interval of the mean over test files. Bold: best model
per metric (higher is better for every metric), only where it beats the noisy input. RTF: inference
seconds per second of audio.</p>
{note_html}
</body></html>
"""


def write_comparison(
    summary_paths: Mapping[str, str | os.PathLike],
    stats_paths: Mapping[str, str | os.PathLike | None],
    out_tsv: str | os.PathLike,
    out_html: str | os.PathLike,
    *,
    split: str = "test",
    published: str | None = None,
    published_dir: str | os.PathLike = "config/published",
) -> pd.DataFrame:
    """Read the summaries and statistics, write the comparison TSV and HTML atomically; return the table (our rows).

    ``published``: the name of a file of ``published_dir`` (``config/published/<name>.yaml``) whose rows the HTML
    shows under ours and the TSV appends (``source`` column set), marked as not run here."""
    from se_lib.io import write_text_atomic

    summaries = {name: read_summary(p) for name, p in summary_paths.items()}
    stats = {name: read_stats(p) for name, p in stats_paths.items()}
    df = comparison_table(summaries, stats)
    devices = sorted({d for d in df["device"] if d})
    note = f"Inference device(s): {', '.join(devices)}." if devices else ""
    rows = None
    if published:
        from se_lib.report.published import published_for, published_frame

        table = published_for(published, published_dir)
        if table is None:
            raise FileNotFoundError(
                f"published results {published_dir}/{published}.yaml not found (test_sets.*.published)"
            )
        metrics = [m for m in METRICS if m in df.columns]
        rows = published_frame(table, metrics, drop_empty=True)
        note = (note + " " if note else "") + (
            "Published rows were not run here: papers' own numbers, each from the table cited, with the PESQ "
            "implementation it names (they differ: compare PESQ only across rows that used the same one)."
        )
    tsv = df if rows is None else pd.concat([df.assign(source=""), rows.assign(n_files=np.nan)], ignore_index=True)
    write_text_atomic(out_tsv, tsv.to_csv(sep="\t", index=False, float_format="%.6g"))
    write_text_atomic(out_html, table_html(df, f"Model comparison on the {split} split", note, rows))
    return df
