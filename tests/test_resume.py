"""Resuming a killed training job: same MLflow run, no duplicated or missing metric steps.

A real training job (``se_lib.train.jobs.train_job``, what the Snakemake rule runs) is started in a
subprocess and SIGKILLed after its first ``last.ckpt`` once it has logged steps beyond that
checkpoint; the job is then run again (in-process, to save an interpreter start) and must continue
the same run from ``last.ckpt``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from test_train import tiny_fit_config  # noqa: E402

MAX_EPOCHS = 5
BATCHES_PER_EPOCH = 2  # max_items 4, batch_size 2

HELPERS = '''
import time
from lightning.pytorch.callbacks import Callback


class Throttle(Callback):
    """Slow training down so that the test can kill it between two known points."""

    def __init__(self, seconds: float = 0.5):
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs):
        time.sleep(self.seconds)
'''

JOB = """
import json, sys
from se_lib.train.jobs import train_job

spec = json.load(open(sys.argv[1]))
info = train_job("conv_tasnet", spec["config"], out_dir=spec["out"], config_files=spec["files"],
                 wildcards={"model": "conv_tasnet"}, db_url=spec["url"])
print("RESULT", json.dumps(info))
"""


def workflow_config(tmp_path: Path, max_epochs: int) -> dict:
    from se_lib.config import load_config

    return load_config(
        REPO / "config" / "config.yaml",
        {
            "experiment": "resume_test",
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
            "train": {"overlay": "paper", "max_epochs": max_epochs, "accelerator": "cpu"},
        },
    )


def model_files(tmp_path: Path, root: Path, url: str, throttle: bool) -> list[str]:
    cfg = tiny_fit_config(root, url, tmp_path / "unused")
    del cfg["trainer"]["default_root_dir"]  # the job sets results/models/<model>
    base = tmp_path / "tiny.yaml"
    base.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    if not throttle:
        return [str(base)]
    overlay = tmp_path / "throttle.yaml"
    callbacks = cfg["trainer"]["callbacks"] + [{"class_path": "resume_helpers.Throttle", "init_args": {"seconds": 0.5}}]
    overlay.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}), encoding="utf-8")
    return [str(base), str(overlay)]


def start_job(tmp_path: Path, spec: dict, name: str) -> subprocess.Popen:
    (tmp_path / "resume_helpers.py").write_text(HELPERS, encoding="utf-8")
    (tmp_path / "job.py").write_text(JOB, encoding="utf-8")
    spec_path = tmp_path / f"{name}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen(
        [sys.executable, str(tmp_path / "job.py"), str(spec_path)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def ckpt_step(path: Path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
    except Exception:  # being written
        return None


def test_kill_and_resume_continues_same_run(train_world, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from se_lib.train.jobs import train_job

    root, _, url = train_world
    out = tmp_path / "results" / "models" / "conv_tasnet"
    config = workflow_config(tmp_path, MAX_EPOCHS)
    uri = config["tracking"]["uri"]
    spec = {"config": config, "out": str(out), "url": url, "files": model_files(tmp_path, root, url, True)}
    proc = start_job(tmp_path, spec, "first")
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 400
    step = killed_at = None
    try:
        while time.time() < deadline and proc.poll() is None:
            step = ckpt_step(last) if last.exists() else None
            if step is not None:
                run_id = (out / "checkpoints" / "mlflow_run_id").read_text().strip()
                logged = [m.step for m in MlflowClient(uri).get_metric_history(run_id, "train_loss_step")]
                if logged and max(logged) > step:  # points past the checkpoint exist: the hard case
                    killed_at = max(logged)
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.05)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    log_text = (tmp_path / "first.log").read_text()
    assert killed_at is not None, f"job ended before it could be killed (rc {proc.returncode}):\n{log_text[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "run.json").exists() and last.exists()
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("resume_test")
    killed_run = client.search_runs([exp.experiment_id])[0]
    assert killed_run.info.status == "RUNNING" and killed_run.info.run_id == run_id

    # Run the job again (in this process, which has torch/lightning/mlflow imported already): same
    # model/data config, without the throttle.
    monkeypatch.chdir(tmp_path)
    info = train_job(
        "conv_tasnet",
        config,
        out_dir=out,
        config_files=model_files(tmp_path, root, url, False),
        wildcards={"model": "conv_tasnet"},
        db_url=url,
    )

    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]  # one run, continued
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["se.resumed_from"].endswith("last.ckpt")
    assert run.data.tags["snakemake.rule"] == "train" and run.data.tags["snakemake.wildcards.model"] == "conv_tasnet"
    total = MAX_EPOCHS * BATCHES_PER_EPOCH

    def steps(key):
        return [m.step for m in client.get_metric_history(run_id, key)]

    assert steps("train_loss_step") == list(range(total))  # strictly increasing, unique, no gaps
    epoch_ends = [BATCHES_PER_EPOCH * (e + 1) - 1 for e in range(MAX_EPOCHS)]
    for key in ("train_loss_epoch", "val_loss_epoch", "val_si_sdr", "val_si_sdri"):
        assert steps(key) == epoch_ends, key

    assert json.loads((out / "run.json").read_text()) == json.loads(json.dumps(info))
    assert info["run_id"] == run_id and info["resumed"] is True and info["experiment_id"] == exp.experiment_id
    assert info["registered_model"] == "se-conv_tasnet" and info["registered_version"] == "1"
    assert isinstance(info["best_val_loss"], float) and info["git_commit"]
    assert info["epochs"] == MAX_EPOCHS
    for name in ("best.ckpt", "last.ckpt"):
        assert ckpt_step(out / name) is not None
    assert ckpt_step(out / "last.ckpt") == total
    assert not (out / "checkpoints").exists()  # cleaned after success: a later rerun starts afresh
    versions = client.search_model_versions("name='se-conv_tasnet'")
    assert [v.run_id for v in versions] == [run_id]


def test_stale_state_starts_a_new_run(train_world, tmp_path, monkeypatch):
    """A leftover from a job with another model/data config is not resumed: its run is marked KILLED."""
    from mlflow import MlflowClient

    from se_lib.tracking.runs import setup_tracking
    from se_lib.train.jobs import train_job
    from se_lib.train.resume import write_resume_state

    monkeypatch.chdir(tmp_path)
    root, _, url = train_world
    out = tmp_path / "results" / "models" / "conv_tasnet"
    config = workflow_config(tmp_path, 1)
    uri = config["tracking"]["uri"]
    exp_id = setup_tracking(config)
    client = MlflowClient(uri)
    stale = client.create_run(exp_id, run_name="train[model=conv_tasnet]").info.run_id
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    write_resume_state(out / "checkpoints", stale, "digest-of-another-config")

    info = train_job(
        "conv_tasnet", config, out_dir=out, config_files=model_files(tmp_path, root, url, False), db_url=url
    )
    assert info["run_id"] != stale and info["resumed"] is False
    assert client.get_run(stale).info.status == "KILLED"
    assert client.get_run(info["run_id"]).info.status == "FINISHED"
    assert (out / "best.ckpt").is_file() and not (out / "checkpoints").exists()
