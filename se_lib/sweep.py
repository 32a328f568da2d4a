"""Hyper-parameter sweeps: the workflow config's ``sweeps`` section as a table of points.

A sweep belongs to a model config (``sweeps.<model>``) and varies LightningCLI keys of it::

    sweeps:
      conv_tasnet:
        grid:                                  # every combination (Cartesian product)
          optimizer.init_args.lr: [1.0e-3, 3.0e-3]
          data.batch_size: [4, 8]
        random:                                # optional: n seeded draws
          n: 4
          seed: 0
          space:
            optimizer.init_args.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
            data.batch_size: [4, 8, 16]        # a list: one of these
        fixed: {trainer.max_epochs: 10}        # every point, not part of its name

Each point becomes a *system*: a name used wherever the workflow uses a model name (the ``{model}``
wildcard of train / predict / score, results/models/<system>/, the report's rows). Its name is the
model, ``--``, then one ``<key><value>`` part per swept key, e.g. ``conv_tasnet--lr1em3_batchsize4``:

* the key is its last dotted component without underscores (the full key where two would clash);
* the value is spelled with characters paths and wildcards like: ``1e-3`` -> ``1em3``, ``0.5`` ->
  ``0p5``, ``-5`` -> ``m5``, a list ``[-5, 5]`` -> ``m5x5``, a dotted string -> its last component.

So a name depends on the point's own values only: adding a value (or raising ``random.n``: draws are
sequential) adds systems and leaves the others' names, files and jobs as they were. Floats never
appear in a wildcard as floats; the rule reads a point's values from :func:`points` (a job's
``params``), not from its name. Draws are rounded to 3 significant digits (readable names, and the
same value on every machine: Python's ``random.Random(seed).random()`` sequence is stable).

Whether each key and value is one the model's LightningCLI parser accepts is checked by
:mod:`se_lib.train.overrides` (it needs Lightning, too slow to import while Snakemake parses).
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SEPARATOR",
    "Point",
    "by_model",
    "contour_pairs",
    "pair_name",
    "points",
    "point_name",
    "sweep_keys",
    "systems",
    "value_slug",
]

#: Between the model and the point's values in a system name (models never contain it: see :func:`points`).
SEPARATOR = "--"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class Point:
    """One training configuration of a sweep.

    ``values``: the swept keys and this point's values (what its name spells); ``overrides``: what
    training gets on top of the model config and ``train.extra_args`` (``fixed`` + ``values``).
    """

    system: str
    model: str
    values: dict[str, Any] = field(hash=False)
    overrides: dict[str, Any] = field(hash=False)
    origin: str = "grid"  # grid | random


def _err(key: str, message: str):
    from se_lib.config import ConfigError

    return ConfigError(f"config key '{key}': {message}")


def value_slug(value: Any) -> str:
    """``value`` spelled with ``[A-Za-z0-9]`` only (see the module docstring)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value).replace("-", "m")
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value).replace("-", "m")
        if value.is_integer() and abs(value) < 1e6:
            text = str(int(value))
        elif abs(value) < 1e-2 or abs(value) >= 1e5:
            mantissa, exponent = f"{value:.3e}".split("e")
            text = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        else:
            text = f"{value:.4g}"
        return text.replace("-", "m").replace(".", "p").replace("+", "")
    if isinstance(value, str):
        return re.sub(r"[^A-Za-z0-9]", "", value.rsplit(".", 1)[-1]) or "x"
    if isinstance(value, (list, tuple)):
        return "x".join(value_slug(v) for v in value) or "empty"
    return re.sub(r"[^A-Za-z0-9]", "", str(value)) or "x"


def _abbreviations(keys: Sequence[str]) -> dict[str, str]:
    """Short name per key: last component without underscores; the whole key where two would clash."""
    short = {k: k.rsplit(".", 1)[-1].replace("_", "") for k in keys}
    clashes = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {k: (re.sub(r"[._]", "", k) if s in clashes else s) for k, s in short.items()}


def point_name(model: str, values: Mapping[str, Any], abbreviations: Mapping[str, str]) -> str:
    """``<model>--<key><value>_...`` (keys in the sweep's order)."""
    return model + SEPARATOR + "_".join(abbreviations[k] + value_slug(v) for k, v in values.items())


def sweep_keys(spec: Mapping[str, Any]) -> list[str]:
    """The keys a sweep varies, in declaration order (grid first, then the random space)."""
    grid = spec.get("grid") or {}
    space = (spec.get("random") or {}).get("space") or {}
    return list(dict.fromkeys([*grid, *space]))


def _draw(rng: random.Random, key: str, dist: Any, where: str) -> Any:
    u = rng.random()
    if isinstance(dist, list):
        return dist[min(int(u * len(dist)), len(dist) - 1)]
    low, high = dist["low"], dist["high"]
    if low > high:
        raise _err(where, f"low {low} > high {high}")
    if dist.get("log"):
        if low <= 0:
            raise _err(where, f"log: true needs low > 0, got {low}")
        x = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        x = low + u * (high - low)
    if dist.get("integer"):
        return int(round(x))
    return float(f"{x:.3g}")


def _model_points(model: str, spec: Mapping[str, Any]) -> list[Point]:
    # Defaults are read here: Snakemake's validator fills defaults under `properties` only, and a
    # sweep sits under `additionalProperties` (its model's name is free).
    where = f"sweeps.{model}"
    grid = spec.get("grid") or {}
    rand = spec.get("random")
    fixed = dict(spec.get("fixed") or {})
    keys = sweep_keys(spec)
    if not keys:
        raise _err(where, "declares no point: give a `grid` and/or a `random` sample")
    for section, names in (("grid", grid), ("fixed", fixed), ("random.space", (rand or {}).get("space") or {})):
        for key in names:
            if not _KEY.match(key.lstrip("-")):
                raise _err(f"{where}.{section}", f"{key!r} is not a dotted LightningCLI key (e.g. data.batch_size)")
    clash = sorted(set(fixed) & set(keys))
    if clash:
        raise _err(f"{where}.fixed", f"{', '.join(clash)} also swept; a key is either fixed or swept")
    short = _abbreviations(keys)
    out: list[Point] = []
    for combo in itertools.product(*grid.values()) if grid else []:
        values = dict(zip(grid, combo, strict=True))
        out.append(Point(point_name(model, values, short), model, values, {**fixed, **values}, "grid"))
    if rand:
        rng = random.Random(rand.get("seed", 0))
        for _ in range(rand["n"]):
            values = {k: _draw(rng, k, d, f"{where}.random.space.{k}") for k, d in rand["space"].items()}
            out.append(Point(point_name(model, values, short), model, values, {**fixed, **values}, "random"))
    unique: dict[str, Point] = {}
    for p in out:
        prev = unique.get(p.system)
        if prev is not None and prev.values != p.values:
            raise _err(where, f"points {prev.values} and {p.values} get the same name {p.system!r}")
        unique.setdefault(p.system, p)  # a random draw equal to a grid point is the same point
    return list(unique.values())


def points(config: Mapping[str, Any]) -> list[Point]:
    """Every sweep point of the validated workflow ``config``, sweeps in config order.

    Raises :class:`se_lib.config.ConfigError` naming the key: a sweep of a model without a model
    config, a key that is not a dotted name, a key both fixed and swept, two points with one name,
    a name that is not a valid wildcard or that clashes with a model's.
    """
    from se_lib.config import available_models

    out: list[Point] = []
    models = set(config["models"])
    known = set(available_models())
    for model, spec in (config.get("sweeps") or {}).items():
        if model not in known:
            raise _err(f"sweeps.{model}", f"no model config config/models/{model}.yaml ({', '.join(sorted(known))})")
        for p in _model_points(model, spec):
            if not _NAME.match(p.system):
                raise _err(f"sweeps.{model}", f"point name {p.system!r} has characters a wildcard may not hold")
            if p.system in models:
                raise _err(f"sweeps.{model}", f"point name {p.system!r} is also a model name")
            out.append(p)
    for model in models:
        if SEPARATOR in model and (config.get("sweeps") or {}):
            raise _err("models", f"{model!r} contains {SEPARATOR!r}, which separates a model from its sweep point")
    return out


def systems(config: Mapping[str, Any]) -> list[str]:
    """What the workflow trains, predicts with and scores: the models, then every sweep point."""
    return [*config["models"], *(p.system for p in points(config))]


def contour_pairs(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Pairs of grid keys with at least two values each: the contour plots a sweep's grid allows."""
    grid = spec.get("grid") or {}
    varied = [k for k, v in grid.items() if len({repr(x) for x in v}) >= 2]
    return list(itertools.combinations(varied, 2))


def pair_name(spec: Mapping[str, Any], x_key: str, y_key: str) -> str:
    """File-name part of the contour of ``x_key`` x ``y_key``: their short names, e.g. ``lr-batchsize``."""
    short = _abbreviations(sweep_keys(spec))
    return f"{short[x_key]}-{short[y_key]}"


def by_model(pts: Iterable[Point]) -> dict[str, list[Point]]:
    """Points grouped by their sweep's model, in order."""
    out: dict[str, list[Point]] = {}
    for p in pts:
        out.setdefault(p.model, []).append(p)
    return out
