"""Fixtures shared by the test modules.

Mixture worlds (see tests/worlds.py): a synthetic corpus, simulated rooms and a mixture DB under a
temporary root, built once per session on first use and shared by every module that asks for one.
They are read-only: a test that changes a world (its files or its DB) builds its own with
``worlds.build_world`` under ``tmp_path``.

* ``world`` -- the default world (``worlds.tiny_config``: 40/8/6 train/val/test mixtures of 2 s, four
  rooms, 3 speech and 3 noise files per split). Used by the DB, PostgreSQL, render and data-module
  tests.
* ``train_world`` -- a smaller world for the tests that train a network on it (6/4/3 mixtures, 2
  speech and 3 noise files per split; the predict step of tests/test_train.py counts its 3 test
  mixtures). Used by tests/test_train.py and tests/test_resume.py.

Both are :class:`worlds.World` tuples (``root, config, url``; ``world.rows()`` lists the mixtures).
"""

from __future__ import annotations

import pytest
from worlds import World, build_world, tiny_config


def _build(tmp_path_factory: pytest.TempPathFactory, name: str, counts: dict[str, int] | None = None,
           **corpus: int) -> World:
    """Build a world under a fresh temporary ``name`` directory; ``counts`` overrides the mixture counts
    of ``tiny_config`` and ``corpus`` the files per split of ``write_corpus``."""
    root = tmp_path_factory.mktemp(name)
    config = tiny_config(root, count=counts) if counts else tiny_config(root)
    config, url = build_world(root, config, **corpus)
    return World(root, config, url)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The default synthetic world (read-only, built once per session)."""
    return _build(tmp_path_factory, "world")


@pytest.fixture(scope="session")
def train_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The small world the training tests train on (read-only, built once per session)."""
    return _build(tmp_path_factory, "train_world", {"train": 6, "val": 4, "test": 3},
                  speech_per_split=2, noise_per_split=3)
