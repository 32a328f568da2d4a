"""Git provenance of the working tree: commit, branch, dirty flag and the diff that makes it dirty.

"Dirty" means what ``git status`` reports: a tracked file changed (staged or not) or a file neither
tracked nor ignored. Everything the workflow writes (results/, logs/, the MLflow store and its lock and
journal files, .snakemake/, ...) is ignored by ``.gitignore``, so a run from a clean checkout stays
clean (tests/test_lineage.py).
"""

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
    files: tuple[str, ...] = ()  # what makes the tree dirty: ``git status --porcelain`` lines

    def tags(self) -> dict[str, str]:
        return {
            "mlflow.source.git.commit": self.commit,
            "mlflow.source.git.branch": self.branch,
            "se.git.dirty": str(self.dirty).lower(),
        }


class DirtyTreeError(RuntimeError):
    """The working tree is not clean where a clean one is required (``require_clean_git``)."""


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
        return GitInfo("unknown", "unknown", True, "", (f"{repo} is not a git checkout",))
    try:
        branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], repo).strip()
    except RuntimeError:
        branch = "unknown"
    status = _git(["status", "--porcelain", "--untracked-files=normal"], repo)
    files = tuple(line for line in status.splitlines() if line.strip())
    diff = ""
    if files:
        diff = _git(["diff", "HEAD", "--no-color"], repo)
        untracked = [line[3:] for line in files if line.startswith("??")]
        if untracked:
            diff += "\n# untracked files:\n" + "\n".join(f"#   {p}" for p in untracked) + "\n"
    return GitInfo(commit, branch, bool(files), diff, files)


def require_clean(repo: str | Path = REPO_ROOT, what: str = "require_clean_git: true") -> GitInfo:
    """Raise :class:`DirtyTreeError` naming the dirty files unless the checkout at ``repo`` is clean."""
    info = git_info(repo)
    if info.dirty:
        shown = "\n".join(f"  {line}" for line in info.files[:50])
        more = f"\n  ... and {len(info.files) - 50} more" if len(info.files) > 50 else ""
        raise DirtyTreeError(
            f"{what}: the git working tree {Path(repo).resolve()} is not clean; commit, stash or ignore "
            f"these files first (or set require_clean_git: false):\n{shown}{more}"
        )
    return info
