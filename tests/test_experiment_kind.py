"""The workflow's experiments carry MLflow's experiment-kind tag, and ``make mlflow-ui``'s addresses pick the
UI's Machine-learning view (se_lib/tracking/runs.py, urls.py, ui.py): the runs table, not MLflow 3's GenAI
overview. No browser, no server: a sqlite store in ``tmp_path``."""

from __future__ import annotations

import mlflow
import pytest

from se_lib.tracking.runs import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, ensure_experiment_kind, setup_tracking
from se_lib.tracking.ui import experiment_id
from se_lib.tracking.urls import TRAINING_RUNS, run_url, runs_table_url


@pytest.fixture()
def uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root (./mlruns) lands in tmp, not the repo
    return f"sqlite:///{tmp_path}/mlflow.db"


def _config(uri: str, name: str) -> dict:
    return {"experiment": name, "tracking": {"uri": uri}}


def test_a_created_experiment_carries_the_kind_tag(uri):
    exp_id = setup_tracking(_config(uri, "fresh"))
    exp = mlflow.MlflowClient(uri).get_experiment(exp_id)
    assert exp.name == "fresh"
    assert exp.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    assert setup_tracking(_config(uri, "fresh")) == exp_id  # used again: same experiment, tag unchanged
    assert mlflow.MlflowClient(uri).get_experiment(exp_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_an_existing_experiment_gets_the_tag_and_a_users_own_kind_is_kept(uri):
    client = mlflow.MlflowClient(uri)
    old = client.create_experiment("older")  # made before the workflow tagged its experiments
    mine = client.create_experiment("mine", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    assert setup_tracking(_config(uri, "older")) == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert setup_tracking(_config(uri, "mine")) == mine
    assert client.get_experiment(mine).tags[EXPERIMENT_KIND_TAG] == "genai_development"
    assert not ensure_experiment_kind(client, client.get_experiment(mine))


def test_a_refused_tag_is_a_warning(uri, caplog):
    class Refusing:
        def set_experiment_tag(self, *args):
            raise mlflow.exceptions.MlflowException("permission denied")

    exp = mlflow.MlflowClient(uri).get_experiment(mlflow.MlflowClient(uri).create_experiment("ro"))
    assert not ensure_experiment_kind(Refusing(), exp)
    assert "could not tag experiment ro" in caplog.text


def test_the_ui_tags_an_untagged_experiment_of_an_older_store(uri):
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("older")
    assert experiment_id("older", uri) == exp_id and EXPERIMENT_KIND_TAG not in client.get_experiment(exp_id).tags
    assert experiment_id("older", uri, tag_kind=True) == exp_id
    assert client.get_experiment(exp_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_runs_table_addresses_select_the_machine_learning_view():
    base = "http://127.0.0.1:5000/"
    assert runs_table_url(base, "7") == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    assert runs_table_url(base, "7", TRAINING_RUNS) == (
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
        "&searchFilter=tags.%60snakemake.rule%60%20%3D%20%27train%27"
    )
    assert run_url(base, "7", "abc") == "http://127.0.0.1:5000/#/experiments/7/runs/abc"
