"""Prediction/mixture file names and their inverse.

One module owns both directions of the file-name contract (``docs/contracts.md``)::

    sid_{sid}_nids_{nid1}_{nid2}_rid_{rid}_snr_{snr}dB_{kind}.wav

IDs are tokens matching ``[A-Za-z0-9-]+`` (no underscores), so the name splits unambiguously on
``_``. The one exception is the ``sid`` of a recorded mixture (a public corpus's file): it keeps the
source file's stem, underscores included (``p232_001``, ``F01_22GC010A_BUS-real``), as tokens joined
by ``_``, none of them ``nids``, so ``_nids_`` still ends it unambiguously (:data:`SID_PATTERN`,
:func:`check_sid`). The SNR is printed with at most one decimal (the DB stores it rounded to 0.1 dB),
without a trailing ``.0`` (``5``, ``-2.5``, ``0``). ``kind`` is ``noisy`` (all mic channels), ``enhanced`` or
``target`` (mono, reference mic). :func:`se_lib.data.db.find_mixture` maps a name back to its DB
row; this module imports no other module of the project.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

ID_PATTERN = r"[A-Za-z0-9-]+"
ID_RE = re.compile(rf"^{ID_PATTERN}$")
SID_PATTERN = rf"{ID_PATTERN}(?:_{ID_PATTERN})*"
SID_RE = re.compile(rf"^{SID_PATTERN}$")
KINDS = ("noisy", "enhanced", "target")
_SNR_PATTERN = r"-?\d+(?:\.\d)?"
_NAME_RE = re.compile(
    rf"^sid_(?P<sid>{SID_PATTERN}?)_nids_(?P<nid1>{ID_PATTERN})_(?P<nid2>{ID_PATTERN})"
    rf"_rid_(?P<rid>{ID_PATTERN})_snr_(?P<snr>{_SNR_PATTERN})dB_(?P<kind>{'|'.join(KINDS)})\.wav$"
)


def snr_tenths(x: float) -> int:
    """SNR in integer tenths of a dB (the exact key the DB and the file names agree on)."""
    if not math.isfinite(float(x)):
        raise ValueError(f"SNR must be finite, got {x!r}")
    return round(float(x) * 10.0)


def round_snr(x: float) -> float:
    """Round an SNR to 0.1 dB the way the DB stores it (``-0.0`` becomes ``0.0``)."""
    return snr_tenths(x) / 10.0 + 0.0


def format_snr(x: float) -> str:
    """Compact SNR text: ``5``, ``-2.5``, ``0`` (rounded to 0.1 dB first)."""
    t = snr_tenths(x)
    sign = "-" if t < 0 else ""
    whole, tenth = divmod(abs(t), 10)
    return f"{sign}{whole}" if tenth == 0 else f"{sign}{whole}.{tenth}"


def check_id(value: Any, field: str) -> str:
    """Return ``value`` as str if it is a valid ID token, else raise ValueError naming ``field``."""
    text = str(value)
    if not ID_RE.match(text):
        raise ValueError(f"{field} {text!r} is not a file-name-safe ID (allowed: [A-Za-z0-9-]+)")
    return text


def check_sid(value: Any, field: str = "sid") -> str:
    """``value`` as str if it is a valid speech id (:data:`SID_PATTERN`, no ``nids`` token), else ValueError."""
    text = str(value)
    if not SID_RE.match(text) or "nids" in text.split("_"):
        raise ValueError(
            f"{field} {text!r} is not a file-name-safe speech ID "
            "(allowed: [A-Za-z0-9-]+ tokens joined by '_', none of them 'nids')"
        )
    return text


def _field(row: Any, key: str) -> Any:
    if isinstance(row, Mapping):
        if key not in row:
            raise KeyError(f"mixture row lacks {key!r}")
        return row[key]
    return getattr(row, key)


def mixture_filename(row: Any, kind: str) -> str:
    """File name of ``row`` (a mapping or an object with sid/nid1/nid2/rid/snr_db) for ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    sid = check_sid(_field(row, "sid"))
    nid1, nid2, rid = (check_id(_field(row, k), k) for k in ("nid1", "nid2", "rid"))
    snr = format_snr(float(_field(row, "snr_db")))
    return f"sid_{sid}_nids_{nid1}_{nid2}_rid_{rid}_snr_{snr}dB_{kind}.wav"


def parse_mixture_filename(name: str | os.PathLike) -> dict[str, Any]:
    """Inverse of :func:`mixture_filename`; accepts a bare name or a path.

    Returns ``dict(sid, nid1, nid2, rid, snr_db, kind)``; raises ValueError naming the file when it
    does not follow the pattern.
    """
    base = os.path.basename(os.fspath(name))
    m = _NAME_RE.match(base)
    if not m:
        raise ValueError(
            f"{base!r} is not a mixture file name "
            "(expected sid_<sid>_nids_<nid1>_<nid2>_rid_<rid>_snr_<snr>dB_<noisy|enhanced|target>.wav)"
        )
    out: dict[str, Any] = {k: m.group(k) for k in ("sid", "nid1", "nid2", "rid", "kind")}
    out["snr_db"] = round_snr(float(m.group("snr")))
    return out
