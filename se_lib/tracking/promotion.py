"""Promotion of a registered model version by a test metric (config ``registry.promote``, ``se models
promote-best``): point an alias (``models:/se-dprnn@champion``) at a new version only when it is better.

:func:`promote_if_better` compares the new version's metric (a version tag, e.g. ``test_si_sdri``, set when its
test scores are recorded: :func:`se_lib.tracking.runs.record_scores_on_training_run`) with the version the alias
names, and moves the alias only when the new one is strictly better (``mode`` max: higher; min: lower), or when
the alias names no version (or one that was deleted). Otherwise the alias stays, and why is never silent: the
decision is returned, logged, and set as the new version's tag ``promotion.<alias>``, e.g.
``kept champion on v2 (test_si_sdri 6.1 on v3 <= 7.4 on v2)``. The alias also stays when the two versions cannot
be compared: the current one lacks the metric, or they were tested on different data (version tags
``db_digest``): a person decides then (``se models promote``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Promotion", "default_mode", "promote_if_better", "promote_recorded"]

log = logging.getLogger(__name__)

TAG_PREFIX = "promotion."
#: Metrics where lower is better (every other metric of the scorer is higher-is-better).
LOWER_IS_BETTER = ("real_time_factor", "rtf", "loss")


def default_mode(metric: str) -> str:
    """``min`` for a metric where lower is better (real-time factor, a loss), else ``max``."""
    return "min" if any(metric.endswith(s) for s in LOWER_IS_BETTER) else "max"


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote_if_better` decided for version ``version`` of ``model``; ``current`` is the version
    the alias named before (None: none), ``promoted`` whether the alias now names ``version``."""

    model: str
    version: str
    alias: str
    metric: str
    value: float | None
    current: str | None
    current_value: float | None
    promoted: bool
    message: str


def _metric(version: Any, metric: str) -> float | None:
    raw = (version.tags or {}).get(metric)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


def promote_if_better(
    client: Any, model: str, version: str | int, alias: str, metric: str, mode: str | None = None
) -> Promotion:
    """Point ``model@alias`` at ``version`` if its tag ``metric`` beats the aliased version's (see the module);
    tag ``version`` with ``promotion.<alias>`` saying what happened, log it and return it. ``client`` is an
    ``MlflowClient`` of the store holding the registry."""
    from mlflow.exceptions import MlflowException

    mode = mode or default_mode(metric)
    if mode not in ("max", "min"):
        raise ValueError(f"registry.promote.mode {mode!r}: expected max or min")
    version = str(version)
    new = client.get_model_version(model, version)
    value = _metric(new, metric)
    current = current_value = None
    try:
        aliased = client.get_model_version_by_alias(model, alias)
    except MlflowException:  # no such alias (or its version was deleted)
        aliased = None
    if aliased is not None:
        current, current_value = str(aliased.version), _metric(aliased, metric)
    here = f"{metric} {_fmt(value)} on v{version}"
    there = f"{_fmt(current_value)} on v{current}"
    sign = "<=" if mode == "max" else ">="
    if value is None:
        promoted, message = False, f"not promoted to {alias}: v{version} has no finite {metric} tag"
    elif current is None:
        promoted, message = True, f"set {alias} -> v{version} ({here}; no version had the alias)"
    elif current == version:
        promoted, message = True, f"{alias} already names v{version} ({here})"
    elif current_value is None:
        promoted, message = (
            False,
            f"kept {alias} on v{current}: it has no {metric} to compare with ({here}); "
            f"`se models promote {model} {version} --alias {alias}` moves it by hand",
        )
    elif (new.tags or {}).get("db_digest", "") != (aliased.tags or {}).get("db_digest", ""):
        promoted, message = (
            False,
            f"kept {alias} on v{current}: v{version} and v{current} were trained and tested on different mixture "
            f"DBs (db_digest), their {metric} do not compare ({here}, {there}); "
            f"`se models promote {model} {version} --alias {alias}` moves it by hand",
        )
    elif (value > current_value) if mode == "max" else (value < current_value):
        promoted, message = True, f"set {alias} -> v{version}, was v{current} ({here} beats {there})"
    else:
        promoted, message = False, f"kept {alias} on v{current} ({here} {sign} {there}; {mode} is better)"
    if promoted and current != version:
        client.set_registered_model_alias(model, alias, version)
    client.set_model_version_tag(model, version, f"{TAG_PREFIX}{alias}", message)
    log.info("%s: %s", model, message)
    return Promotion(model, version, alias, metric, value, current, current_value, promoted, message)


def promote_recorded(
    spec: dict | None, train_run: dict, recorded: dict, *, tracking_uri: str | None = None
) -> Promotion | None:
    """The workflow's step after a score job recorded a model's scores (``recorded``: the metrics
    :func:`se_lib.tracking.runs.record_scores_on_training_run` logged and tagged on the registered version): with
    config ``registry.promote`` (``spec``: alias, metric, mode) set and its metric among them,
    :func:`promote_if_better` on the run's registered version; else None (off, another split, or no version)."""
    if not spec or spec["metric"] not in recorded or not train_run.get("registered_version"):
        return None
    from mlflow import MlflowClient

    from se_lib.config import tracking_uri as default_uri

    uri = tracking_uri or default_uri(None)
    client = MlflowClient(uri, registry_uri=uri)
    return promote_if_better(
        client,
        train_run["registered_model"],
        train_run["registered_version"],
        spec["alias"],
        spec["metric"],
        spec.get("mode"),
    )
