"""Training progress a person can follow in the rule's log: one line per epoch and why training stopped.

:class:`TrainingProgress` (a Lightning callback; the ``se`` command always adds it,
section ``live_metrics:`` of config/models/_shared.yaml) writes, on the
global-zero process only, after every training epoch (validation included)::

    [progress] epoch 3/20  train_loss -4.8120  val_loss -5.3010  val_si_sdr 5.30 dB  [val_pesq 1.312 ...]
               lr 3.00e-03  elapsed 0:01:12  eta 0:06:48          (one line; wrapped here)

and at the end one line saying why training stopped::

    [progress] stopped: early stopping at epoch 9 (val_loss did not improve for 5 epochs; best -6.102)
    [progress] stopped: max_epochs reached (20 epochs)
    [progress] stopped: resumed run was already done (20/20 epochs); nothing to train

Epochs are counted from 1 here (Lightning's ``current_epoch`` + 1; MLflow's ``epoch`` metric counts
from 0). ``elapsed`` is the wall time since this process started fitting; ``eta`` is the mean duration
of this process's epochs times the epochs left to ``max_epochs`` (an upper bound when early stopping
ends the run sooner). Values the epoch did not log (e.g. no validation that epoch) show as ``-``.
Lines go to standard output, which the workflow's train job sends to the rule's log file
(:func:`se_lib.workflow.log_to_file`); :attr:`TrainingProgress.lines` keeps them for the caller.
"""

from __future__ import annotations

import math
import sys
import time
from datetime import timedelta
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping

__all__ = ["TrainingProgress", "format_duration", "stop_reason"]

PREFIX = "[progress]"


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (``-`` for unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return str(timedelta(seconds=round(max(0.0, seconds))))


def _value(metrics: dict[str, Any], key: str) -> float | None:
    v = metrics.get(key)
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _fmt(x: float | None, spec: str, unit: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{unit}"


def _learning_rate(trainer: pl.Trainer) -> float | None:
    optimizers = getattr(trainer, "optimizers", None) or []
    if not optimizers or not optimizers[0].param_groups:
        return None
    return float(optimizers[0].param_groups[0]["lr"])


def stop_reason(trainer: pl.Trainer, epochs_run: int, resumed_from: str | None) -> str:
    """Why ``trainer.fit`` ended: early stopping (at which epoch, counted from 1), max epochs/steps/time,
    an interruption, or a resumed run that had nothing left to train (``epochs_run`` epochs in this process)."""
    max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else None
    done = int(trainer.current_epoch)  # completed epochs (Lightning increments after each one)
    if trainer.interrupted:
        return f"interrupted at epoch {done + 1} (run again with --resume true to continue)"
    if epochs_run == 0 and resumed_from:
        total = f"{done}/{max_epochs}" if max_epochs is not None else str(done)
        return f"resumed run was already done ({total} epochs); nothing to train"
    stopper = next((cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)), None)
    if stopper is not None and stopper.stopped_epoch > 0 and stopper.stopped_epoch + 1 <= done:
        best = float(stopper.best_score) if stopper.best_score is not None else math.nan
        return (
            f"early stopping at epoch {stopper.stopped_epoch + 1} ({stopper.monitor} did not improve for "
            f"{stopper.patience} epochs; best {best:.4g})"
        )
    if max_epochs is not None and done >= max_epochs:
        return f"max_epochs reached ({max_epochs} epochs)"
    if trainer.max_steps is not None and trainer.max_steps >= 0 and trainer.global_step >= trainer.max_steps:
        return f"max_steps reached ({trainer.max_steps} steps, epoch {done})"
    if trainer.should_stop:
        return f"stopped by a callback at epoch {done} (e.g. max_time)"
    return f"ended after {done} epochs"


class TrainingProgress(Callback):
    """One progress line per training epoch and one stop reason at the end, on the global-zero process.

    Args:
        train_metric: epoch-level training loss key.
        val_metric: validation loss key.
        sdr_metric: validation SI-SDR key (dB).
        extra_metrics: further logged keys to append to each line when present (e.g. ``val_pesq``).
    """

    def __init__(
        self,
        train_metric: str = "train_loss_epoch",
        val_metric: str = "val_loss",
        sdr_metric: str = "val_si_sdr",
        extra_metrics: list[str] | None = None,
    ) -> None:
        self.train_metric = train_metric
        self.val_metric = val_metric
        self.sdr_metric = sdr_metric
        self.extra_metrics = list(extra_metrics or [])
        self.lines: list[str] = []
        self._fit_start: float | None = None
        self._epoch_start: float | None = None
        self._durations: list[float] = []
        self._resumed_from: str | None = None
        self._stale: dict[str, Any] = {}

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    def emit(self, text: str) -> None:
        line = f"{PREFIX} {text}"
        self.lines.append(line)
        print(line, file=sys.stdout, flush=True)  # sys.stdout at call time: the rule's log inside the workflow

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = self.clock()
        self._durations = []
        self._resumed_from = trainer.ckpt_path

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self._resumed_from:  # loops are restored by now
            self.emit(f"resumed from {self._resumed_from} at epoch {int(trainer.current_epoch) + 1}")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = self.clock()
        # callback_metrics keeps a key's last value when an epoch does not log it (e.g. metrics computed
        # every k epochs): remember this epoch's starting objects so that only fresh extras are shown
        metrics = trainer.callback_metrics
        self._stale = {k: metrics.get(k) for k in self._watched() if k in metrics}

    def _watched(self) -> list[str]:
        return [self.train_metric, self.val_metric, self.sdr_metric, *self.extra_metrics]

    def epoch_line(self, trainer: pl.Trainer) -> str:
        # only values logged this epoch (no validation this epoch: its values show as "-")
        metrics = {k: v for k, v in trainer.callback_metrics.items() if k not in self._stale or v is not self._stale[k]}
        epoch = int(trainer.current_epoch) + 1
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else None
        now = self.clock()
        elapsed = now - self._fit_start if self._fit_start is not None else None
        eta = None
        if max_epochs is not None and self._durations:
            eta = (max_epochs - epoch) * sum(self._durations) / len(self._durations)
        lr = _learning_rate(trainer)
        sdr = _value(metrics, self.sdr_metric)
        parts = [
            f"epoch {epoch}/{max_epochs if max_epochs is not None else '?'}",
            f"train_loss {_fmt(_value(metrics, self.train_metric), '.4f')}",
            f"val_loss {_fmt(_value(metrics, self.val_metric), '.4f')}",
            f"val_si_sdr {_fmt(sdr, '.2f', ' dB')}",
        ]
        parts += [
            f"{k} {_fmt(_value(metrics, k), '.3f')}" for k in self.extra_metrics if _value(metrics, k) is not None
        ]
        parts += [f"lr {_fmt(lr, '.2e')}", f"elapsed {format_duration(elapsed)}", f"eta {format_duration(eta)}"]
        return "  ".join(parts)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._epoch_start is not None:
            self._durations.append(self.clock() - self._epoch_start)
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        self.emit(self.epoch_line(trainer))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.emit("stopped: " + stop_reason(trainer, len(self._durations), self._resumed_from))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero:
            self.emit(f"stopped: {type(exception).__name__} at epoch {int(trainer.current_epoch) + 1}: {exception}")
