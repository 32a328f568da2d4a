"""Git provenance of the working tree: commit, branch, dirty flag and the diff that makes it dirty.

"Dirty" means what ``git status`` reports: a tracked file changed (staged or not) or a file neither
tracked nor ignored. Everything the workflow writes (results/, logs/, the MLflow store and its lock and
journal files, .snakemake/, ...) is ignored by ``.gitignore``, so a run from a clean checkout stays
clean (tests/test_lineage.py).

One tracked file is written by the tools themselves and is left out of the flag: ``dvc.lock``
(:data:`TOOL_WRITTEN`). ``dvc repro`` rewrites it after every stage it runs, so counting it would tag
every later stage of the same ``dvc repro`` dirty although no code, config or data description changed;
it records output hashes, which the runs carry anyway (DB digest, checkpoints). Its state is still
visible: :attr:`GitInfo.tool_files` lists it and runs get the tag ``se.git.dvc_lock_modified``.
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
    tool_files: tuple[str, ...] = ()  # changed files the tools write (TOOL_WRITTEN), not counted as dirty

    def tags(self) -> dict[str, str]:
        return {
            "mlflow.source.git.commit": self.commit,
            "mlflow.source.git.branch": self.branch,
            "se.git.dirty": str(self.dirty).lower(),
            "se.git.dvc_lock_modified": str(bool(self.tool_files)).lower(),
        }


# Tracked files that the tools rewrite during a run (see the module docstring); never make the tree dirty.
TOOL_WRITTEN = frozenset({"dvc.lock"})


def _status_path(line: str) -> str:
    """The path of one ``git status --porcelain`` line (the new name of a rename)."""
    path = line[3:]
    return path.split(" -> ")[-1].strip('"')


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
    lines = [line for line in status.splitlines() if line.strip()]
    tool_files = tuple(line for line in lines if _status_path(line) in TOOL_WRITTEN)
    files = tuple(line for line in lines if _status_path(line) not in TOOL_WRITTEN)
    diff = ""
    if files:
        excluded = [f":(exclude){p}" for p in sorted(TOOL_WRITTEN)]
        diff = _git(["diff", "HEAD", "--no-color", "--", ".", *excluded], repo)
        untracked = [line[3:] for line in files if line.startswith("??")]
        if untracked:
            diff += "\n# untracked files:\n" + "\n".join(f"#   {p}" for p in untracked) + "\n"
    return GitInfo(commit, branch, bool(files), diff, files, tool_files)


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
