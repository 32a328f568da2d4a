"""Data splits and seed derivation: the one home of ``SPLITS`` and of every derived random stream.

Splits. ``SPLITS`` (train, val, test) is the only definition of the split names; the workflow's
``rules/common.smk`` and its ``split`` wildcard constraint take them from here.
:func:`allocate_splits` assigns items (noise files, speakers) to splits, stratified by group.

Seeds. Every random choice of the data stage derives from the config's ``seed`` through one
scheme, :func:`derive_seed`: the seed and a tuple of stable names/indices (``"room", split, i``;
``"mixtures", split``; ``"demo", "utterance", speaker, j``; ...) are written as text, joined with
the unit separator ``\\x1f``, hashed with SHA-256, and the first 8 bytes of the digest, big-endian,
masked to 63 bits, are the derived seed. :func:`derive_rng` is ``numpy.random.default_rng`` of it.
Properties: independent of ``PYTHONHASHSEED``, platform and process; the whole config seed and
every key enter in full (no truncation to 32 bits); distinct key tuples give independent streams
(up to SHA-256 collisions). A key is an ``int`` or a ``str`` without ``\\x1f``; ``5`` and ``"5"``
are the same key. The mixture DB stores per-row seeds made this way (``derive_seed(seed,
"mixture", mid)``), so the scheme is part of the DB contract (``docs/contracts.md``): changing it
changes every DB digest.
"""

from __future__ import annotations

import hashlib
import operator

import numpy as np

SPLITS = ("train", "val", "test")
_SEP = "\x1f"


def derive_seed(seed: int, *keys: int | str) -> int:
    """Stable 63-bit seed for the stream named ``keys`` under the config ``seed`` (see module doc)."""
    parts = [str(operator.index(seed))]
    for k in keys:
        if isinstance(k, str):
            if _SEP in k:
                raise ValueError(f"seed key {k!r} contains the separator \\x1f")
            parts.append(k)
        else:
            parts.append(str(operator.index(k)))  # TypeError for floats, None, ...
    digest = hashlib.sha256(_SEP.join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def derive_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """``numpy.random.default_rng(derive_seed(seed, *keys))``: the generator for one named stream."""
    return np.random.default_rng(derive_seed(seed, *keys))


def allocate_splits(
    groups: dict[str, list[str]], fractions: dict[str, float], rng: np.random.Generator
) -> dict[str, str]:
    """Assign items to splits, stratified by group (noise kind), seeded.

    Groups with >= 3 items put ``max(1, round(n * fraction))`` items in val and test each (always
    leaving >= 1 for train). A group of 2 gives one item to train and one to test or val
    (alternating across groups); groups of 1 go to train, test, val in rotation -- so every split
    receives something whenever the total allows. Items are sorted, then permuted by ``rng``.
    """
    out: dict[str, str] = {}
    rot1 = rot2 = 0
    for name in sorted(groups):
        items = sorted(groups[name])
        items = [items[i] for i in rng.permutation(len(items))]
        n = len(items)
        if n >= 3:
            n_val = max(1, round(n * fractions.get("val", 0.0)))
            n_test = max(1, round(n * fractions.get("test", 0.0)))
            while n_val + n_test > n - 1:
                if n_val >= n_test and n_val > 1:
                    n_val -= 1
                elif n_test > 1:
                    n_test -= 1
                else:  # pragma: no cover - n >= 3 guarantees 1 + 1 <= n - 1
                    break
            labels = ["val"] * n_val + ["test"] * n_test + ["train"] * (n - n_val - n_test)
        elif n == 2:
            labels = ["train", ("test", "val")[rot2 % 2]]
            rot2 += 1
        elif n == 1:
            labels = [("train", "test", "val")[rot1 % 3]]
            rot1 += 1
        else:
            labels = []
        out.update(zip(items, labels, strict=True))
    return out
