"""The e2e marker of `make test-quick` (``pytest -m "not e2e"``) is derived from what a test uses
(tests/conftest.py, e2e_reason): checked on stand-in test items."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import e2e_reason
from pg import postgres_server
from se_lib.tracking import service


def item(func, fixtures: tuple[str, ...] = (), markers: tuple[str, ...] = (), fixture_funcs: dict | None = None):
    """A stand-in for a collected test: its function, fixture names (with their functions) and markers."""
    defs = {name: [SimpleNamespace(func=f)] for name, f in (fixture_funcs or {}).items()}
    return SimpleNamespace(
        obj=func,
        fixturenames=(*fixtures, *defs),
        get_closest_marker=lambda name: pytest.mark.slow if name in markers else None,
        _fixtureinfo=SimpleNamespace(name2fixturedefs=defs),
    )


def plain():
    assert sum([1, 2]) == 3


def runs_snakemake():
    subprocess.run([sys.executable, "-m", "snakemake", "-n"], check=False)


def helper_starting_postgres():
    with postgres_server() as url:
        return url


def calls_a_helper():
    return helper_starting_postgres()


def mlflow_service_home():
    service.stop("nowhere")


# Reached through a dict: the tests below name only the dict, so they stay quick themselves.
STAND_INS = {
    "program": runs_snakemake,
    "helper": calls_a_helper,
    "fixture": mlflow_service_home,
}


def test_unit_tests_stay_quick():
    assert e2e_reason(item(plain)) is None
    assert e2e_reason(item(plain, fixtures=("tmp_path", "world"))) is None


def test_markers_and_shared_fixtures_make_a_test_e2e():
    assert e2e_reason(item(plain, markers=("slow",))) == "marked slow"
    assert e2e_reason(item(plain, markers=("postgres",))) == "marked postgres"
    assert e2e_reason(item(plain, fixtures=("workflow_run",))).startswith("uses workflow_run")
    assert e2e_reason(item(plain, fixtures=("train_world",))).startswith("uses train_world")


def test_what_the_code_starts_makes_a_test_e2e():
    assert e2e_reason(item(STAND_INS["program"])) == "starts Snakemake"
    assert e2e_reason(item(STAND_INS["helper"])) == "starts a PostgreSQL server"  # through a helper it calls
    assert e2e_reason(item(plain, fixture_funcs={"home": STAND_INS["fixture"]})) == "starts an MLflow server"
