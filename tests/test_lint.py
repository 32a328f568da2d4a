"""Static checks that catch real defects (undefined names, unused or shadowed imports, syntax errors)
in every Python file of the project, and the Snakemake linter on the workflow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY_DIRS = ["se_lib", "workflow_scripts", "bench", "tests", "main.py"]


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed in the project environment (uv sync)")
    return found


def test_pyflakes_rules_pass():
    targets = [d for d in PY_DIRS if (ROOT / d).exists()]
    proc = subprocess.run(
        [_tool("ruff"), "check", "--no-cache", "--select", "F,E9", *targets], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakemake_lint_is_clean():
    proc = subprocess.run(
        [_tool("snakemake"), "--lint", "--directory", str(ROOT)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Congratulations, your workflow is in a good condition" in out, out
