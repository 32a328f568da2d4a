"""Learning-curve diagnosis of a training run: converging, not learning, diverging or overfitting.

:func:`diagnose` reads a run's per-epoch training and validation losses (lower is better; the
learning curves :func:`se_lib.tracking.history.learning_curves` reads from MLflow) and returns a
:class:`Diagnosis` with the label, the usual action and the numbers behind it. The report rule of the
learning curves shows it (``diagnosis.tsv`` / ``.csv`` and the curves' titles) and sets it on the run
as the tag ``se.diagnosis`` (``se.diagnosis.action`` holds the action).

Rules, checked in this order ("start" is the first epoch, "end" the mean of the last two; a change
counts when it exceeds the tolerance ``tol = max(rel_tol * scale, noise_factor * noise)`` with
``scale = max(|train start|, |val start|, 1)`` and ``noise`` the median absolute second difference of
the curves, which a straight trend does not inflate):

* **diverging** -- a loss became non-finite, or the training loss rises (end > start + tol), or the
  validation loss rises while the training loss does not fall. Action: lower the learning rate about
  tenfold or clip gradients.
* **overfitting** -- the training loss falls (end < start - tol) while the validation loss has risen
  since its minimum (end > min + tol, the minimum before the last epoch). Action: add regularisation
  or augmentation, or stop earlier (early-stopping patience).
* **not learning** -- neither loss moved by more than ``tol``. Action: raise the learning rate or check
  the input normalisation.
* **converging** -- otherwise (a loss falls, validation does not rise). Action: none; more epochs may help.
* **undetermined** -- fewer than ``min_epochs`` epochs (a smoke run): no judgement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = ["ACTIONS", "LABELS", "Diagnosis", "diagnose", "diagnose_curves", "diagnosis_html"]

LABELS = ("converging", "not learning", "diverging", "overfitting", "undetermined")
ACTIONS = {
    "converging": "none needed; more epochs may still help",
    "not learning": "raise the learning rate, or check the input normalisation",
    "diverging": "lower the learning rate about tenfold, or clip gradients",
    "overfitting": "add regularisation or augmentation, or stop earlier",
    "undetermined": "train for more epochs to judge the curves",
}


@dataclass(frozen=True)
class Diagnosis:
    label: str
    action: str
    reason: str
    epochs: int
    tolerance: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _finite_array(values: Sequence[float] | None) -> np.ndarray:
    return np.asarray([] if values is None else list(values), dtype=np.float64)


def _noise(*curves: np.ndarray) -> float:
    second = [np.abs(np.diff(c, 2)) for c in curves if c.size >= 3]
    return float(np.median(np.concatenate(second))) if second else 0.0


def _end(c: np.ndarray) -> float:
    return float(c[-2:].mean())


def diagnose(
    train: Sequence[float],
    val: Sequence[float] | None = None,
    *,
    min_epochs: int = 3,
    rel_tol: float = 0.02,
    noise_factor: float = 2.0,
) -> Diagnosis:
    """Diagnose per-epoch ``train`` (and ``val``) losses; see the module docstring for the rules."""
    tr, va = _finite_array(train), _finite_array(val)
    n = max(tr.size, va.size)

    def result(label: str, reason: str, tol: float = math.nan) -> Diagnosis:
        return Diagnosis(label, ACTIONS[label], reason, n, tol)

    bad = [name for name, c in (("training", tr), ("validation", va)) if c.size and not np.isfinite(c).all()]
    if bad:
        return result("diverging", f"{' and '.join(bad)} loss became non-finite")
    if tr.size < min_epochs:
        return result("undetermined", f"{tr.size} epoch(s) of training loss; at least {min_epochs} needed")
    has_val = va.size >= min_epochs
    starts = [abs(tr[0])] + ([abs(va[0])] if has_val else [])
    scale = max(*starts, 1.0)
    tol = max(rel_tol * scale, noise_factor * _noise(tr, *([va] if has_val else [])))
    d_train = _end(tr) - tr[0]
    d_val = _end(va) - va[0] if has_val else 0.0
    fmt = f"train {tr[0]:.3g} -> {_end(tr):.3g}" + (f", val {va[0]:.3g} -> {_end(va):.3g}" if has_val else "")
    if d_train > tol:
        return result("diverging", f"training loss rises ({fmt}; tolerance {tol:.3g})", tol)
    if has_val and d_val > tol and d_train >= -tol:
        return result("diverging", f"validation loss rises while training loss does not fall ({fmt})", tol)
    if has_val and d_train < -tol:
        best = int(np.argmin(va))
        rise = _end(va) - float(va[best])
        if best < va.size - 1 and rise > tol and _end(tr) < tr[best] - tol / 2:
            return result(
                "overfitting",
                f"training loss falls while validation loss rose by {rise:.3g} since epoch {best} ({fmt})",
                tol,
            )
    if abs(d_train) <= tol and abs(d_val) <= tol:
        return result("not learning", f"no loss moved by more than {tol:.3g} ({fmt})", tol)
    return result("converging", f"loss falls ({fmt})", tol)


def diagnose_curves(
    curves: pd.DataFrame, train_metric: str = "train_loss_epoch", val_metric: str = "val_loss_epoch", **kwargs
) -> pd.DataFrame:
    """One row per ``(model, run_id)`` of a learning-curves table (columns ``model, run_id, metric, epoch,
    value``): ``model, run_id, diagnosis, action, reason, epochs``. ``kwargs`` go to :func:`diagnose`."""
    rows = []
    for (model, run_id), runs in curves.groupby(["model", "run_id"], sort=False):

        def series(metric: str, runs: pd.DataFrame = runs) -> list[float]:
            c = runs[runs["metric"] == metric].sort_values("epoch").drop_duplicates("epoch", keep="last")
            return c["value"].astype(float).tolist()

        d = diagnose(series(train_metric), series(val_metric) or None, **kwargs)
        rows.append(
            {
                "model": model,
                "run_id": run_id,
                "diagnosis": d.label,
                "action": d.action,
                "reason": d.reason,
                "epochs": d.epochs,
            }
        )
    return pd.DataFrame(rows, columns=["model", "run_id", "diagnosis", "action", "reason", "epochs"])


def diagnosis_html(table: pd.DataFrame, caption: str = "Learning-curve diagnosis per training run") -> str:
    """Standalone HTML page of :func:`diagnose_curves`'s table (what the report shows)."""
    import html

    rows = "\n".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in ("model", "diagnosis", "action", "reason", "epochs"))
        + f"<td><code>{html.escape(str(r['run_id']))}</code></td></tr>"
        for _, r in table.iterrows()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(caption)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #1e293b; }}
table {{ border-collapse: collapse; font-size: 0.9em; max-width: 100%; }}
caption {{ caption-side: top; font-weight: 600; font-size: 1.1em; text-align: left; padding-bottom: 0.5em; }}
th, td {{ border-bottom: 1px solid #cbd5e1; padding: 0.35em 0.7em; text-align: left; vertical-align: top; }}
thead th {{ background: #f1f5f9; }}
code {{ font-size: 0.85em; }}
</style></head>
<body>
<table id="diagnosis">
<caption>{html.escape(caption)}</caption>
<thead><tr><th>model</th><th>diagnosis</th><th>usual action</th><th>why</th><th>epochs</th>
<th>MLflow run</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p>From the per-epoch training and validation losses in MLflow (se_lib/report/diagnosis.py); also set as the
tag <code>se.diagnosis</code> on each run.</p>
</body></html>
"""
