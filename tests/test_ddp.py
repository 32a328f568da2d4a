"""One training job over two processes: Lightning DDP (gloo on the CPU), as ``train.devices: 2``.

The workflow's training job (:func:`se_lib.train.jobs.train_job`) runs in a subprocess whose script
Lightning's ``ddp`` launcher starts again as rank 1. A probe callback records what every rank saw and,
in the first run, SIGKILLs every rank at the start of epoch 1 (a crashed job: ``last.ckpt`` of epoch 0
is on disk). The second run resumes it. Checked: both runs had two ranks; one MLflow run (FINISHED,
resumed) whose metrics were logged once per step, each epoch split across the ranks; one best and
one last checkpoint; one registered version; the job's outputs written once.
"""

from __future__ import annotations

import importlib
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

from test_resume import JOB, workflow_config  # noqa: E402
from test_train import tiny_fit_config  # noqa: E402

EPOCHS = 2
# max_items 4, batch_size 2, two ranks: the DistributedSampler gives each rank 2 items, one batch
STEPS_PER_EPOCH = 1

PROBE = '''
import json, os, signal
from pathlib import Path
from lightning.pytorch.callbacks import Callback


class RankProbe(Callback):
    """Record rank, world size and pid at the start of training; SIGKILL this rank at the start of
    epoch ``crash_at_epoch`` (-1: never)."""

    def __init__(self, folder: str, tag: str, crash_at_epoch: int = -1):
        self.folder, self.tag, self.crash_at_epoch = Path(folder), tag, crash_at_epoch

    def on_train_start(self, trainer, pl_module):
        seen = {"rank": trainer.global_rank, "world_size": trainer.world_size, "pid": os.getpid(),
                "strategy": type(trainer.strategy).__name__, "backend": trainer.strategy.process_group_backend}
        (self.folder / f"{self.tag}-rank{trainer.global_rank}.json").write_text(json.dumps(seen))

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.crash_at_epoch:
            os.kill(os.getpid(), signal.SIGKILL)
'''


def model_files(tmp_path: Path, root: Path, url: str, tag: str, crash_at_epoch: int) -> list[str]:
    cfg = tiny_fit_config(root, url, tmp_path / "unused", callbacks=[])
    del cfg["trainer"]["default_root_dir"]  # the job sets it
    base = tmp_path / "tiny.yaml"
    base.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    probe = {
        "class_path": "ddp_probe.RankProbe",
        "init_args": {"folder": str(tmp_path), "tag": tag, "crash_at_epoch": crash_at_epoch},
    }
    overlay = tmp_path / f"{tag}.yaml"  # trainer settings: not part of the resume digest
    callbacks = [{"class_path": "se_lib.train.callbacks.AudioSampleLogger"}, probe]
    overlay.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}), encoding="utf-8")
    return [str(base), str(overlay)]


def run_job(tmp_path: Path, spec: dict, name: str) -> tuple[subprocess.CompletedProcess, str]:
    (tmp_path / "ddp_probe.py").write_text(PROBE, encoding="utf-8")
    (tmp_path / "job.py").write_text(JOB, encoding="utf-8")
    spec_path = tmp_path / f"{name}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    for key in ("MLFLOW_TRACKING_URI", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_NTASKS"):
        env.pop(key, None)
    log = tmp_path / f"{name}.log"
    with open(log, "w") as fh:
        proc = subprocess.run(
            [sys.executable, str(tmp_path / "job.py"), str(spec_path)],
            cwd=tmp_path,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    return proc, log.read_text()


def probes(tmp_path: Path, tag: str) -> list[dict]:
    return [json.loads((tmp_path / f"{tag}-rank{r}.json").read_text()) for r in range(2)]


def wait_gone(pid: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"rank process {pid} still alive")


def test_ddp_two_processes_one_run_one_checkpoint_resumable(train_world, tmp_path):
    from mlflow import MlflowClient

    root, _, url = train_world
    out = tmp_path / "results" / "models" / "conv_tasnet"
    config = workflow_config(tmp_path, EPOCHS)
    config["train"].update({"devices": 2, "strategy": "ddp"})
    uri = config["tracking"]["uri"]

    # 1: every rank dies at the start of epoch 1
    spec = {"config": config, "out": str(out), "url": url, "files": model_files(tmp_path, root, url, "crash", 1)}
    proc, text = run_job(tmp_path, spec, "crash")
    assert proc.returncode == -signal.SIGKILL, text[-4000:]
    first = probes(tmp_path, "crash")
    assert [(p["rank"], p["world_size"], p["backend"]) for p in first] == [(0, 2, "gloo"), (1, 2, "gloo")]
    assert first[0]["strategy"] == "DDPStrategy"
    wait_gone(first[1]["pid"])
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert len(ckpts) == 2 and ckpts[0].startswith("best-epoch000") and ckpts[1] == "last.ckpt", ckpts
    assert int(torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]) == STEPS_PER_EPOCH
    assert not (out / "run.json").exists()

    # 2: the job again resumes the same run and finishes it
    spec["files"] = model_files(tmp_path, root, url, "resume", -1)
    proc, text = run_job(tmp_path, spec, "resume")
    assert proc.returncode == 0, text[-4000:]
    second = probes(tmp_path, "resume")
    assert [(p["rank"], p["world_size"]) for p in second] == [(0, 2), (1, 2)]
    assert second[0]["pid"] != second[1]["pid"]
    results = [json.loads(line.split(" ", 1)[1]) for line in text.splitlines() if line.startswith("RESULT ")]
    assert sorted(r.get("rank", 0) for r in results) == [0, 1]  # both ranks ran the job; rank 0 wrote
    info = next(r for r in results if "run_id" in r)
    assert info["resumed"] is True and info["world_size"] == 2 and info["epochs"] == EPOCHS

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("resume_test")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [info["run_id"]]  # one run for both ranks and both jobs
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["se.resumed_from"].endswith("last.ckpt")
    assert run.data.params["trainer/devices"] == "2" and run.data.params["trainer/strategy"] == "ddp"

    def steps(key):
        return [m.step for m in client.get_metric_history(info["run_id"], key)]

    # logged once (rank 0), one point per optimiser step: each epoch's batches were split across ranks
    assert steps("train_loss_step") == list(range(EPOCHS * STEPS_PER_EPOCH))
    for key in ("train_loss_epoch", "val_loss", "val_si_sdr", "val_si_sdri"):
        assert steps(key) == [STEPS_PER_EPOCH * (e + 1) - 1 for e in range(EPOCHS)], key
    artifacts = {a.path for a in client.list_artifacts(info["run_id"], "checkpoints")}
    assert {"checkpoints/best.ckpt", "checkpoints/config.yaml"} <= artifacts
    assert {a.path for a in client.list_artifacts(info["run_id"])} >= {"config.yaml", "audio_samples", "checkpoints"}
    assert [v.run_id for v in client.search_model_versions("name='se-conv_tasnet'")] == [info["run_id"]]
    assert json.loads((out / "run.json").read_text())["run_id"] == info["run_id"]
    assert int(torch.load(out / "last.ckpt", weights_only=True)["global_step"]) == EPOCHS * STEPS_PER_EPOCH
    assert (out / "best.ckpt").is_file() and not (out / "checkpoints").exists()


def test_slurm_step_with_one_task_lets_lightning_start_the_ranks(monkeypatch):
    """The SLURM plugin runs a job as one task (``srun -n1``): with ``train.devices`` 2 the job names
    Lightning's own environment, which starts the second rank itself; Lightning alone would take the
    step's single SLURM task as the whole world."""
    from lightning.pytorch import Trainer

    from se_lib.train.jobs import cluster_args

    step = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_PROCID": "0"}
    step |= {"SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost"}
    assert cluster_args(2, step)[0] == "--trainer.plugins"
    assert cluster_args(2, {**step, "SLURM_NTASKS": "2"}) == [] and cluster_args(1, step) == []
    assert cluster_args(2, {}) == []
    for key, value in step.items():
        monkeypatch.setenv(key, value)
    module, name = cluster_args(2)[1].rsplit(".", 1)
    kwargs = {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "logger": False, "enable_checkpointing": False}
    ours = Trainer(plugins=[getattr(importlib.import_module(module), name)()], **kwargs).strategy.cluster_environment
    assert type(ours).__name__ == "LightningEnvironment" and not ours.creates_processes_externally
    plain = Trainer(**kwargs).strategy.cluster_environment
    assert type(plain).__name__ == "SLURMEnvironment" and plain.creates_processes_externally
    assert plain.world_size() == 1  # what Lightning would have trained with
