"""Splits and seed derivation (se_lib/data/splits.py), and the import structure of se_lib/data."""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from se_lib.data.splits import SPLITS, allocate_splits, derive_rng, derive_seed

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "se_lib" / "data"


def test_splits_defined_once():
    assert SPLITS == ("train", "val", "test")
    # the workflow takes them from here: no second list of split names in the rule files
    literal = re.compile(r"""["']train["']\s*,\s*["']val["']\s*,\s*["']test["']|train\|val\|test""")
    for path in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk")), *sorted(DATA.glob("*.py"))]:
        text = path.read_text(encoding="utf-8")
        if path.name == "splits.py":
            continue
        assert not literal.search(text), f"{path.relative_to(REPO)} spells out the split names; use SPLITS"
    assert "from se_lib.data.splits import SPLITS" in (REPO / "rules" / "common.smk").read_text()


def test_derive_seed_is_pinned():
    # The scheme is part of the DB contract (per-row seeds, room and mixture draws): pinned values.
    assert derive_seed(20261123, "mixtures", "train") == 8839714482975308376
    assert derive_seed(7, "room", "val", 0) == 5751440990707298720
    # ... which are SHA-256 of the \x1f-joined text, first 8 bytes big-endian, 63 bits
    text = "\x1f".join(["20261123", "mixtures", "train"]).encode()
    assert derive_seed(20261123, "mixtures", "train") == int.from_bytes(hashlib.sha256(text).digest()[:8], "big") & (
        2**63 - 1
    )


def test_derive_seed_keys():
    seeds = {
        derive_seed(s, *k)
        for s in (0, 1, 2**40 + 1)
        for k in [(), ("a",), ("b",), ("a", "b"), ("ab",), ("a", 0), ("a", 1), ("room", "train", 3)]
    }
    assert len(seeds) == 3 * 8  # every (seed, keys) its own stream; big seeds are not truncated
    assert all(0 <= x < 2**63 for x in seeds)
    assert derive_seed(5, "x", 3) == derive_seed(5, "x", "3") == derive_seed(np.int64(5), "x", np.int32(3))
    with pytest.raises(ValueError, match="separator"):
        derive_seed(1, "a\x1fb")
    with pytest.raises(TypeError):
        derive_seed(1, 0.5)
    with pytest.raises(TypeError):
        derive_seed(1, None)


def test_derive_rng_reproducible_and_independent():
    a = derive_rng(3, "demo", "noise", "n1").integers(0, 2**32, size=8)
    assert np.array_equal(a, derive_rng(3, "demo", "noise", "n1").integers(0, 2**32, size=8))
    assert np.array_equal(a, np.random.default_rng(derive_seed(3, "demo", "noise", "n1")).integers(0, 2**32, size=8))
    assert not np.array_equal(a, derive_rng(3, "demo", "noise", "n2").integers(0, 2**32, size=8))
    assert not np.array_equal(a, derive_rng(4, "demo", "noise", "n1").integers(0, 2**32, size=8))


def test_allocate_splits_every_item_once_and_seeded():
    groups = {"white": [f"w{i}" for i in range(9)], "pink": ["p0", "p1"], "hum": ["h0"], "empty": []}
    out = allocate_splits(groups, {"val": 0.2, "test": 0.2}, derive_rng(1, "t"))
    assert sorted(out) == sorted(x for items in groups.values() for x in items)
    assert set(out.values()) <= set(SPLITS)
    white = [out[f"w{i}"] for i in range(9)]
    assert (white.count("train"), white.count("val"), white.count("test")) == (5, 2, 2)
    assert sorted(out[p] for p in ("p0", "p1")) in (["test", "train"], ["train", "val"])
    assert out == allocate_splits(groups, {"val": 0.2, "test": 0.2}, derive_rng(1, "t"))
    others = [allocate_splits(groups, {"val": 0.2, "test": 0.2}, derive_rng(s, "t")) for s in range(2, 8)]
    assert any(o != out for o in others)


# --------------------------------------------------------------------- import structure
def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every ``import``/``from ... import`` in ``path`` (incl. local ones)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def test_data_modules_acyclic_and_no_private_imports():
    modules = {p.stem: p for p in DATA.glob("*.py") if p.stem != "__init__"}
    deps: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps[name] = set()
        for module, names in _imports(path):
            if module == "se_lib.data":
                targets = [n for n in names if n in modules]
            elif module.startswith("se_lib.data."):
                targets = [module.split(".")[2]]
            else:
                continue
            private = [n for n in names if n.startswith("_")]
            assert not private, f"se_lib/data/{name}.py imports private {private} from {module}"
            deps[name].update(targets)
    # depth-first search for a cycle
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(deps.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(d) :], d]))
            if d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in sorted(deps):
        if m not in state:
            visit(m, [m])
    assert deps["splits"] == set() and deps["naming"] == set()  # the leaves others build on
