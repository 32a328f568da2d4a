"""Promotion by a test metric (se_lib/tracking/promotion.py; config ``registry.promote``, ``se models promote
--if-better``): the alias moves only to a better version, and a kept alias says why (log, version tag), against a
real MLflow sqlite store with explicit tracking and registry URIs."""

from __future__ import annotations

import logging

import pytest
from mlflow import MlflowClient

from se_lib.config import ConfigError, load_config
from se_lib.tracking.models import main as models_main
from se_lib.tracking.promotion import default_mode, promote_if_better, promote_recorded

NAME = "se-dprnn"


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri, registry_uri=uri)
    client.create_registered_model(NAME)
    return uri, client


def add_version(client, tags: dict) -> str:
    return str(client.create_model_version(NAME, source="/nowhere/model", tags={"db_digest": "d1", **tags}).version)


def alias_version(client, alias="champion"):
    return str(client.get_model_version_by_alias(NAME, alias).version)


def test_alias_moves_only_to_a_better_version_and_says_why_it_stays(store, caplog):
    _, client = store
    v1 = add_version(client, {"test_si_sdri": "5.0"})
    first = promote_if_better(client, NAME, v1, "champion", "test_si_sdri")
    assert first.promoted and first.current is None and alias_version(client) == v1
    assert "no version had the alias" in client.get_model_version(NAME, v1).tags["promotion.champion"]

    v2 = add_version(client, {"test_si_sdri": "4.0"})  # worse: the alias stays, and the tag says so
    with caplog.at_level(logging.INFO, logger="se_lib.tracking.promotion"):
        kept = promote_if_better(client, NAME, v2, "champion", "test_si_sdri")
    assert not kept.promoted and alias_version(client) == v1
    tag = client.get_model_version(NAME, v2).tags["promotion.champion"]
    assert tag == kept.message and tag.startswith(f"kept champion on v{v1}") and "4 on v2 <= 5 on v1" in tag
    assert tag in caplog.text

    v3 = add_version(client, {"test_si_sdri": "5.0"})  # equal is not better
    assert not promote_if_better(client, NAME, v3, "champion", "test_si_sdri").promoted
    v4 = add_version(client, {"test_si_sdri": "6.5"})
    better = promote_if_better(client, NAME, v4, "champion", "test_si_sdri")
    assert better.promoted and better.current == v1 and alias_version(client) == v4
    assert "beats" in client.get_model_version(NAME, v4).tags["promotion.champion"]
    # running the step again on the champion changes nothing
    again = promote_if_better(client, NAME, v4, "champion", "test_si_sdri")
    assert again.promoted and "already names" in again.message and alias_version(client) == v4


def test_lower_is_better_and_incomparable_versions_keep_the_alias(store):
    _, client = store
    assert default_mode("test_real_time_factor") == "min" and default_mode("test_pesq_wb") == "max"
    v1 = add_version(client, {"test_real_time_factor": "0.10"})
    assert promote_if_better(client, NAME, v1, "fast", "test_real_time_factor").promoted
    v2 = add_version(client, {"test_real_time_factor": "0.05"})
    assert promote_if_better(client, NAME, v2, "fast", "test_real_time_factor").promoted
    assert alias_version(client, "fast") == v2
    # no metric on the new version: not promoted, named
    v3 = add_version(client, {})
    d = promote_if_better(client, NAME, v3, "fast", "test_real_time_factor")
    assert not d.promoted and "has no finite test_real_time_factor" in d.message
    # tested on another DB: the numbers do not compare, a person decides
    v4 = add_version(client, {"test_real_time_factor": "0.01", "db_digest": "d2"})
    d = promote_if_better(client, NAME, v4, "fast", "test_real_time_factor")
    assert not d.promoted and "different mixture DBs" in d.message and alias_version(client, "fast") == v2
    # the aliased version lacks the metric: kept, never silently replaced
    client.set_registered_model_alias(NAME, "fast", v3)
    d = promote_if_better(client, NAME, v1, "fast", "test_real_time_factor")
    assert not d.promoted and f"kept fast on v{v3}: it has no" in d.message


def test_workflow_step_runs_only_for_its_metric_and_a_registered_version(store):
    uri, client = store
    v1 = add_version(client, {"test_si_sdri": "3.0"})
    run = {"registered_model": NAME, "registered_version": v1}
    spec = {"alias": "champion", "metric": "test_si_sdri"}
    assert promote_recorded(None, run, {"test_si_sdri": 3.0}, tracking_uri=uri) is None  # off
    assert promote_recorded(spec, run, {"val_si_sdri": 3.0}, tracking_uri=uri) is None  # another split
    assert promote_recorded(spec, {"registered_version": None}, {"test_si_sdri": 3.0}, tracking_uri=uri) is None
    d = promote_recorded(spec, run, {"test_si_sdri": 3.0}, tracking_uri=uri)
    assert d is not None and d.promoted and alias_version(client) == v1


def test_se_models_promote_if_better(store, capsys):
    uri, client = store
    v1 = add_version(client, {"test_pesq_wb": "2.0"})
    v2 = add_version(client, {"test_pesq_wb": "1.5"})
    assert models_main(["--tracking-uri", uri, "promote", NAME, v1, "--if-better", "test_pesq_wb"]) == 0
    assert models_main(["--tracking-uri", uri, "promote", NAME, v2, "--if-better", "test_pesq_wb"]) == 0
    out = capsys.readouterr().out
    assert f"set champion -> v{v1}" in out and f"kept champion on v{v1}" in out
    assert alias_version(client) == v1


def test_config_registry_promote_is_validated():
    assert load_config()["registry"]["promote"] is None  # off by default
    cfg = load_config(overrides={"registry": {"promote": {"alias": "champion", "metric": "test_si_sdri"}}})
    assert cfg["registry"]["promote"]["metric"] == "test_si_sdri"
    with pytest.raises(ConfigError, match=r"registry\.promote"):
        load_config(overrides={"registry": {"promote": {"alias": "champion", "metric": "val_loss"}}})
    with pytest.raises(ConfigError, match=r"registry\.promote"):
        load_config(overrides={"registry": {"promote": {"metric": "test_si_sdri"}}})
