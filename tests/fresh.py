"""Run code in a fresh interpreter and see which modules it imported (tests of what an entry point loads).

:func:`modules_after` is the one way the tests check that a command or job starts without heavy packages
(Lightning, MLflow, matplotlib): in a subprocess, so nothing the test session imported counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_MARK = "MODULES-LOADED "


def modules_after(code: str, watch: Sequence[str], *, timeout: float = 300) -> tuple[str, list[str]]:
    """Run ``code`` with a new Python from the repository root; returns its stdout and the modules of ``watch``
    it had imported at its end (in ``watch``'s order). A non-zero exit fails the calling test."""
    watched = f"[m for m in {tuple(watch)!r} if m in _sys.modules]"
    report = f"\nimport json as _json, sys as _sys\nprint({_MARK!r} + _json.dumps({watched}))\n"
    cmd = [sys.executable, "-c", code + report]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, _, last = proc.stdout.rstrip("\n").rpartition("\n")
    assert last.startswith(_MARK), proc.stdout[-3000:]
    return out, json.loads(last[len(_MARK) :])
