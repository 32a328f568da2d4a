"""Cluster side of tracking (se_lib/tracking/cluster.py): the store check of cluster executors and the SLURM
job tags, the latter on real runs in a real MLflow sqlite store. The real scheduler: tests/test_slurm.py."""

import mlflow
import pytest

from se_lib.config import ConfigError, load_config
from se_lib.tracking.cluster import check_store_reachable, is_file_store, slurm_tags
from se_lib.tracking.runs import rule_run, start_invocation_run

SLURM_ENV = {
    "SLURM_JOB_ID": "4711",
    "SLURM_CLUSTER_NAME": "lab",
    "SLURMD_NODENAME": "gpu03",
    "SLURM_JOB_PARTITION": "gpu",
    "SLURM_JOB_GPUS": "1",
}


@pytest.fixture()
def config(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return load_config()


def test_schema_default_is_not_shared(config):
    assert config["tracking"]["shared_single_node"] is False


def test_cluster_executor_refuses_the_local_sqlite_default(config):
    with pytest.raises(ConfigError) as err:
        check_store_reachable(config, "slurm", remote=True)
    msg = str(err.value)
    assert "'sqlite:///mlflow.db'" in msg and "slurm executor" in msg
    for hint in ("tracking.uri", "MLFLOW_TRACKING_URI", "MLflow server URL", "tracking.shared_single_node: true"):
        assert hint in msg
    config["tracking"]["uri"] = "sqlite:////shared/project/mlflow.db"  # any file store, not only the default
    with pytest.raises(ConfigError, match="/shared/project/mlflow.db"):
        check_store_reachable(config, "slurm", remote=True)


def test_local_run_shared_flag_and_server_urls_pass(config, monkeypatch):
    check_store_reachable(config, "local", remote=False)  # the local executor: sqlite is fine
    check_store_reachable(config, None, remote=False)
    config["tracking"]["shared_single_node"] = True
    check_store_reachable(config, "slurm", remote=True)
    config["tracking"]["shared_single_node"] = False
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.lab:5000")
    check_store_reachable(config, "slurm", remote=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    config["tracking"]["uri"] = "https://mlflow.example.org"
    check_store_reachable(config, "slurm", remote=True)


def test_file_store_kinds():
    assert is_file_store("sqlite:///mlflow.db") and is_file_store("file:///tmp/mlruns") and is_file_store("mlruns")
    assert not is_file_store("http://127.0.0.1:5000") and not is_file_store("postgresql://u@db/mlflow")


def test_slurm_tags_from_the_job_environment():
    assert slurm_tags({}) == {}
    assert slurm_tags({"SLURM_CLUSTER_NAME": "lab"}) == {}  # not in a job
    assert slurm_tags(SLURM_ENV) == {
        "slurm.job_id": "4711",
        "slurm.cluster": "lab",
        "slurm.node": "gpu03",
        "slurm.partition": "gpu",
        "slurm.gpus": "1",
    }
    assert slurm_tags({"SLURM_JOB_ID": "12"}) == {"slurm.job_id": "12"}
    # a job step (srun) sees its own GPUs; the batch script's SLURM_JOB_GPUS may have been dropped
    assert slurm_tags({"SLURM_JOB_ID": "12", "SLURM_STEP_GPUS": "1"})["slurm.gpus"] == "1"


def test_rule_and_invocation_runs_carry_the_slurm_job(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("SE_INVOCATION_ID", "inv-slurm")
    for var in SLURM_ENV:
        monkeypatch.delenv(var, raising=False)
    cfg = {"experiment": "exp-slurm", "seed": 1, "models": ["a"]}
    parent = start_invocation_run(cfg)  # the login node: no SLURM job
    for var, value in SLURM_ENV.items():
        monkeypatch.setenv(var, value)
    with rule_run("score", {"model": "a"}, cfg) as run:
        pass
    client = mlflow.MlflowClient(uri)
    tags = client.get_run(run.info.run_id).data.tags
    assert {k: tags[k] for k in slurm_tags()} == slurm_tags() and tags["slurm.job_id"] == "4711"
    assert not any(k.startswith("slurm.") for k in client.get_run(parent).data.tags)
