"""Static checks: ruff (rules E, F, I, UP, B from pyproject.toml) and ruff's formatter over every Python
file of the project, snakefmt over the rule files, and the Snakemake linter on the workflow -- the
same checks as `make lint` and the pre-commit hooks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY_TARGETS = ["se_lib", "workflow_scripts", "tests", "bench", "main.py"]
SMK_TARGETS = ["Snakefile", "rules"]


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed in the project environment (uv sync)")
    return found


def _run(*cmd: str, timeout: int = 300) -> str:
    proc = subprocess.run(list(cmd), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out


def test_makefile_lint_targets_match_these_tests():
    text = (ROOT / "Makefile").read_text()
    assert f"LINT_PY := {' '.join(PY_TARGETS)}" in text
    assert f"LINT_SMK := {' '.join(SMK_TARGETS)}" in text


def test_ruff_rules_pass():
    _run(_tool("ruff"), "check", "--no-cache", *PY_TARGETS)


def test_ruff_format_is_applied():
    _run(_tool("ruff"), "format", "--check", "--no-cache", *PY_TARGETS)


def test_snakefmt_is_applied():
    _run(_tool("snakefmt"), "--check", *SMK_TARGETS)


def test_snakemake_lint_is_clean():
    out = _run(_tool("snakemake"), "--lint", "--directory", str(ROOT))
    assert "Congratulations, your workflow is in a good condition" in out, out


def test_gitignore_lines_are_whole_patterns():
    """git reads `data/   # comment` as one pattern with the comment in it (ignoring nothing): comments go on
    lines of their own; the folders users fill by hand (public corpora, their own recordings) are ignored, the
    code is not."""
    lines = (ROOT / ".gitignore").read_text().splitlines()
    inline = [line for line in lines if "#" in line and not line.lstrip().startswith("#")]
    assert not inline, f".gitignore: a comment after a pattern makes it match nothing: {inline}"
    out = _run("git", "check-ignore", "--no-index", "data/corpus/a.wav", "scratch/enhanced.wav", "results/x")
    assert out.split() == ["data/corpus/a.wav", "scratch/enhanced.wav", "results/x"]
    # ... and nothing of the code: se_lib/data/ is a package, not a corpus folder (patterns anchored at the root)
    code = [str(p.relative_to(ROOT)) for p in (ROOT / "se_lib").rglob("*.py")] + ["se_lib/data/new_module.py"]
    proc = subprocess.run(["git", "check-ignore", "--no-index", *code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and not proc.stdout, f"ignored by .gitignore: {proc.stdout.split()}"
