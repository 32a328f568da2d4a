"""Workflow configuration: one loader, one schema, one place for derived settings.

Snakemake validates ``config/config.yaml`` in ``rules/common.smk`` with ``snakemake.utils.validate``;
code running outside Snakemake (tests, ``python -m`` tools, benchmarks) calls :func:`load_config`,
which applies the very same schema and defaults, so both paths see identical dictionaries.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "config" / "schema" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"
DEFAULT_DB_URL = "sqlite:///results/db/mixtures.sqlite"


class ConfigError(ValueError):
    """Invalid workflow configuration; the message names the offending key."""


def _key_path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<root>"


def validate_config(config: dict[str, Any], schema_path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Validate ``config`` in place (defaults filled from the schema) and return it.

    Raises :class:`ConfigError` whose message starts with the dotted key path of the first error,
    e.g. ``config key 'mixtures.snr_range': [5] is too short``.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(schema_path), set_default=True)
    except WorkflowError as exc:  # snakemake wraps the jsonschema ValidationError
        inner = exc.__context__ if hasattr(exc.__context__, "absolute_path") else None
        if inner is None:
            raise ConfigError(f"invalid configuration: {exc}") from exc
        raise ConfigError(f"config key '{_key_path(inner)}': {inner.message}") from exc
    _check_semantics(config)
    return config


def _check_semantics(config: dict) -> None:
    """Constraints JSON schema cannot express; each message names its key."""
    lo, hi = config["mixtures"]["snr_range"]
    if lo > hi:
        raise ConfigError(f"config key 'mixtures.snr_range': low {lo} > high {hi}")
    lo, hi = config["mixtures"]["noise2_rel_db_range"]
    if lo > hi:
        raise ConfigError(f"config key 'mixtures.noise2_rel_db_range': low {lo} > high {hi}")
    lo, hi = config["rooms"]["rt60_range"]
    if lo > hi:
        raise ConfigError(f"config key 'rooms.rt60_range': low {lo} > high {hi}")
    for i, (a, b) in enumerate(zip(config["rooms"]["dims_min"], config["rooms"]["dims_max"])):
        if a > b:
            raise ConfigError(f"config key 'rooms.dims_min.{i}': {a} > rooms.dims_max.{i} = {b}")
    mic = config["rooms"]["mic_array"]
    if mic["preset"] == "custom" and not mic.get("coords"):
        raise ConfigError("config key 'rooms.mic_array.coords': required when preset is 'custom'")
    if config["corpus"]["kind"] == "files":
        files = config["corpus"]["files"]
        for key in ("speech_glob", "noise_glob"):
            if not files.get(key):
                raise ConfigError(f"config key 'corpus.files.{key}': required when corpus.kind is 'files'")


def load_config(path: str | os.PathLike = DEFAULT_CONFIG, overrides: dict | None = None) -> dict:
    """Read a YAML config (``yaml.safe_load``), deep-merge ``overrides``, validate, fill defaults."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    if overrides:
        config = deep_merge(config, overrides)
    return validate_config(config)


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def db_url(config: dict) -> str:
    """SQLAlchemy URL of the mixture DB (relative sqlite paths are relative to the working dir)."""
    return config["db"]["url"] or DEFAULT_DB_URL


def tracking_uri(config: dict | None = None) -> str:
    """MLflow tracking URI: config ``tracking.uri``, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db."""
    if config and config.get("tracking", {}).get("uri"):
        return config["tracking"]["uri"]
    return os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
