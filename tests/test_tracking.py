"""Tracking helpers against a real MLflow sqlite store: tags, diff artifact, parallel first use."""

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from fresh import modules_after
from se_lib.tracking.git import git_info
from se_lib.tracking.runs import rule_run, run_name, standard_tags

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root (./mlruns) lands in tmp, not the repo
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("SE_INVOCATION_ID", "inv-123")
    return uri


def test_run_name_orders_wildcards():
    assert run_name("train", {"model": "dprnn"}) == "train[model=dprnn]"
    assert run_name("corpus", {}) == "corpus"


def test_git_info_matches_git():
    info = git_info()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert info.commit == head.stdout.strip()
    assert info.tags()["se.git.dirty"] in {"true", "false"}


def test_git_info_outside_a_checkout(tmp_path):
    info = git_info(tmp_path)
    assert info.commit == "unknown" and info.dirty


def test_rule_run_carries_design_tags(store):
    cfg = {"experiment": "exp-a", "seed": 3}
    with rule_run("score", {"model": "dprnn", "split": "test"}, cfg, params={"a": {"b": 1}}) as run:
        mlflow.log_metric("x", 1.0)
    got = mlflow.MlflowClient(store).get_run(run.info.run_id)
    tags = got.data.tags
    assert tags["mlflow.runName"] == "score[model=dprnn,split=test]"
    assert tags["snakemake.rule"] == "score"
    assert tags["snakemake.wildcards.split"] == "test"
    assert tags["se.invocation_id"] == "inv-123"
    for key in (
        "mlflow.source.git.commit",
        "se.git.dirty",
        "se.env.uv_lock_sha256",
        "se.env.python",
        "se.env.torch",
        "se.env.cuda",
        "se.env.device",
        "se.db_digest",
    ):
        assert tags[key], key
    assert got.data.params == {"a.b": "1"}
    exp = mlflow.MlflowClient(store).get_experiment(got.info.experiment_id)
    assert exp.name == "exp-a"
    arts = [a.path for a in mlflow.MlflowClient(store).list_artifacts(run.info.run_id)]
    assert ("git" in arts) == (tags["se.git.dirty"] == "true")


def _worker(args):
    uri, i = args
    os.chdir(uri[len("sqlite:///") :].rsplit("/", 1)[0])
    os.environ["MLFLOW_TRACKING_URI"] = uri
    with rule_run("job", {"i": i}, {"experiment": "parallel"}) as run:
        mlflow.log_metric("i", i)
    return run.info.run_id


@pytest.mark.slow  # parallel processes each importing MLflow and creating the store
def test_parallel_first_use_of_a_fresh_store_loses_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path}/fresh.db"
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        ids = pool.map(_worker, [(uri, i) for i in range(4)])
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("parallel")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(ids)
    assert sorted(r.data.metrics["i"] for r in runs) == [0, 1, 2, 3]


def test_standard_tags_without_config():
    tags = standard_tags("cli")
    assert tags["mlflow.runName"] == "cli" and tags["mlflow.source.name"] == "se"


def test_training_logger_params_resume_and_run_helpers(store, tmp_path, caplog):
    """The training job's MLflow side on a real store: parameters keyed as Lightning's MLFlowLogger
    keys them, a resumed run keeps stored parameters and skips recomputed metric steps, and the run
    lookup / kill / log attachment helpers."""
    from argparse import Namespace

    from se_lib.tracking.training import (
        attach_log_files,
        build_logger,
        flatten_hparams,
        log_checkpoint,
        mark_run_killed,
        register_checkpoint,
        run_is_active,
    )

    params = {
        "_instantiator": "lightning.pytorch.cli.x",
        "lr": 1e-3,
        "net": {"class_path": "a.B", "init_args": {"N": 64}},
        "ns": Namespace(k=1),
        "groups": [{"a": 1}, {"b": 2}],
        "sizes": [1, 2],
    }
    flat = flatten_hparams(params)
    assert flat == {
        "lr": 1e-3,
        "net/class_path": "a.B",
        "net/init_args/N": 64,
        "ns/k": 1,
        "groups/0/a": 1,
        "groups/1/b": 2,
        "sizes": [1, 2],
    }
    client = mlflow.MlflowClient(store)
    logger = build_logger("training_test", store, {"mlflow.runName": "fit", "se.model": "m"})
    logger.log_hyperparams(params)
    logger.log_metrics({"val_loss": 1.0}, step=3)
    run_id = logger.run_id
    assert client.get_run(run_id).data.params == {k: str(v) for k, v in flat.items()}
    assert client.get_run(run_id).info.run_name == "fit"

    resumed = build_logger("training_test", store, {"mlflow.runName": "ignored", "se.model": "m2"}, run_id=run_id)
    assert resumed.resumed and resumed.run_id == run_id
    with caplog.at_level("WARNING", logger="se_lib.tracking.training"):
        resumed.log_hyperparams({**params, "lr": 5e-4, "extra": 7})
    assert "parameter lr was '0.001', now '0.0005'" in caplog.text
    resumed.log_metrics({"val_loss": 0.5}, step=3)  # the interrupted epoch recomputed: already stored
    resumed.log_metrics({"val_loss": 0.4}, step=4)
    run = client.get_run(run_id)
    assert run.data.params["lr"] == "0.001" and run.data.params["extra"] == "7"
    assert run.data.tags["se.model"] == "m2" and run.info.run_name == "fit" and run.info.status == "RUNNING"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "val_loss")] == [(3, 1.0), (4, 0.4)]

    log_file = tmp_path / "train.log"
    log_file.write_text("done\n")
    attach_log_files(store, run_id, [str(log_file), str(tmp_path / "missing.log"), ""])
    assert [a.path for a in client.list_artifacts(run_id, "logs")] == ["logs/train.log"]
    ckpt = tmp_path / "best-epoch003.ckpt"
    ckpt.write_bytes(b"weights")
    log_checkpoint(client, run_id, ckpt, {"score": 0.4}, "model: {}\n")
    assert sorted(a.path for a in client.list_artifacts(run_id, "checkpoints")) == [
        "checkpoints/best.ckpt",
        "checkpoints/best.json",
        "checkpoints/config.yaml",
    ]
    local = Path(client.download_artifacts(run_id, "checkpoints", str(tmp_path / "dl")))
    assert (local / "best.ckpt").read_bytes() == b"weights"
    assert register_checkpoint(client, run_id, "se-m") == "1"
    assert register_checkpoint(client, run_id, "se-m", tags={"best_score": "0.4"}) == "2"  # model exists
    assert client.get_run(run_id).data.tags["se.registered_model"] == "se-m/2"
    assert run_is_active(store, run_id) and not run_is_active(store, "0" * 32)
    mark_run_killed(store, run_id)
    assert client.get_run(run_id).info.status == "KILLED"
    mark_run_killed(store, "0" * 32)  # gone: no error


# ---------------------------------------------------------------------------------------------------
# Lineage: clean/dirty checks, the invocation's parent run, dataset inputs, registry tags.


def _git(repo, *args):
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=True).stdout


def test_require_clean_names_the_dirty_files(tmp_path):
    from se_lib.tracking.git import DirtyTreeError, require_clean

    repo, plain = tmp_path / "repo", tmp_path / "plain"
    repo.mkdir()
    plain.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("results/\n")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "init")
    (repo / "results").mkdir()
    (repo / "results" / "out.txt").write_text("ignored\n")
    info = require_clean(repo)
    assert not info.dirty and info.files == () and info.commit == _git(repo, "rev-parse", "HEAD").strip()
    (repo / "a.py").write_text("x = 2\n")
    (repo / "new.txt").write_text("untracked\n")
    with pytest.raises(DirtyTreeError, match=r"require_clean_git: true.*not clean") as err:
        require_clean(repo)
    assert " M a.py" in str(err.value) and "?? new.txt" in str(err.value)
    info = git_info(repo)
    assert "+x = 2" in info.diff and "#   new.txt" in info.diff
    with pytest.raises(DirtyTreeError, match="is not a git checkout"):
        require_clean(plain)


def test_dvc_lock_rewritten_by_dvc_does_not_make_the_tree_dirty(tmp_path):
    """`dvc repro` rewrites the tracked dvc.lock after each stage: that is recorded, not counted as dirty."""
    from se_lib.tracking.git import git_info

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "dvc.lock").write_text("schema: '2.0'\n")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "init")
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    info = git_info(repo)
    assert not info.dirty and info.files == () and info.diff == ""
    assert info.tags()["se.git.dvc_lock_modified"] == "true" and info.tool_files == (" M dvc.lock",)
    (repo / "a.py").write_text("x = 2\n")
    info = git_info(repo)
    assert info.dirty and info.files == (" M a.py",)
    assert "+x = 2" in info.diff and "dvc.lock" not in info.diff


def test_invocation_parent_run_nests_rule_runs(store):
    from se_lib.tracking.runs import end_invocation_run, invocation_parent, start_invocation_run

    cfg = {"experiment": "exp-parent", "seed": 1, "models": ["a"]}
    with rule_run("early", {}, cfg):  # no parent run yet: no nesting tag
        pass
    parent = start_invocation_run(cfg, configfiles=["config/tiny.yaml"], targets=["all"])
    assert start_invocation_run(cfg) == parent == invocation_parent(cfg)  # once per invocation
    with rule_run("score", {"model": "a"}, cfg) as run:
        pass
    client = mlflow.MlflowClient(store)
    assert client.get_run(run.info.run_id).data.tags["mlflow.parentRunId"] == parent
    got = client.get_run(parent)
    assert got.data.tags["se.run_kind"] == "invocation" and got.data.tags["se.invocation_id"] == "inv-123"
    assert got.data.tags["se.configfiles"] == "config/tiny.yaml" and got.data.params["models"] == '["a"]'
    assert got.info.status == "RUNNING" and got.info.run_name == "snakemake inv-123"
    early = client.search_runs([got.info.experiment_id], "tags.`snakemake.rule` = 'early'")[0]
    assert "mlflow.parentRunId" not in early.data.tags
    assert end_invocation_run(cfg, success=False) == parent
    assert client.get_run(parent).info.status == "FAILED"
    assert invocation_parent(cfg, "another-invocation") is None


_START_PARENT = """
import os, sys, time
from se_lib.tracking.runs import start_invocation_run
os.environ["SE_INVOCATION_ID"] = sys.argv[1]
print(start_invocation_run({"experiment": "exp-killed", "seed": 1}), flush=True)
time.sleep(600)  # a snakemake that hangs until it is killed
"""


@pytest.mark.slow  # MLflow in fresh processes
def test_a_killed_invocations_parent_run_is_closed_by_the_next_one(store, tmp_path):
    """SIGKILL leaves no onerror: the next invocation on this host marks the orphan parent KILLED, and
    leaves the parent of a still-running invocation alone."""
    import signal

    from se_lib.tracking.runs import start_invocation_run

    script = tmp_path / "start_parent.py"
    script.write_text(_START_PARENT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {}
    for name in ("killed", "alive"):
        procs[name] = subprocess.Popen(
            [sys.executable, str(script), f"inv-{name}"], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
        )
    try:
        parents = {name: p.stdout.readline().strip() for name, p in procs.items()}
        procs["killed"].send_signal(signal.SIGKILL)
        procs["killed"].wait(30)
        client = mlflow.MlflowClient(store)
        assert client.get_run(parents["killed"]).info.status == "RUNNING"
        os.environ["SE_INVOCATION_ID"] = "inv-next"  # monkeypatched by `store`, restored after the test
        start_invocation_run({"experiment": "exp-killed", "seed": 1})
        killed = client.get_run(parents["killed"])
        assert killed.info.status == "KILLED" and "abandoned" in killed.data.tags["se.invocation.end"]
        assert client.get_run(parents["alive"]).info.status == "RUNNING"
    finally:
        for p in procs.values():
            p.kill()
            p.wait(30)


def test_resumed_training_run_keeps_its_parent_and_invocation(store):
    from se_lib.tracking.training import build_logger

    first = {"mlflow.runName": "train[model=m]", "mlflow.parentRunId": "p1", "se.invocation_id": "inv-1", "x": "1"}
    run_id = build_logger("resume_parent", store, first).run_id
    again = {**first, "mlflow.parentRunId": "p2", "se.invocation_id": "inv-2", "x": "2"}
    build_logger("resume_parent", store, again, run_id=run_id)
    tags = mlflow.MlflowClient(store).get_run(run_id).data.tags
    assert (tags["mlflow.parentRunId"], tags["se.invocation_id"], tags["x"]) == ("p1", "inv-1", "2")
    assert tags["se.resumed_in_invocation"] == "inv-2"


def test_dataset_inputs_name_split_digest_and_source(store):
    from se_lib.tracking.training import DATASET_DIGEST_CHARS, dataset_source, log_dataset_inputs

    digest = "ab" * 32
    url = "sqlite:///results/db/mixtures.sqlite"
    client = mlflow.MlflowClient(store)
    exp = client.create_experiment("datasets")
    run_id = client.create_run(exp).info.run_id
    log_dataset_inputs(store, run_id, url, digest, {"train": 16, "val": 4, "test": 3})
    log_dataset_inputs(store, run_id, url, digest, {"train": 16, "val": 4, "test": 3})  # resumed: no duplicate
    inputs = client.get_run(run_id).inputs.dataset_inputs
    got = {
        i.dataset.name: (i.dataset.digest, {t.key: t.value for t in i.tags}, i.dataset.source, i.dataset.profile)
        for i in inputs
    }
    assert len(inputs) == 3 and set(got) == {"mixtures-train", "mixtures-val", "mixtures-test"}
    d, tags, source, profile = got["mixtures-val"]
    assert DATASET_DIGEST_CHARS == 36 and d == digest[:36]
    assert tags == {"mlflow.data.context": "val", "se.db_digest": digest}
    assert source == '{"uri": "sqlite:///results/db/mixtures.sqlite"}' and profile == '{"num_rows": 4}'
    kind, shown = dataset_source("postgresql+psycopg://se:secret@db.example:5432/mix")
    assert kind == "external" and "secret" not in shown and "db.example:5432/mix" in shown


def test_registered_version_carries_lineage_and_scores(store, caplog):
    import pandas as pd

    from se_lib.tracking.runs import record_scores_on_training_run
    from se_lib.tracking.training import register_checkpoint

    client = mlflow.MlflowClient(store)
    exp = client.create_experiment("registry")
    tags = {"mlflow.source.git.commit": "c0ffee", "se.git.dirty": "false", "se.db_digest": "d1", "se.experiment": "e"}
    run_id = client.create_run(exp, tags=tags).info.run_id
    version = register_checkpoint(client, run_id, "se-lineage", tags={"best_score": "0.5"})
    summary = pd.DataFrame({"mean": [3.25]}, index=pd.Index(["si_sdr"], name="metric"))
    train_run = {"run_id": run_id, "registered_model": "se-lineage", "registered_version": version}
    logged = record_scores_on_training_run(train_run, summary, "test", tracking_uri=store)
    assert logged == {"test_si_sdr": 3.25} and client.get_run(run_id).data.metrics["test_si_sdr"] == 3.25
    got = client.get_model_version("se-lineage", version).tags
    assert got == {
        "git_commit": "c0ffee",
        "git_dirty": "false",
        "db_digest": "d1",
        "experiment": "e",
        "best_score": "0.5",
        "test_si_sdr": "3.25",
    }
    # results restored by `make pull` into a clone without the original store, then re-scored
    gone = {**train_run, "run_id": "0" * 32}
    assert record_scores_on_training_run(gone, summary, "test", tracking_uri=store) == {}
    assert f"training run {'0' * 32} is not in the tracking store" in caplog.text


def test_environment_tags_name_torch_and_device_without_importing_torch():
    """A score or report job runs no network: its run's environment tags (torch version, CUDA build, device) are
    read without the 2-4 s of ``import torch`` and agree with what torch itself says."""
    out, loaded = modules_after(
        "import json\nfrom se_lib.tracking.env import environment_tags\nprint(json.dumps(environment_tags()))",
        ["torch"],
    )
    assert loaded == []
    tags = json.loads(out)
    out, _ = modules_after(
        "import json, platform, torch\n"
        "gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None\n"
        "print(json.dumps([torch.__version__, torch.version.cuda or 'none', gpu]))",
        [],
    )
    version, cuda, gpu = json.loads(out)
    assert (tags["se.env.torch"], tags["se.env.cuda"]) == (version, cuda)
    assert tags["se.env.cuda_available"] == ("true" if gpu else "false")
    if gpu:
        assert tags["se.env.device"] == gpu
    else:
        assert tags["se.env.device"].startswith("cpu (")
