"""Progress lines, the stop reason and live speech metrics of a real (tiny) Lightning fit.

A one-parameter network (a gain on the reference microphone) trains on a few synthetic voiced batches
with :class:`~se_lib.train.progress.TrainingProgress` and
:class:`~se_lib.train.live_metrics.SpeechMetricsMonitor`; the lines, the stop reasons (max epochs, early
stopping, a resumed run that was already done) and the logged ``val_pesq`` / ``val_stoi`` /
``val_dnsmos_ovrl`` are checked against what the fit did. That the live metrics reach MLflow in the
workflow is checked on the shared tiny run (tests/test_workflow_e2e.py).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from se_lib.metrics.pesq_wb import pesq_wb
from se_lib.metrics.stoi import stoi
from se_lib.train.live_metrics import SpeechMetricsMonitor, score_pairs
from se_lib.train.module import EnhancementModule
from se_lib.train.progress import TrainingProgress, format_duration
from se_lib.train.trainers import bare_trainer

SR = 16000


class Gain(nn.Module):
    """Enhanced = gain x reference mic (one parameter)."""

    ref_mic = 0

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(0.5))

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        return self.gain * noisy[:, self.ref_mic]


class SGDModule(EnhancementModule):
    def __init__(self, lr: float = 0.01, **kwargs) -> None:
        super().__init__(Gain(), loss="sdr", num_val_samples_to_log=0, **kwargs)
        self.lr = lr

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def voiced(seconds: float, f0: float, seed: int) -> np.ndarray:
    """A syllable-like test signal: harmonics of ``f0`` under a 4 Hz envelope."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 12))
    return (0.3 * x * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)) ** 2).astype(np.float32)


def batches(n: int = 2, seconds: float = 1.0) -> list[dict]:
    out = []
    for b in range(n):
        target = torch.from_numpy(np.stack([voiced(seconds, 120 + 40 * b + 15 * i, b * 10 + i) for i in range(2)]))
        g = torch.Generator().manual_seed(b)
        noisy = target[:, None].repeat(1, 2, 1) + 0.1 * torch.randn(2, 2, target.shape[-1], generator=g)
        out.append(
            {
                "noisy": noisy,
                "target": target,
                "lengths": torch.tensor([target.shape[-1], target.shape[-1] - 1600]),
                "mid": [f"m{b}a", f"m{b}b"],
                "meta": [{}, {}],
            }
        )
    return out


def loader(data):
    return DataLoader(data, batch_size=None)


def test_progress_lines_and_live_metrics(capsys):
    data = batches()
    progress = TrainingProgress(extra_metrics=["val_pesq", "time/live_metrics_share"])
    monitor = SpeechMetricsMonitor(num_mixtures=3, every_n_epochs=2)
    trainer = bare_trainer(max_epochs=3, callbacks=[monitor, progress], num_sanity_val_steps=0)
    trainer.fit(SGDModule(), train_dataloaders=loader(data), val_dataloaders=loader(data))

    lines = progress.lines
    assert len(lines) == 4, lines
    assert capsys.readouterr().out.splitlines() == lines  # what the rule's log receives
    pattern = re.compile(
        r"\[progress\] epoch (\d)/3  train_loss (-?\d+\.\d{4})  val_loss (-?\d+\.\d{4})  val_si_sdr (-?\d+\.\d\d) dB"
        r".*  lr 1\.00e-02  elapsed \d:\d\d:\d\d  eta (\d:\d\d:\d\d)$"
    )
    for i, line in enumerate(lines[:3]):
        m = pattern.match(line)
        assert m, line
        assert int(m.group(1)) == i + 1
    assert lines[2].endswith("eta 0:00:00")
    assert lines[3] == "[progress] stopped: max_epochs reached (3 epochs)"
    # scored at epochs 0 and 2 (every_n_epochs=2) on the first 3 validation mixtures, shown in those lines
    assert [h["epoch"] for h in monitor.history] == [0, 2]
    assert "val_pesq" in lines[0] and "val_pesq" not in lines[1] and "time/live_metrics_share" in lines[2]
    # the logged values are the means of the scorer's own functions on those mixtures (trimmed to lengths)
    gain = float(trainer.lightning_module.net.gain)
    mixtures = [(b["target"][i], b["noisy"][i, 0], int(b["lengths"][i])) for b in data for i in range(2)][:3]
    pairs = [(t[:n].double().numpy(), (gain * x[:n]).double().numpy()) for t, x, n in mixtures]
    expected_pesq = np.nanmean([pesq_wb(r, e, SR) for r, e in pairs])
    expected_stoi = np.nanmean([stoi(r, e, SR) for r, e in pairs])
    logged = trainer.callback_metrics
    assert float(logged["val_pesq"]) == pytest.approx(expected_pesq, abs=1e-3)
    assert float(logged["val_stoi"]) == pytest.approx(expected_stoi, abs=1e-4)
    assert 1.0 < float(logged["val_dnsmos_ovrl"]) < 5.0
    assert 0 < monitor.history[-1]["share"] < 1 and monitor.history[-1]["seconds"] > 0


def test_epochs_without_validation_show_no_stale_values():
    data = batches(1)
    progress = TrainingProgress()
    trainer = bare_trainer(max_epochs=2, callbacks=[progress], num_sanity_val_steps=0, check_val_every_n_epoch=2)
    trainer.fit(SGDModule(), train_dataloaders=loader(data), val_dataloaders=loader(data))
    first, second = progress.lines[:2]
    assert "val_loss -  val_si_sdr -  lr" in first and "train_loss -  " not in first, first
    assert "val_loss -  " not in second and " dB" in second, second


def test_early_stopping_is_named_with_its_epoch():
    data = batches(1)
    # lr 0 freezes the net: val_loss never improves, so patience 1 stops after epoch 2 (counted from 1)
    progress = TrainingProgress()
    stopper = EarlyStopping(monitor="val_loss", patience=1, min_delta=0.0)
    trainer = bare_trainer(max_epochs=10, callbacks=[stopper, progress], num_sanity_val_steps=0)
    trainer.fit(SGDModule(lr=0.0), train_dataloaders=loader(data), val_dataloaders=loader(data))
    assert len(progress.lines) == 3, progress.lines
    assert progress.lines[-1].startswith("[progress] stopped: early stopping at epoch 2 (val_loss did not improve")


def test_resumed_run_that_was_done_says_so(tmp_path):
    data = batches(1)
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    first = bare_trainer(max_epochs=2, callbacks=[ckpt], enable_checkpointing=True, num_sanity_val_steps=0)
    first.fit(SGDModule(), train_dataloaders=loader(data), val_dataloaders=loader(data))
    progress = TrainingProgress()
    again = bare_trainer(max_epochs=2, callbacks=[progress], num_sanity_val_steps=0)
    last = tmp_path / "last.ckpt"
    again.fit(SGDModule(), train_dataloaders=loader(data), val_dataloaders=loader(data), ckpt_path=last)
    assert progress.lines == ["[progress] stopped: resumed run was already done (2/2 epochs); nothing to train"]


def test_score_pairs_and_bad_settings():
    ref = voiced(1.0, 150, 0).astype(np.float64)
    clean = score_pairs([(ref, ref)], ["val_pesq", "val_stoi"])
    assert clean["val_pesq"] > 4.0 and clean["val_stoi"] > 0.99
    silent = score_pairs([(ref, np.zeros_like(ref)), (ref, ref)], ["val_pesq"])  # NaN PESQ left out
    assert silent["val_pesq"] == pytest.approx(clean["val_pesq"])
    assert math.isnan(score_pairs([(ref, np.zeros_like(ref))], ["val_pesq"])["val_pesq"])
    with pytest.raises(ValueError, match="unknown metric"):
        SpeechMetricsMonitor(metrics=["val_mos"])
    with pytest.raises(ValueError, match="num_mixtures"):
        SpeechMetricsMonitor(num_mixtures=-1)
    assert format_duration(3725.4) == "1:02:05" and format_duration(None) == "-"
