"""Which configuration produced the results a report shows, and whether the report is rendered with it.

``snakemake --report`` renders ``report/workflow.rst`` with the *current* invocation's config, while the
results on disk may come from another one (e.g. a run with ``--configfile config/tiny.yaml`` and a
report rendered without it). So:

* rule ``report_provenance`` writes ``results/report/provenance.json`` (:func:`provenance_record`): the
  config files, experiment and :func:`config_digest` of the run that produced the results, the
  mixture-DB digest and each model's training run (commit, run id);
* when the workflow is parsed, :func:`report_context` reads that file back and compares it with the
  current config; ``rules/report.smk`` puts the result under the config key :data:`CONTEXT_KEY`, the
  only way to reach the report template (Snakemake renders it with ``snakemake.config`` alone), and
  ``report/workflow.rst`` shows it (a warning when they differ).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CONTEXT_KEY", "config_digest", "report_context", "provenance_record", "shown_paths"]

#: Config key holding :func:`report_context` (keys starting with ``_`` are not part of the digest).
CONTEXT_KEY = "_report_provenance"


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 (16 hex digits) of the validated config (defaults filled), keys starting with ``_`` left out."""
    clean = {k: v for k, v in config.items() if not str(k).startswith("_")}
    text = json.dumps(clean, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def shown_paths(
    paths: Sequence[str | os.PathLike], root: str | os.PathLike = ".", overrides: Sequence[str | os.PathLike] = ()
) -> list[str]:
    """Config file paths as a reader knows them, in the order they apply: relative to ``root`` (the working
    directory) when inside; the ``overrides`` among ``paths`` (Snakemake's ``--configfile`` files, which
    ``workflow.configfiles`` lists first) after the others (the Snakefile's ``configfile:``)."""
    base = Path(root).resolve()
    later = {Path(p).resolve() for p in overrides}
    ordered = [p for p in paths if Path(p).resolve() not in later] + [p for p in paths if Path(p).resolve() in later]
    out = []
    for p in ordered:
        full = Path(p).resolve()
        out.append(str(full.relative_to(base)) if full.is_relative_to(base) else str(p))
    return out


def provenance_record(
    config: Mapping[str, Any],
    configfiles: Sequence[str],
    runs: Mapping[str, Mapping[str, Any]],
    db_digest: str,
) -> dict[str, Any]:
    """What ``provenance.json`` holds: ``configfiles``, ``experiment``, ``config_digest``, ``seed``,
    ``db_digest`` and per model ``commit`` / ``run_id`` / ``experiment`` (from its ``run.json``)."""
    return {
        "configfiles": list(configfiles),
        "experiment": str(config["experiment"]),
        "config_digest": config_digest(config),
        "seed": config.get("seed"),
        "db_digest": db_digest,
        "models": {
            model: {
                "commit": str(info.get("git_commit", "")),
                "run_id": str(info.get("run_id", "")),
                "experiment": str(info.get("experiment", "")),
            }
            for model, info in runs.items()
        },
    }


def report_context(config: Mapping[str, Any], configfiles: Sequence[str], path: str | os.PathLike) -> dict[str, Any]:
    """The current config's ``configfiles`` / ``experiment`` / ``config_digest``, the record at ``path``
    (``on_disk``, None when absent or unreadable) and ``matches`` (None without a record)."""
    on_disk = None
    try:
        on_disk = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    digest = config_digest(config)
    return {
        "configfiles": list(configfiles),
        "experiment": str(config["experiment"]),
        "config_digest": digest,
        "on_disk": on_disk,
        "matches": None if on_disk is None else on_disk.get("config_digest") == digest,
    }
