"""Speech metrics during training: PESQ-WB, STOI and DNSMOS OVRL on a fixed subset of validation mixtures.

:class:`SpeechMetricsMonitor` (a Lightning callback; the ``se`` command always adds it,
section ``live_metrics:`` of config/models/_shared.yaml) keeps the
first ``num_mixtures`` validation items (the validation loader is neither shuffled nor randomly cropped,
so the subset is the same every epoch: its mixture ids are logged once as the run's param
``live_metrics/mids``) together with the enhanced signals ``EnhancementModule.validation_step`` returns,
every ``every_n_epochs`` epochs (epochs 0, k, 2k, ...), and logs their means as ``val_pesq``,
``val_stoi`` and ``val_dnsmos_ovrl`` next to ``val_si_sdr`` (same MLflow step), through
:mod:`se_lib.metrics` (the scorer's own wrappers; DNSMOS with the ONNX models bundled in ``speechmos``).
Signals are trimmed to their ``lengths``; NaN scores (PESQ finding no utterance, STOI too few frames)
are left out of the mean.

Cost: the time spent scoring is logged as ``time/live_metrics_seconds``; together with the epoch's
wall time (``time/epoch_seconds``) it gives ``time/live_metrics_share`` (fraction of that epoch's time).
Measured on the demo config: see README ("Speech metrics while training").

Scoring runs on the global-zero process only (its own validation shard under DDP) and is logged with
``rank_zero_only``; do not monitor these keys for checkpointing or early stopping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

__all__ = ["LIVE_METRICS", "SpeechMetricsMonitor", "score_pairs"]

# logged key -> scorer metric name (se_lib.metrics.scorer's column)
LIVE_METRICS = {"val_pesq": "pesq_wb", "val_stoi": "stoi", "val_dnsmos_ovrl": "dnsmos_ovrl"}


def _scorers(metrics: Sequence[str], sample_rate: int, dnsmos_threads: int) -> dict[str, Callable[..., float]]:
    from se_lib.metrics.pesq_wb import pesq_wb
    from se_lib.metrics.stoi import stoi

    out: dict[str, Callable[..., float]] = {}
    for key in metrics:
        if key == "val_pesq":
            out[key] = lambda ref, est: pesq_wb(ref, est, sample_rate)
        elif key == "val_stoi":
            out[key] = lambda ref, est: stoi(ref, est, sample_rate)
        elif key == "val_dnsmos_ovrl":
            from se_lib.metrics.dnsmos import get_dnsmos

            scorer = get_dnsmos(num_threads=dnsmos_threads)
            out[key] = lambda ref, est, scorer=scorer: scorer.score(est, sample_rate).ovrl
    return out


def score_pairs(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    metrics: Sequence[str] = tuple(LIVE_METRICS),
    sample_rate: int = 16000,
    dnsmos_threads: int = 1,
) -> dict[str, float]:
    """Mean of each metric over ``(target, enhanced)`` pairs (1-D float arrays), NaN scores left out
    (NaN when none could be scored)."""
    scorers = _scorers(metrics, sample_rate, dnsmos_threads)
    out = {}
    for key, fn in scorers.items():
        values = [fn(ref, est) for ref, est in pairs]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        out[key] = float(np.mean(finite)) if finite else math.nan
    return out


class SpeechMetricsMonitor(Callback):
    """Log ``val_pesq`` / ``val_stoi`` / ``val_dnsmos_ovrl`` on a fixed validation subset every k epochs.

    Args:
        num_mixtures: how many validation mixtures (the first ones of the validation loader) are scored;
            0 disables the callback.
        every_n_epochs: score at epochs 0, k, 2k, ... (0-based, as MLflow's ``epoch``); 0 disables it.
        metrics: which of ``val_pesq``, ``val_stoi``, ``val_dnsmos_ovrl`` to log.
        dnsmos_threads: ONNX Runtime intra-op threads of the DNSMOS models.
    """

    def __init__(
        self,
        num_mixtures: int = 8,
        every_n_epochs: int = 1,
        metrics: list[str] | None = None,
        dnsmos_threads: int = 1,
    ) -> None:
        metrics = list(LIVE_METRICS) if metrics is None else list(metrics)
        unknown = [m for m in metrics if m not in LIVE_METRICS]
        if unknown:
            raise ValueError(f"SpeechMetricsMonitor: unknown metric(s) {unknown}; choose from {list(LIVE_METRICS)}")
        if num_mixtures < 0:
            raise ValueError(f"SpeechMetricsMonitor: num_mixtures must be >= 0, got {num_mixtures}")
        if every_n_epochs < 0:
            raise ValueError(f"SpeechMetricsMonitor: every_n_epochs must be >= 0, got {every_n_epochs}")
        if dnsmos_threads < 1:
            raise ValueError(f"SpeechMetricsMonitor: dnsmos_threads must be >= 1, got {dnsmos_threads}")
        self.num_mixtures = num_mixtures
        self.every_n_epochs = every_n_epochs
        self.metrics = metrics
        self.dnsmos_threads = dnsmos_threads
        self._pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self._mids: list[Any] = []
        self._epoch_start: float | None = None
        self._score_seconds = 0.0
        self._mids_logged = False
        self.history: list[dict[str, float]] = []  # per scored epoch: epoch, metrics, seconds, share

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    def due(self, trainer: pl.Trainer) -> bool:
        if self.num_mixtures == 0 or self.every_n_epochs == 0 or not self.metrics:
            return False
        if trainer.sanity_checking or not trainer.is_global_zero:
            return False
        return int(trainer.current_epoch) % self.every_n_epochs == 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = self.clock()
        self._score_seconds = 0.0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pairs, self._mids = [], []

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx != 0 or len(self._pairs) >= self.num_mixtures or not self.due(trainer):
            return
        enhanced = outputs.get("enhanced") if isinstance(outputs, dict) else None
        if enhanced is None:
            raise RuntimeError(
                "SpeechMetricsMonitor needs validation_step to return a dict with 'enhanced' "
                "(se_lib.train.module.EnhancementModule does)"
            )
        start = self.clock()
        target, lengths = batch["target"], batch.get("lengths")
        mids = batch.get("mid") or [None] * enhanced.shape[0]
        for i in range(enhanced.shape[0]):
            if len(self._pairs) >= self.num_mixtures:
                break
            n = int(lengths[i]) if lengths is not None else enhanced.shape[-1]
            self._pairs.append(
                (
                    target[i, :n].detach().to(torch.float64).cpu().numpy(),
                    enhanced[i, :n].detach().to(torch.float64).cpu().numpy(),
                )
            )
            self._mids.append(mids[i])
        self._score_seconds += self.clock() - start

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._pairs or not self.due(trainer):
            return
        start = self.clock()
        sample_rate = int(getattr(pl_module, "sample_rate", 16000))
        values = score_pairs(self._pairs, self.metrics, sample_rate, self.dnsmos_threads)
        self._score_seconds += self.clock() - start
        for key, value in values.items():
            pl_module.log(key, value, on_step=False, on_epoch=True, rank_zero_only=True, batch_size=len(self._pairs))
        self.history.append({"epoch": int(trainer.current_epoch), **values, "seconds": self._score_seconds})
        if not self._mids_logged and trainer.logger is not None:
            trainer.logger.log_hyperparams({"live_metrics/mids": ",".join(str(m) for m in self._mids)})
            self._mids_logged = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # validation ran inside this training epoch (Lightning 2.x), so the epoch's wall time includes it
        if self._epoch_start is None or not self.history or self.history[-1]["epoch"] != trainer.current_epoch:
            return
        if not trainer.is_global_zero or "share" in self.history[-1]:
            return
        epoch_seconds = self.clock() - self._epoch_start
        share = self._score_seconds / epoch_seconds if epoch_seconds > 0 else math.nan
        self.history[-1].update({"epoch_seconds": epoch_seconds, "share": share})
        metrics = {
            "time/live_metrics_seconds": self._score_seconds,
            "time/epoch_seconds": epoch_seconds,
            "time/live_metrics_share": share,
        }
        for key, value in metrics.items():  # logged with the epoch's other metrics (same MLflow step)
            pl_module.log(key, value, on_step=False, on_epoch=True, rank_zero_only=True, batch_size=1)
