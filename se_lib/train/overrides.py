"""Check LightningCLI overrides of the workflow config with the real ``se fit`` parser, before any job.

``train.extra_args`` and every sweep point's values (:mod:`se_lib.sweep`) are LightningCLI keys; a
typo (``data.batchsize``) or a value of the wrong type (``data.batch_size: four``) would otherwise pass
the config schema, let the data stages run, and fail the training job deep in its log. Here each
system's ``se fit`` arguments -- exactly those its training job gets (:func:`se_lib.train.jobs.train_args`)
-- are parsed by the ``se`` command's own parser (jsonargparse, classes resolved, nothing instantiated,
no data read), and a rejection names the workflow config key and the override.

Cost: the parser needs Lightning and the model classes (15-30 s to import on a small machine, ~1 s per
parse after that), too slow for every Snakemake start. So :func:`check` runs from the workflow's
``onstart`` (a real run, not ``-n``), only for the systems the run is about to train or predict with,
and remembers a success under ``.snakemake/se_cli_checks/<digest>``: the digest covers the overrides,
the rest of the training arguments, the model config files, the se_lib sources and the versions of
Lightning and jsonargparse, so a later start with nothing changed skips the import entirely.

Run by hand: ``uv run python -m se_lib.train.overrides [--configfile FILE ...]`` checks every system.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["CACHE_DIR", "Target", "check", "targets"]

CACHE_DIR = Path(".snakemake") / "se_cli_checks"
_SOURCES = Path(__file__).resolve().parent.parent  # se_lib/


@dataclass(frozen=True)
class Target:
    """One system whose ``se fit`` arguments are checked: ``overrides`` with the config key they come from."""

    system: str
    model: str
    config_files: tuple[str, ...]
    overrides: tuple[tuple[str, str, Any], ...]  # (config key, CLI key, value)
    sweep: Mapping[str, Any] | None = None


def targets(config: Mapping[str, Any], systems: Sequence[str] | None = None) -> list[Target]:
    """The systems of the validated ``config`` (all, or those named in ``systems``) as check targets."""
    from se_lib.config import model_config_files
    from se_lib.sweep import points

    overlay = config["train"]["overlay"]
    extra = [("train.extra_args", k, v) for k, v in config["train"]["extra_args"].items()]
    out = [
        Target(m, m, tuple(model_config_files(m, overlay)), tuple(extra))
        for m in config["models"]
        if systems is None or m in systems
    ]
    for p in points(config):
        if systems is not None and p.system not in systems:
            continue
        section = {"grid": "grid", "random": "random.space"}[p.origin]
        mine = [(f"sweeps.{p.model}.{section if k in p.values else 'fixed'}", k, v) for k, v in p.overrides.items()]
        sweep = {"system": p.system, "values": p.values, "overrides": p.overrides}
        out.append(Target(p.system, p.model, tuple(model_config_files(p.model, overlay)), tuple(extra + mine), sweep))
    return out


def _digest(config: Mapping[str, Any], checked: Sequence[Target]) -> str:
    h = hashlib.sha256()
    relevant = {k: config[k] for k in ("seed", "sample_rate", "experiment", "train")}
    h.update(json.dumps([relevant, [(t.system, t.model, t.overrides) for t in checked]], default=str).encode())
    files = {f for t in checked for f in t.config_files}
    files |= {str(p) for p in _SOURCES.rglob("*.py")} | {str(_SOURCES.parent / "config/models/_shared.yaml")}
    for path in sorted(files):
        h.update(path.encode())
        with contextlib.suppress(OSError):
            h.update(Path(path).read_bytes())
    for dist in ("lightning", "jsonargparse", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            h.update(f"{dist}=={metadata.version(dist)}".encode())
    return h.hexdigest()[:24]


def _parse(args: Sequence[str]) -> str | None:
    """None when ``se`` parses ``args``; else its error message."""
    from se_lib.train.secli import SECLI

    class Parsed(Exception):
        pass

    class ParseOnly(SECLI):
        def before_instantiate_classes(self) -> None:
            raise Parsed

    err = io.StringIO()
    logging.disable(logging.INFO)  # "Seed set to ..." per parse
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. LightningCLI's "args given and sys.argv too" in a test
            ParseOnly(args=list(args))
    except Parsed:
        return None
    except SystemExit:
        return _reason(err.getvalue())
    finally:
        logging.disable(logging.NOTSET)
    return None


# The innermost sentence of a jsonargparse error (its message nests every Union subtype it tried).
_REASONS = (
    re.compile(r"Option '[^']+' is not accepted"),
    re.compile(r"Expected a <class '(\w+)'>\. Got value: .*?(?=\s+-|\s*$)", re.S),
    re.compile(r"Unrecognized arguments: .*"),
    re.compile(r"Key '[^']+' is not expected"),
    re.compile(r"No action for key .*"),
)


def _reason(stderr: str) -> str:
    text = " ".join(ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("hint:"))
    text = text.removeprefix("error: ").strip()
    for pattern in _REASONS:
        m = pattern.search(text)
        if m:
            return re.sub(r"<class '(\w+)'>", r"\1", m.group(0)).strip()
    return text[:500] or "rejected"


def _args(config: Mapping[str, Any], t: Target, overrides: Sequence[tuple[str, str, Any]]) -> list[str]:
    from se_lib.train.jobs import override_args, train_args

    base = {**config, "train": {**config["train"], "extra_args": {}}}
    args = train_args(t.model, base, f"results/models/{t.system}", list(t.config_files))
    return args + override_args({k: v for _, k, v in overrides})


def _failure(config: Mapping[str, Any], t: Target, message: str) -> tuple[str, str]:
    """(what, why): the first override that alone makes the parser fail, named by its config key."""
    if _parse(_args(config, t, [])) is not None:
        return f"model config {', '.join(t.config_files)} (system {t.system}) does not parse", message
    for where, key, value in t.overrides:
        alone = _parse(_args(config, t, [(where, key, value)]))
        if alone is not None:
            return f"config key '{where}': {key}: {json.dumps(value)}", alone
    return f"config keys {', '.join(sorted({w for w, _, _ in t.overrides}))} (system {t.system}) together", message


def check(
    config: Mapping[str, Any], systems: Sequence[str] | None = None, *, cache_dir: str | os.PathLike = CACHE_DIR
) -> list[str]:
    """Parse each system's training arguments (``systems``: only these) with the ``se`` parser.

    Returns the problems found (empty: all parse), each naming its config key; a success is cached in
    ``cache_dir`` by digest, so an unchanged check costs no Lightning import.
    """
    checked = targets(config, systems)
    if not checked:
        return []
    marker = Path(cache_dir) / _digest(config, checked)
    if marker.is_file():
        return []
    failed: dict[tuple[str, str], list[str]] = {}  # (what, why) -> models whose parser says so
    for t in checked:
        message = _parse(_args(config, t, t.overrides))
        if message is not None:
            models = failed.setdefault(_failure(config, t, message), [])
            if t.model not in models:
                models.append(t.model)
    problems = [
        f"{what} is rejected by the LightningCLI config of {', '.join(models)}: {why}"
        for (what, why), models in failed.items()
    ]
    if not problems:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("\n".join(t.system for t in checked) + "\n", encoding="utf-8")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    from se_lib.config import DEFAULT_CONFIG, deep_merge, validate_config

    parser = argparse.ArgumentParser(prog="python -m se_lib.train.overrides", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", action="append", default=[], help="workflow config files, as for snakemake")
    ns = parser.parse_args(argv)
    import yaml

    merged: dict[str, Any] = {}
    for path in [DEFAULT_CONFIG, *ns.configfile]:
        with open(path, encoding="utf-8") as fh:
            merged = deep_merge(merged, yaml.safe_load(fh) or {})
    problems = check(validate_config(merged))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
