"""Git provenance of the working tree: commit, branch, dirty flag and the diff that makes it dirty."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from se_lib.config import REPO_ROOT


@dataclass(frozen=True)
class GitInfo:
    commit: str
    branch: str
    dirty: bool
    diff: str

    def tags(self) -> dict[str, str]:
        return {
            "mlflow.source.git.commit": self.commit,
            "mlflow.source.git.branch": self.branch,
            "se.git.dirty": str(self.dirty).lower(),
        }


def _git(args: list[str], cwd: Path) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"git {' '.join(args)} failed")
    return out.stdout


def git_info(repo: str | Path = REPO_ROOT) -> GitInfo:
    """Commit, branch, dirty flag and ``git diff HEAD`` (tracked files) plus untracked file names.

    Outside a git checkout (e.g. an exported tarball) returns commit ``unknown`` and dirty ``True`` so the
    provenance gap is visible in MLflow rather than silently missing.
    """
    repo = Path(repo)
    try:
        commit = _git(["rev-parse", "HEAD"], repo).strip()
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired):
        return GitInfo("unknown", "unknown", True, "")
    try:
        branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], repo).strip()
    except RuntimeError:
        branch = "unknown"
    status = _git(["status", "--porcelain", "--untracked-files=normal"], repo)
    dirty = bool(status.strip())
    diff = ""
    if dirty:
        diff = _git(["diff", "HEAD", "--no-color"], repo)
        untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
        if untracked:
            diff += "\n# untracked files:\n" + "\n".join(f"#   {p}" for p in untracked) + "\n"
    return GitInfo(commit, branch, dirty, diff)
