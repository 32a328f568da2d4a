"""Published results as cited data: the rows a comparison table shows under our own for a test set.

Each file ``config/published/<test_set>.yaml`` holds the figures papers report on one public test set,
every row with its paper, its table and the PESQ implementation behind its numbers::

    test_set: voicebank_demand
    rows:
      - system: Noisy input
        metrics: {pesq: 1.97, csig: 3.35, cbak: 2.44, covl: 2.63, ssnr: 1.68}
        paper: "Macartney & Weyde, Improved Speech Enhancement with the Wave-U-Net, arXiv:1811.11307, 2018"
        table: "Table 1"
        pesq_implementation: itu_p862_2
        note: "..."            # optional

These rows were not run here; the report marks them :data:`PUBLISHED_LABEL`. :func:`load_published`
validates a file (metric names, numbers and their ranges, citation, PESQ implementation) and names the
file, the row and the key in every error; :func:`published_for` finds a test set's file;
:func:`published_frame` turns a table into rows shaped like :func:`se_lib.report.tables.comparison_table`'s.

Light: PyYAML and pandas only (no matplotlib, torch or mlflow).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

__all__ = [
    "METRIC_KEYS",
    "METRIC_ALIASES",
    "PESQ_IMPLEMENTATIONS",
    "PUBLISHED_DIR",
    "PUBLISHED_LABEL",
    "PublishedRow",
    "PublishedTable",
    "load_published",
    "published_for",
    "published_frame",
]

#: How the report marks a published row.
PUBLISHED_LABEL = "published, not run here"

#: The repository's folder of published results (``config/published``).
PUBLISHED_DIR = Path(__file__).resolve().parents[2] / "config" / "published"

#: Metric keys a published row may carry, with the range a value must lie in (inclusive). ``pesq`` is
#: wide-band PESQ (ITU-T P.862.2 MOS-LQO scale), ``pesq_nb`` narrow-band PESQ (raw P.862 or P.862.1
#: MOS-LQO, see the row's ``pesq_implementation``), ``stoi``/``estoi`` on 0..1 (not percent), ``si_sdr``
#: and ``ssnr`` (segmental SNR) in dB, the composite measures of Hu & Loizou and DNSMOS P.835 on 1..5.
METRIC_KEYS: dict[str, tuple[float, float]] = {
    "pesq": (-0.5, 4.65),
    "pesq_nb": (-0.5, 4.65),
    "si_sdr": (-100.0, 100.0),
    "stoi": (0.0, 1.0),
    "estoi": (0.0, 1.0),
    "csig": (1.0, 5.0),
    "cbak": (1.0, 5.0),
    "covl": (1.0, 5.0),
    "ssnr": (-20.0, 40.0),
    "dnsmos_sig": (1.0, 5.0),
    "dnsmos_bak": (1.0, 5.0),
    "dnsmos_ovrl": (1.0, 5.0),
}

#: Our metric names (:data:`se_lib.report.names.METRICS`) that a published key answers.
METRIC_ALIASES: dict[str, str] = {"pesq_wb": "pesq"}

#: What computed a row's PESQ (and the PESQ inside its CSIG/CBAK/COVL).
PESQ_IMPLEMENTATIONS: dict[str, str] = {
    "itu_p862_2": "ITU-T P.862.2 reference code, wide-band (MOS-LQO)",
    "matlab_composite": "Loizou's MATLAB composite.m / pesq.m (Hu & Loizou)",
    "pesq_package": "python `pesq` (ludlows, ITU reference C code), mode 'wb'",
    "pesq_package_nb": "python `pesq`, mode 'nb'",
    "unknown": "not stated by the paper",
}

#: Metrics whose value depends on the PESQ implementation (the composite measures contain PESQ).
_PESQ_BASED = ("pesq", "pesq_nb", "csig", "cbak", "covl")
_TOP_KEYS = ("test_set", "rows", "note")
_ROW_KEYS = ("system", "metrics", "paper", "table", "pesq_implementation", "note")


@dataclass(frozen=True)
class PublishedRow:
    """One system's figures as a paper reports them."""

    system: str
    metrics: Mapping[str, float]
    paper: str
    table: str
    pesq_implementation: str = "unknown"
    note: str | None = None

    @property
    def source(self) -> str:
        """``"<paper>, <table>"`` -- the citation shown beside the row."""
        return f"{self.paper}, {self.table}"


@dataclass(frozen=True)
class PublishedTable:
    """The published rows for one test set, in file order."""

    test_set: str
    rows: tuple[PublishedRow, ...]
    path: Path | None = None
    note: str | None = None
    systems: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "systems", tuple(r.system for r in self.rows))

    def row(self, system: str) -> PublishedRow:
        """The row of ``system`` (KeyError naming the systems present when absent)."""
        for r in self.rows:
            if r.system == system:
                return r
        raise KeyError(f"{self.test_set}: no published row {system!r}; rows: {list(self.systems)}")


def _text(value: Any, where: str, key: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        got = "missing" if value is None else f"{type(value).__name__} {value!r}"
        raise ValueError(f"{where}: {key} must be non-empty text ({got})")
    return value.strip()


def _metrics(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{where}: metrics must be a non-empty mapping of metric to number, got {value!r}")
    out: dict[str, float] = {}
    for key, v in value.items():
        if key not in METRIC_KEYS:
            raise ValueError(f"{where}: metrics.{key}: unknown metric; known: {', '.join(METRIC_KEYS)}")
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"{where}: metrics.{key}: not a number ({type(v).__name__} {v!r})")
        x = float(v)
        lo, hi = METRIC_KEYS[key]
        if not math.isfinite(x):
            raise ValueError(f"{where}: metrics.{key}: not a finite number ({v!r})")
        if not lo <= x <= hi:
            hint = " (give STOI as 0..1, not percent)" if key in ("stoi", "estoi") and x <= 100 else ""
            raise ValueError(f"{where}: metrics.{key}: {x:g} is outside {lo:g}..{hi:g}{hint}")
        out[key] = x
    return out


def _row(raw: Any, index: int, path: Path, seen: set[str]) -> PublishedRow:
    where = f"{path}: rows[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a row must be a mapping, got {type(raw).__name__}")
    system = _text(raw.get("system"), where, "system")
    where = f"{path}: rows[{index}] ({system})"
    unknown = sorted(str(k) for k in raw if k not in _ROW_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; a row has {', '.join(_ROW_KEYS)}")
    if system in seen:
        raise ValueError(f"{where}: system {system!r} appears twice")
    seen.add(system)
    metrics = _metrics(raw.get("metrics"), where)
    paper = _text(raw.get("paper"), where, "paper")
    table = _text(raw.get("table"), where, "table")
    impl = raw.get("pesq_implementation")
    if impl is None and any(k in metrics for k in _PESQ_BASED):
        raise ValueError(
            f"{where}: pesq_implementation is missing (the row has PESQ-based metrics); "
            f"one of {', '.join(PESQ_IMPLEMENTATIONS)}"
        )
    impl = "unknown" if impl is None else impl
    if impl not in PESQ_IMPLEMENTATIONS:
        raise ValueError(f"{where}: pesq_implementation {impl!r} is unknown; one of {', '.join(PESQ_IMPLEMENTATIONS)}")
    note = _text(raw.get("note"), where, "note", required=False)
    return PublishedRow(system, metrics, paper, table, impl, note)


def load_published(path: str | Path) -> PublishedTable:
    """Read and validate one published-results file.

    Raises FileNotFoundError when the file is absent and ValueError, naming the file and the row or key,
    when it is not valid YAML, lacks ``test_set``/``rows``, or a row has an unknown key or metric, a value
    that is not a number or lies outside the metric's range, no paper or table, or an unknown
    ``pesq_implementation`` (required on rows with PESQ, CSIG, CBAK or COVL).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"published results file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(doc, Mapping):
        raise ValueError(f"{path}: expected a mapping with test_set and rows, got {type(doc).__name__}")
    unknown = sorted(str(k) for k in doc if k not in _TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; expected {', '.join(_TOP_KEYS)}")
    test_set = _text(doc.get("test_set"), str(path), "test_set")
    rows = doc.get("rows")
    if not isinstance(rows, Sequence) or isinstance(rows, str) or not rows:
        raise ValueError(f"{path}: rows must be a non-empty list, got {rows!r}")
    seen: set[str] = set()
    parsed = tuple(_row(raw, i, path, seen) for i, raw in enumerate(rows))
    note = _text(doc.get("note"), str(path), "note", required=False)
    return PublishedTable(test_set=test_set, rows=parsed, path=path, note=note)


def _folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if folder.is_absolute() or folder.is_dir():
        return folder
    # a relative folder missing from the current directory is the repository's (e.g. config/published)
    return PUBLISHED_DIR.parents[1] / folder


def published_for(test_set: str, folder: str | Path = "config/published") -> PublishedTable | None:
    """The published rows for ``test_set`` (file ``<folder>/<test_set>.yaml``), or None when there is none.

    A relative ``folder`` is taken from the current directory when it exists there, else from the
    repository root. The file's own ``test_set`` must match its name (ValueError otherwise).
    """
    path = _folder(folder) / f"{test_set}.yaml"
    if not path.is_file():
        return None
    table = load_published(path)
    if table.test_set != test_set:
        raise ValueError(f"{path}: test_set is {table.test_set!r} but the file is named for {test_set!r}")
    return table


def published_frame(table: PublishedTable, metrics: Sequence[str], *, drop_empty: bool = False) -> pd.DataFrame:
    """One row per published system (file order), to append under our rows of a comparison table.

    Columns: ``system``, each of ``metrics`` in the order given (NaN where the paper reports none; our
    ``pesq_wb`` reads the published ``pesq``, see :data:`METRIC_ALIASES`), ``source`` (``"Paper, Table N"``)
    and ``pesq_implementation``. ``drop_empty`` leaves out the systems that report none of ``metrics``.
    """
    metrics = list(metrics)
    records = []
    for r in table.rows:
        if drop_empty and not any(METRIC_ALIASES.get(m, m) in r.metrics for m in metrics):
            continue
        rec: dict[str, Any] = {"system": r.system}
        for m in metrics:
            rec[m] = r.metrics.get(METRIC_ALIASES.get(m, m), math.nan)
        rec["source"] = r.source
        rec["pesq_implementation"] = r.pesq_implementation
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=["system", *metrics, "source", "pesq_implementation"])
    for m in metrics:
        frame[m] = frame[m].astype(float)
    return frame
