"""Training callbacks: GPU statistics, audio samples, config/checkpoint artifacts.

* :class:`GPUStatsMonitor` samples utilisation, memory and temperature of one NVIDIA GPU through
  NVML (``nvidia-ml-py``) every ``interval_steps`` optimiser steps (or ``interval_seconds``) and logs
  them through the trainer's loggers as ``system/gpu_*``.  Without an NVIDIA driver it warns once
  and does nothing.
* :class:`AudioSampleLogger` writes the validation examples kept by
  :class:`se_lib.train.module.EnhancementModule` (noisy reference mic, enhanced, target) as wavs
  plus a spectrogram PNG (:func:`se_lib.report.spectrogram.plot_spectrograms`, kHz axis) to MLflow
  under ``audio_samples/sample_<i>/`` whenever the monitored validation loss improves (and/or every N epochs).
* :class:`ConfigArtifactSaver` logs the resolved LightningCLI config as ``config.yaml``.
* :class:`CheckpointRegistrar` logs the best checkpoint as ``checkpoints/best.ckpt`` at the end of
  fitting and registers it as a new version of the registered model ``se-<arch>``.
* :class:`FirstBatchTimer` logs how long a fit took to reach its first training batch
  (:func:`se_lib.workflow.timing_line`; ``bench/bench_startup.py`` reads it).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from se_lib.tracking.training import log_checkpoint, mlflow_logger, register_checkpoint
from se_lib.train.gpu_slots import nvml_handle

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------- GPU stats
def load_nvml() -> Any:
    """The NVML binding module (``pynvml`` from nvidia-ml-py); tests substitute a fake for it."""
    import pynvml

    return pynvml


class GPUStatsMonitor(Callback):
    """Log ``system/gpu_utilization_percentage``, ``system/gpu_memory_usage_percentage`` and
    ``system/gpu_temperature_celsius`` of GPU ``device_index`` during training.

    Args:
        device_index: CUDA index (``cuda:<i>``) of the GPU to watch, mapped through ``CUDA_VISIBLE_DEVICES``
            to NVML's (:func:`se_lib.train.gpu_slots.nvml_handle`), so a job given a GPU slot watches
            its own GPU; ``None`` uses the trainer's CUDA device (0 on CPU).
        interval_steps: log every this many optimiser steps (ignored if ``interval_seconds`` is set).
        interval_seconds: log at most this often (wall clock) instead of counting steps.
    """

    UTIL = "system/gpu_utilization_percentage"
    MEMORY = "system/gpu_memory_usage_percentage"
    TEMPERATURE = "system/gpu_temperature_celsius"

    def __init__(
        self, device_index: int | None = 0, interval_steps: int = 50, interval_seconds: float | None = None
    ) -> None:
        if interval_steps < 1:
            raise ValueError(f"GPUStatsMonitor: interval_steps must be >= 1, got {interval_steps}")
        if interval_seconds is not None and interval_seconds <= 0:
            raise ValueError(f"GPUStatsMonitor: interval_seconds must be > 0, got {interval_seconds}")
        self.device_index = device_index
        self.interval_steps = interval_steps
        self.interval_seconds = interval_seconds
        self._nvml: Any = None
        self._handle: Any = None
        self._disabled = False
        self._warned = False
        self._last_step = -1
        self._last_time = -float("inf")

    @property
    def active(self) -> bool:
        return self._handle is not None and not self._disabled

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            log.warning(message)

    def _resolve_index(self, trainer: pl.Trainer | None) -> int:
        if self.device_index is not None:
            return int(self.device_index)
        device = getattr(getattr(trainer, "strategy", None), "root_device", None)
        if device is not None and device.type == "cuda" and device.index is not None:
            return int(device.index)
        return 0

    def start(self, trainer: pl.Trainer | None = None) -> None:
        """Open NVML for the watched GPU (done at ``setup`` on rank 0); warns once and disables itself
        when NVML or the GPU is unavailable. Idempotent."""
        if self._handle is not None or self._disabled:
            return
        index = self._resolve_index(trainer)
        try:
            nvml = load_nvml()
            nvml.nvmlInit()
            self._handle = nvml_handle(nvml, index)
            self._nvml = nvml
        except Exception as exc:  # no driver / no GPU / bad index: NVMLError subclasses, ImportError
            self._disabled = True
            self._warn_once(f"GPUStatsMonitor: NVML unavailable for GPU {index} ({exc}); GPU statistics are not logged")

    def read_stats(self) -> dict[str, float]:
        """Current statistics of the watched GPU (empty dict when inactive)."""
        if not self.active:
            return {}
        nvml, handle = self._nvml, self._handle
        try:
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            temp = nvml.nvmlDeviceGetTemperature(handle, getattr(nvml, "NVML_TEMPERATURE_GPU", 0))
        except Exception as exc:  # GPU fell off the bus, driver reloaded, ...
            self._disabled = True
            self._warn_once(f"GPUStatsMonitor: reading NVML failed ({exc}); GPU statistics are no longer logged")
            return {}
        return {
            self.UTIL: float(util.gpu),
            self.MEMORY: 100.0 * float(mem.used) / float(mem.total) if mem.total else 0.0,
            self.TEMPERATURE: float(temp),
        }

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self.start(trainer)

    @staticmethod
    def clock() -> float:
        """Seconds on the clock ``interval_seconds`` is measured with (monotonic)."""
        return time.monotonic()

    def _due(self, step: int, now: float) -> bool:
        if step == self._last_step:
            return False
        if self.interval_seconds is not None:
            return now - self._last_time >= self.interval_seconds
        return step % self.interval_steps == 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self.active or not trainer.is_global_zero:
            return
        step, now = int(trainer.global_step), self.clock()
        if not self._due(step, now):
            return
        stats = self.read_stats()
        if not stats:
            return
        self._last_step, self._last_time = step, now
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=step)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._handle is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # pragma: no cover - best effort
                pass
            self._handle = None


# ------------------------------------------------------------------------------------ audio samples
def write_example(folder: Path, example: dict[str, Any], sample_rate: int) -> None:
    """``noisy.wav``, ``enhanced.wav``, ``target.wav`` (PCM-16, jointly scaled below full scale) and
    ``spectrogram.png`` (the report's spectrogram panels of the three signals)."""
    import soundfile as sf

    from se_lib.report.spectrogram import plot_spectrograms

    folder.mkdir(parents=True, exist_ok=True)
    signals = {k: example[k] for k in ("noisy", "enhanced", "target")}
    peak = max(float(s.abs().max()) if s.numel() else 0.0 for s in signals.values())
    gain = 0.99 / peak if peak > 0.99 else 1.0
    for name, x in signals.items():
        sf.write(folder / f"{name}.wav", (x.numpy() * gain).astype(np.float32), sample_rate, subtype="PCM_16")
    plot_spectrograms([(name, x.numpy()) for name, x in signals.items()], sample_rate, folder / "spectrogram.png")


class AudioSampleLogger(Callback):
    """Log validation examples (wavs + kHz spectrogram) to MLflow under ``audio_samples/sample_<i>/``.

    The examples are those kept by ``EnhancementModule`` (``num_val_samples_to_log``). With
    ``on_improvement`` those of the best epoch by ``monitor`` are kept in memory and written once, when
    training ends (also after early stopping, or when it fails): writing them at every improvement
    cost ~3 s of plotting per improved epoch, 15 % of a demo epoch, for files the next improvement
    overwrote. ``every_n_epochs`` (0 disables it) writes that epoch's examples at once. Later writes
    overwrite earlier ones; ``audio_samples/info.json`` says which epoch the files show and why.
    """

    def __init__(
        self, on_improvement: bool = True, every_n_epochs: int = 0, monitor: str = "val_loss", mode: str = "min"
    ) -> None:
        if every_n_epochs < 0:
            raise ValueError(f"AudioSampleLogger: every_n_epochs must be >= 0, got {every_n_epochs}")
        if mode not in ("min", "max"):
            raise ValueError(f"AudioSampleLogger: mode must be 'min' or 'max', got {mode!r}")
        self.on_improvement = on_improvement
        self.every_n_epochs = every_n_epochs
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self.logged_epochs: list[int] = []
        self._pending: tuple[list[dict[str, Any]], dict[str, Any]] | None = None
        self._latest: tuple[list[dict[str, Any]], dict[str, Any]] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "logged_epochs": list(self.logged_epochs)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")
        self.logged_epochs = list(state_dict.get("logged_epochs", []))

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after the epoch's metrics are aggregated into callback_metrics (as for ModelCheckpoint)
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        epoch = int(trainer.current_epoch)
        metric = trainer.callback_metrics.get(self.monitor)
        value = float(metric) if metric is not None else None
        improved = value is not None and np.isfinite(value) and self._improved(value)
        if improved:
            self.best = value
        periodic = self.every_n_epochs > 0 and (epoch + 1) % self.every_n_epochs == 0
        examples = list(getattr(pl_module, "val_examples", []) or [])
        if not examples:
            return
        info = {
            "epoch": epoch,
            "global_step": int(trainer.global_step),
            self.monitor: value,
            "reason": "improvement" if improved else "periodic",
            "mids": [e.get("mid") for e in examples],
        }
        # the module starts a new list each epoch: the kept examples stay as they are
        self._latest = (examples, {**info, "reason": "latest"})
        if periodic:
            self._pending = None
            self._write(trainer, pl_module, examples, info)
        elif self.on_improvement and improved:
            self._pending = (examples, info)

    def _write_pending(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The best epoch's examples if they are still unwritten. A fit resumed after its best epoch (killed
        before the end, :mod:`se_lib.train.resume`) that wrote none and improves no more writes the latest
        epoch's instead (``reason: latest``): the run never ends without examples."""
        if not trainer.is_global_zero:
            return
        if self._pending is None and not self.logged_epochs and self.on_improvement:
            self._pending = self._latest
        if self._pending is not None:
            examples, info = self._pending
            self._pending = None
            self._write(trainer, pl_module, examples, info)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write_pending(trainer, pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._write_pending(trainer, pl_module)

    def _write(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, examples: list[dict[str, Any]], info: dict[str, Any]
    ) -> None:
        logger = mlflow_logger(trainer)
        if logger is None:
            return
        sample_rate = int(getattr(pl_module, "sample_rate", 16000))
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for i, example in enumerate(examples):
                write_example(root / f"sample_{i}", example, sample_rate)
            (root / "info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
            logger.experiment.log_artifacts(logger.run_id, tmp, artifact_path="audio_samples")
        self.logged_epochs.append(int(info["epoch"]))


# ----------------------------------------------------------------------------- config + checkpoints
class FirstBatchTimer(Callback):
    """Logs one :func:`se_lib.workflow.timing_line` (kind ``train_first_batch``) at the first training batch
    of a fit, on the global-zero process: ``startup`` (process start to this callback's creation, when the
    trainer is built: interpreter, imports, parsing, model and data module, MLflow run), ``setup`` (to the
    fit's start), ``work`` (fit start to the first batch: data set-up, loaders, sanity validation),
    in seconds, and ``process_start`` (epoch seconds)."""

    def __init__(self) -> None:
        self.created = time.time()
        self.fit_start: float | None = None
        self.done = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.fit_start = time.time()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.done or not trainer.is_global_zero:
            return
        self.done = True
        from se_lib.workflow import process_start_time, timing_line

        now, started = time.time(), process_start_time()
        fit_start = self.fit_start if self.fit_start is not None else self.created
        log.info(
            timing_line(
                "train_first_batch",
                startup=self.created - started,
                setup=fit_start - self.created,
                work=now - fit_start,
                process_start=started,
            )
        )


class ConfigArtifactSaver(Callback):
    """Log the resolved LightningCLI config (text) as the MLflow artifact ``config.yaml`` at setup,
    plus ``params`` (e.g. the data and trainer settings, which the module's hparams do not hold)."""

    def __init__(
        self, config_text: str, artifact_file: str = "config.yaml", params: dict[str, Any] | None = None
    ) -> None:
        self.config_text = config_text
        self.artifact_file = artifact_file
        self.params = dict(params or {})

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        logger = mlflow_logger(trainer)
        if logger is None or not trainer.is_global_zero:
            return
        logger.experiment.log_text(logger.run_id, self.config_text, self.artifact_file)
        if self.params:
            logger.log_hyperparams(self.params)


def best_checkpoint_callback(trainer: pl.Trainer) -> ModelCheckpoint | None:
    """The trainer's ModelCheckpoint that monitors a metric (falls back to the first one)."""
    callbacks = [cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]
    for cb in callbacks:
        if cb.monitor:
            return cb
    return callbacks[0] if callbacks else None


@dataclass
class RegisteredCheckpoint:
    run_id: str
    best_path: str
    best_score: float | None
    model_name: str | None
    version: str | None


class CheckpointRegistrar(Callback):
    """At the end of fitting, log the best checkpoint as ``checkpoints/best.ckpt`` (+ ``config.yaml``)
    and register ``runs:/<run>/checkpoints`` as a new version of ``model_name`` (if given)."""

    def __init__(self, model_name: str | None, config_text: str | None = None, register: bool = True) -> None:
        self.model_name = model_name
        self.config_text = config_text
        self.register = register
        self.result: RegisteredCheckpoint | None = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.interrupted:
            return
        logger = mlflow_logger(trainer)
        ckpt = best_checkpoint_callback(trainer)
        if logger is None or ckpt is None:
            return
        best = ckpt.best_model_path or ckpt.last_model_path
        if not best or not Path(best).is_file():
            log.warning("CheckpointRegistrar: no checkpoint to log (did validation run?)")
            return
        score = float(ckpt.best_model_score) if ckpt.best_model_score is not None else None
        client, run_id = logger.experiment, logger.run_id
        meta = {
            "original_filename": Path(best).name,
            "monitor": ckpt.monitor,
            "score": score,
            "epoch": int(trainer.current_epoch),
            "global_step": int(trainer.global_step),
        }
        log_checkpoint(client, run_id, best, meta, self.config_text, artifact_path="checkpoints")
        version = None
        if self.register and self.model_name:
            from se_lib.inference.pyfunc import log_pyfunc

            # the registered version is an MLflow pyfunc model (the checkpoint as its artifact): what
            # mlflow.pyfunc.load_model("models:/<name>/<version>") loads and `mlflow models serve` serves
            log_pyfunc(client, run_id, best, artifact_path="model")
            version = register_checkpoint(
                client,
                run_id,
                self.model_name,
                "model",
                tags={"monitor": str(ckpt.monitor), "best_score": str(score)},
            )
            log.info("registered %s version %s from run %s", self.model_name, version, run_id)
        self.result = RegisteredCheckpoint(run_id, best, score, self.model_name, version)
