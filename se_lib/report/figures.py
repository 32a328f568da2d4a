"""Matplotlib figures without pyplot state: a new Agg-backed ``Figure`` and its atomic PNG write.

Every figure of the report and of the training callbacks is made by :func:`new_figure` and written
by :func:`save_figure`, so plotting is safe in worker processes, training callbacks and tests. A
report figure passes the table it draws as ``data``: it is written beside the PNG as CSV
(:func:`figure_data_path`, ``<name>.png`` -> ``<name>.csv``), ready for a paper's own plotting.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["figure_data_path", "new_figure", "save_figure"]

if TYPE_CHECKING:
    import pandas as pd


def new_figure(width: float, height: float, dpi: int = 110) -> Figure:
    """A constrained-layout ``Figure`` of ``width`` x ``height`` inches on its own Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_data_path(path: str | os.PathLike) -> Path:
    """Where the data of the figure at ``path`` goes: the same name with ``.csv``."""
    return Path(path).with_suffix(".csv")


def save_figure(fig: Figure, path: str | os.PathLike, data: pd.DataFrame | None = None) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (parent folders created), and ``data`` (the values the
    figure shows) as CSV to :func:`figure_data_path` when given."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        from se_lib.io import write_text_atomic

        write_text_atomic(figure_data_path(p), data.to_csv(index=False, float_format="%.6g"))
    tmp = p.parent / f".{p.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
