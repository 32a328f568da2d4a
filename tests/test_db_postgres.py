"""Mixture DB on a real PostgreSQL server started by the test (tests/pg.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pg import PostgresUnavailable, postgres_server
from se_lib.data import db as dbm
from se_lib.data.db import find_mixture
from se_lib.data.naming import mixture_filename
from worlds import interrupt_build_after, rebuild

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_url():
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


def test_postgres_build_matches_sqlite(pg_url, world):
    root, config, sqlite_url = world
    digest = rebuild(root, config, pg_url)
    assert digest == dbm.digest(pg_url) == dbm.digest(sqlite_url)  # same content on both backends
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version()")).scalar().startswith("PostgreSQL")
        n = conn.execute(sa.text("SELECT COUNT(*) FROM mixture")).scalar()
    engine.dispose()
    assert n == sum(config["mixtures"]["count"].values())
    rows = list(dbm.iter_mixtures(pg_url, "test"))
    assert rows == list(dbm.iter_mixtures(sqlite_url, "test"))
    name = mixture_filename(rows[0], "enhanced")
    assert find_mixture(pg_url, name)["mid"] == rows[0]["mid"]
    assert dbm.summary(pg_url) == dbm.summary(sqlite_url)


def test_postgres_interrupted_build_rolls_back(pg_url, world, monkeypatch):
    root, config, _ = world
    good = rebuild(root, config, pg_url)
    interrupt_build_after(monkeypatch, 30, RuntimeError("simulated interruption"))
    with pytest.raises(RuntimeError, match="simulated"):
        rebuild(root, dict(config, seed=123), pg_url, chunk_size=10)
    assert dbm.digest(pg_url) == good  # DDL + inserts were one transaction: nothing changed
