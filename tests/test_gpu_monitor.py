"""GPUStatsMonitor: NVML statistics logged through the trainer's loggers (fake NVML), and the real
no-GPU path of this machine (NVML cannot initialise: one warning, nothing logged, training runs)."""

from __future__ import annotations

import types
import warnings

import pytest
import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader

from se_lib.train import callbacks as cb
from se_lib.train.callbacks import GPUStatsMonitor
from se_lib.train.module import EnhancementModule
from se_lib.train.trainers import bare_trainer

STAT_KEYS = {GPUStatsMonitor.UTIL, GPUStatsMonitor.MEMORY, GPUStatsMonitor.TEMPERATURE}


class RecordingLogger(Logger):
    """A real Lightning logger that keeps what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> str:
        return "0"

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.records.append((step, dict(metrics)))

    def system_records(self) -> list[tuple[int | None, dict[str, float]]]:
        return [(s, m) for s, m in self.records if any(k.startswith("system/") for k in m)]


def fake_nvml(
    util: int = 37,
    used: int = 2 << 30,
    total: int = 8 << 30,
    temp: int = 61,
    fail_init: bool = False,
    fail_read_after: int | None = None,
) -> types.SimpleNamespace:
    calls = {"init": 0, "handle": [], "reads": 0, "shutdown": 0}

    class NVMLError(Exception):
        pass

    def nvmlInit():
        calls["init"] += 1
        if fail_init:
            raise NVMLError("Driver Not Loaded")

    def nvmlDeviceGetHandleByIndex(index):
        calls["handle"].append(index)
        return f"handle{index}"

    def nvmlDeviceGetUtilizationRates(handle):
        calls["reads"] += 1
        if fail_read_after is not None and calls["reads"] > fail_read_after:
            raise NVMLError("GPU is lost")
        return types.SimpleNamespace(gpu=util, memory=10)

    def nvmlDeviceGetMemoryInfo(handle):
        return types.SimpleNamespace(used=used, total=total, free=total - used)

    def nvmlDeviceGetTemperature(handle, sensor):
        assert sensor == 0
        return temp

    def nvmlShutdown():
        calls["shutdown"] += 1

    return types.SimpleNamespace(
        NVML_TEMPERATURE_GPU=0,
        NVMLError=NVMLError,
        nvmlInit=nvmlInit,
        nvmlDeviceGetHandleByIndex=nvmlDeviceGetHandleByIndex,
        nvmlDeviceGetUtilizationRates=nvmlDeviceGetUtilizationRates,
        nvmlDeviceGetMemoryInfo=nvmlDeviceGetMemoryInfo,
        nvmlDeviceGetTemperature=nvmlDeviceGetTemperature,
        nvmlShutdown=nvmlShutdown,
        calls=calls,
    )


class Identityish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))
        self.ref_mic = 0

    def forward(self, noisy):
        return noisy[:, 0] * self.gain


def loader(n_batches: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n_batches):
        target = torch.randn(2, 400, generator=g)
        batches.append(
            {
                "noisy": target[:, None].repeat(1, 2, 1) + 0.1 * torch.randn(2, 2, 400, generator=g),
                "target": target,
                "lengths": torch.tensor([400, 300]),
                "mid": ["a", "b"],
                "meta": [{}, {}],
            }
        )
    return DataLoader(batches, batch_size=None)


def fit(monitor: GPUStatsMonitor, steps: int = 6) -> RecordingLogger:
    logger = RecordingLogger()
    trainer = bare_trainer(
        max_steps=steps, logger=logger, callbacks=[monitor], limit_val_batches=0, log_every_n_steps=1
    )
    trainer.fit(EnhancementModule(Identityish()), train_dataloaders=loader(steps))
    return logger


def test_logs_stats_every_interval(monkeypatch):
    nvml = fake_nvml()
    monkeypatch.setattr(cb, "load_nvml", lambda: nvml)
    monitor = GPUStatsMonitor(device_index=1, interval_steps=2)
    logger = fit(monitor, steps=6)
    records = logger.system_records()
    assert [s for s, _ in records] == [2, 4, 6]
    for _, metrics in records:
        assert metrics == {GPUStatsMonitor.UTIL: 37.0, GPUStatsMonitor.MEMORY: 25.0, GPUStatsMonitor.TEMPERATURE: 61.0}
    assert nvml.calls["init"] == 1 and nvml.calls["handle"] == [1]
    assert nvml.calls["shutdown"] == 1  # teardown releases NVML


def test_interval_seconds(monkeypatch):
    nvml = fake_nvml()
    monkeypatch.setattr(cb, "load_nvml", lambda: nvml)
    clock = iter([0.0, 0.5, 1.2, 1.3])  # wall-clock seconds seen at the end of steps 1..4
    monitor = GPUStatsMonitor(interval_seconds=1.0)
    monitor.clock = lambda: next(clock)
    logger = fit(monitor, steps=4)
    # due at step 1 (first), not at 2 (0.5 s later), again at step 3 (1.2 s after the first log)
    assert [s for s, _ in logger.system_records()] == [1, 3]


def test_read_failure_warns_once_and_stops(monkeypatch):
    nvml = fake_nvml(fail_read_after=1)
    monkeypatch.setattr(cb, "load_nvml", lambda: nvml)
    monitor = GPUStatsMonitor(interval_steps=1)
    with pytest.warns(RuntimeWarning, match="reading NVML failed") as record:
        logger = fit(monitor, steps=5)
    assert len([w for w in record if "NVML" in str(w.message)]) == 1
    assert [s for s, _ in logger.system_records()] == [1]
    assert not monitor.active


def test_fake_init_failure_is_quiet_after_one_warning(monkeypatch):
    nvml = fake_nvml(fail_init=True)
    monkeypatch.setattr(cb, "load_nvml", lambda: nvml)
    monitor = GPUStatsMonitor()
    with pytest.warns(RuntimeWarning, match="NVML unavailable") as record:
        monitor.start()
        monitor.start()
        logger = fit(monitor, steps=3)
    assert len([w for w in record if "NVML" in str(w.message)]) == 1
    assert nvml.calls["init"] == 1
    assert logger.system_records() == []


def test_invalid_arguments():
    with pytest.raises(ValueError, match="interval_steps"):
        GPUStatsMonitor(interval_steps=0)
    with pytest.raises(ValueError, match="interval_seconds"):
        GPUStatsMonitor(interval_seconds=0)


def _machine_has_nvml_gpu() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


def test_real_nvml_without_gpu_warns_once_and_training_runs():
    """This machine's real NVML (nvidia-ml-py): no driver, so one warning and no system metrics."""
    if _machine_has_nvml_gpu():
        pytest.skip("this machine has an NVIDIA GPU; the no-GPU path cannot be exercised for real")
    monitor = GPUStatsMonitor(interval_steps=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        logger = fit(monitor, steps=3)
    nvml_warnings = [w for w in record if "GPUStatsMonitor" in str(w.message)]
    assert len(nvml_warnings) == 1 and issubclass(nvml_warnings[0].category, RuntimeWarning)
    assert logger.system_records() == []
    assert any("train_loss_step" in m for _, m in logger.records)  # training itself ran and logged
    assert monitor.read_stats() == {}


def test_stats_reach_mlflow(monkeypatch, tmp_path):
    """Through the real MLflow logger used for training: a metric history under system/."""
    from mlflow import MlflowClient

    from se_lib.tracking.training import build_logger

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    monkeypatch.setattr(cb, "load_nvml", lambda: fake_nvml(util=80))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = build_logger("gpu_monitor_test", uri, {"mlflow.runName": "gpu"})
    trainer = bare_trainer(
        max_steps=4,
        logger=logger,
        callbacks=[GPUStatsMonitor(interval_steps=2)],
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(EnhancementModule(Identityish()), train_dataloaders=loader(4))
    history = MlflowClient(uri).get_metric_history(logger.run_id, GPUStatsMonitor.UTIL)
    assert [(m.step, m.value) for m in history] == [(2, 80.0), (4, 80.0)]
