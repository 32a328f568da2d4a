"""Workflow configuration: one loader, one schema, one place for derived settings.

Snakemake validates ``config/config.yaml`` in ``rules/common.smk`` with ``snakemake.utils.validate``;
code running outside Snakemake (tests, ``python -m`` tools, benchmarks) calls :func:`load_config`,
which applies the very same schema and defaults, so both paths see identical dictionaries.

The schema is the only place a workflow default lives: code reads validated configs by key
(``config["seed"]``) and, where no workflow config exists (the ``se`` command run by hand), takes the
default from the schema (:func:`schema_default`). Settings with more than one source are resolved by
one function each: :func:`experiment_name`, :func:`tracking_uri`, :func:`db_url`.

Model configs: ``config/models/<name>.yaml`` (LightningCLI), optionally overlaid by
``config/models/demo/<name>.yaml``; both sit on top of :data:`SHARED_MODEL_CONFIG`, which the ``se``
command reads first without being named (:func:`model_config_files`, :func:`available_models`).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "config" / "schema" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"
DEFAULT_DB_URL = "sqlite:///results/db/mixtures.sqlite"
MODELS_DIR = REPO_ROOT / "config" / "models"
# Training setup the four model configs share (data, trainer, checkpointing, early stopping, MLflow,
# optimizer, scheduler, prediction writer); read by `se` before any --config (se_lib.train.cli).
SHARED_MODEL_CONFIG = MODELS_DIR / "_shared.yaml"
EXPERIMENT_ENV = "SE_EXPERIMENT"


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
    _check_models(config)
    return config


def _check_models(config: dict) -> None:
    """Every name in ``models`` has its model config (and demo overlay when ``train.overlay`` is demo)."""
    for i, model in enumerate(config["models"]):
        try:
            model_config_files(model, config["train"]["overlay"], MODELS_DIR)
        except FileNotFoundError as exc:
            raise ConfigError(
                f"config key 'models.{i}': {exc}; available models: {', '.join(available_models()) or 'none'}"
            ) from None


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
    for i, (a, b) in enumerate(zip(config["rooms"]["dims_min"], config["rooms"]["dims_max"], strict=True)):
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
    config, _ = read_config_files([path])
    if overrides:
        config = deep_merge(config, overrides)
    return validate_config(config)


def read_config_files(paths: Sequence[str | os.PathLike]) -> tuple[dict, list[dict]]:
    """Read YAML config files (``yaml.safe_load``) and merge them in order, later files overriding earlier
    ones key by key, as ``snakemake --configfile a.yaml b.yaml`` does; returns ``(merged, raw per file)``.
    Unvalidated: :func:`validate_config` fills defaults. A missing file is a :class:`ConfigError` naming it."""
    raw: list[dict] = []
    merged: dict = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping of keys, got {type(data).__name__}")
        raw.append(data)
        merged = deep_merge(merged, data)
    return merged, raw


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@functools.cache
def _schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def schema_default(*keys: str) -> Any:
    """The schema's default of a (nested) key, e.g. ``schema_default("train", "threads")`` -> 2."""
    node: dict = _schema()
    for key in keys:
        try:
            node = node["properties"][key]
        except KeyError:
            raise KeyError(f"config key {'.'.join(keys)!r} is not in the schema {SCHEMA_PATH}") from None
    if "default" not in node:
        raise KeyError(f"config key {'.'.join(keys)!r} has no default in the schema {SCHEMA_PATH}")
    return copy.deepcopy(node["default"])


def experiment_name(config: Mapping[str, Any] | None = None, explicit: str | None = None) -> str:
    """The MLflow experiment of a run; the one place its precedence is decided:

    1. ``explicit`` (``se --mlflow.experiment``, a function argument), if given;
    2. the workflow config's ``experiment`` (every Snakemake job has one);
    3. ``$SE_EXPERIMENT`` (the ``se`` command run by hand);
    4. the schema's default for ``experiment``.
    """
    if explicit:
        return explicit
    if config is not None and config.get("experiment"):  # a validated config always has it
        return str(config["experiment"])
    return os.environ.get(EXPERIMENT_ENV) or schema_default("experiment")


def available_models(root: str | os.PathLike = MODELS_DIR) -> list[str]:
    """Names ``<name>`` of the model configs ``<root>/<name>.yaml`` (files starting with ``_`` are shared)."""
    return sorted(p.stem for p in Path(root).glob("*.yaml") if not p.name.startswith("_"))


def model_config_dirs(overlay: str, root: str | os.PathLike = "config/models") -> list[Path]:
    """The folders whose ``<model>.yaml`` make up a model's LightningCLI config, in the order ``se`` reads
    them: ``root`` (the paper configs), plus ``root/demo`` for the demo overlay (config key ``train.overlay``).

    The one statement of that rule: :func:`model_config_files`, the workflow's rules (rules/common.smk) and
    the DVC stages (:mod:`se_lib.dvc_stages`) all take their folders from here.
    """
    if overlay == "demo":
        return [Path(root), Path(root) / "demo"]
    if overlay == "paper":
        return [Path(root)]
    raise ValueError(f"config key 'train.overlay': expected 'demo' or 'paper', got {overlay!r}")


def model_config_files(model: str, overlay: str, root: str | os.PathLike | None = None) -> list[str]:
    """``config/models/<model>.yaml`` (+ ``demo/<model>.yaml`` for the demo overlay), checked to exist.

    ``root`` defaults to ``config/models`` in the working directory if present, else the repository's.
    :data:`SHARED_MODEL_CONFIG` is not listed: the ``se`` command always reads it first.
    """
    if root is None:
        root = Path("config/models") if Path("config/models").is_dir() else MODELS_DIR
    files = [folder / f"{model}.yaml" for folder in model_config_dirs(overlay, root)]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"model config {path} not found (config key 'models' lists {model!r})")
    return [str(p) for p in files]


def db_url(config: dict) -> str:
    """SQLAlchemy URL of the mixture DB (relative sqlite paths are relative to the working dir)."""
    return config["db"]["url"] or DEFAULT_DB_URL


def tracking_uri(config: Mapping[str, Any] | None = None) -> str:
    """MLflow tracking URI: config ``tracking.uri``, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db.

    ``config`` is a validated workflow config, a part of one, or None outside the workflow; a config
    without a ``tracking`` section means ``tracking.uri: null``, the schema's default.
    """
    uri = config["tracking"]["uri"] if config is not None and "tracking" in config else None
    if uri:
        return uri
    return os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
