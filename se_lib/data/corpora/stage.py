"""The corpus stage for a recorded corpus (``corpus.kind``: voicebank_demand | dns2020 | chime4 | paired).

:func:`build_recorded_corpus` scans ``corpus.<kind>.root`` with the kind's adapter, checks it against the recipe
(``config/corpora/<kind>.yaml``: expected counts, scaled by ``corpus.count_scale``) and the files themselves
(:func:`se_lib.data.corpora.recordings.check_recordings`), and writes ``recordings.tsv``, ``manifest.tsv`` and
``stats.json`` into the stage's folder -- all or nothing. The corpus is read where it lies: nothing is copied,
so a 30 GB corpus costs no space in the repository or the DVC cache; the manifest (path, size, sha256 of every
file used) is what the stage's output versions, and the mixture DB digest covers it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from se_lib.config import REPO_ROOT, ConfigError
from se_lib.data.corpora.recordings import check_recordings, expected_counts, write_recorded_corpus

RECORDED_KINDS = ("voicebank_demand", "dns2020", "chime4", "paired")
RECIPES = REPO_ROOT / "config" / "corpora"


def is_recorded(config: Mapping[str, Any]) -> bool:
    """Whether the workflow config's corpus is a recorded one (no rooms are simulated for it)."""
    return config["corpus"]["kind"] in RECORDED_KINDS


def adapter(kind: str):
    """The adapter module of a recorded corpus kind (``scan(root, options)``)."""
    if kind not in RECORDED_KINDS:
        raise ConfigError(f"config key 'corpus.kind': {kind!r} is not a recorded corpus kind {RECORDED_KINDS}")
    return importlib.import_module(f"se_lib.data.corpora.{kind}")


def recipe_counts(kind: str, recipes: Path = RECIPES) -> dict[str, int]:
    """The ``counts:`` of ``config/corpora/<kind>.yaml`` (the recipe of a published corpus)."""
    path = recipes / f"{kind}.yaml"
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"corpus recipe not found: {path}") from exc
    counts = recipe.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(v, int) and v > 0 for v in counts.values()):
        raise ConfigError(f"{path}: key 'counts' must map folders to positive integers")
    return counts


def corpus_root(config: Mapping[str, Any]) -> Path:
    """``corpus.<kind>.root`` as an existing folder (relative paths: to the repository root)."""
    kind = config["corpus"]["kind"]
    root = (config["corpus"].get(kind) or {}).get("root")
    if not root:
        raise ConfigError(f"config key 'corpus.{kind}.root' is required: the folder that holds the corpus")
    path = Path(os.path.expanduser(str(root)))
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_dir():
        raise ConfigError(
            f"config key 'corpus.{kind}.root': {path} is not a folder (get it: make corpus CORPUS={kind} ROOT=...)"
        )
    return path


def scan_corpus(config: Mapping[str, Any], log: Callable[[str], None] = print, threads: int = 1):
    """Scan and check the configured recorded corpus; returns the checked corpus (nothing written)."""
    c = config["corpus"]
    kind = c["kind"]
    options = {k: v for k, v in dict(c.get(kind) or {}).items() if k != "root"}
    root = corpus_root(config)
    module = adapter(kind)
    try:
        recordings, problems, found = module.scan(root, options)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    counts = module.groups_of(options) if kind == "paired" else recipe_counts(kind)
    expected = {g: n for g, n in expected_counts(counts, float(c["count_scale"])).items() if g in found}
    log(f"{kind} at {root}: {len(recordings)} recordings; found {found}, expected {expected or 'no counts'}")
    return check_recordings(
        root,
        recordings,
        layout_problems=problems,
        expected=expected if kind != "paired" or expected else None,
        found=found,
        channels=c["channels"],
        on_bad_file=c["on_bad_file"],
        threads=threads,
        log=log,
        what=f"corpus {kind}",
    )


def build_recorded_corpus(
    config: Mapping[str, Any], out_dir: str | os.PathLike, log: Callable[[str], None] = print, threads: int = 1
) -> dict[str, Any]:
    """Scan, check and write the recorded corpus's stage files into ``out_dir``; returns the stats."""
    checked = scan_corpus(config, log=log, threads=threads)
    kind = config["corpus"]["kind"]
    info = {
        "kind": kind,
        "options": {k: v for k, v in dict(config["corpus"].get(kind) or {}).items() if k != "root"},
        "count_scale": config["corpus"]["count_scale"],
        "sample_rate": config["sample_rate"],
    }
    return write_recorded_corpus(out_dir, checked, info, log=log)
