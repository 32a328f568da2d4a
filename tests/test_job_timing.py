"""The start-up timing lines of the workflow's jobs (se_lib.workflow: rule_job's ``job timing`` line, read back
by parse_timing; se_lib.train.callbacks.FirstBatchTimer) that bench/bench_startup.py reads."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from se_lib.workflow import parse_timing, process_start_time, rule_job, timing_line


def test_timing_line_round_trip_among_other_log_lines():
    line = timing_line("score", startup=1.25, setup=0.5, work=3.0, closing=0.1, process_start=1700000000.123)
    assert line == (
        "job timing: kind=score startup=1.250 setup=0.500 work=3.000 closing=0.100 process_start=1700000000.123"
    )
    text = f"2026-01-01 00:00:00,000 INFO se: rule score ...\n2026-01-01 00:00:01,000 INFO se: {line}\nTraceback\n"
    assert parse_timing(text) == [
        {"kind": "score", "startup": 1.25, "setup": 0.5, "work": 3.0, "closing": 0.1, "process_start": 1700000000.123}
    ]
    assert parse_timing("nothing here\n") == []


def test_process_start_time_of_this_and_of_a_younger_process():
    started = process_start_time()
    assert started <= time.time()
    psutil = pytest.importorskip("psutil")
    assert started == pytest.approx(psutil.Process().create_time(), abs=1.05)  # psutil: boot time in whole seconds
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert before - 0.05 <= process_start_time(child.pid) <= time.time() + 0.05
    finally:
        child.kill()
        child.wait()


def test_rule_job_ends_its_log_with_the_timing_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SE_INVOCATION_ID", raising=False)
    smk = SimpleNamespace(
        rule="report_table",
        wildcards={"split": "test"},
        config={"experiment": "timing", "seed": 1, "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}},
        log=[str(tmp_path / "logs" / "table_test.log")],
        params={},
    )
    with rule_job(smk, params={"n": 1}) as (log, _run):
        time.sleep(0.2)
        log.info("working")
    records = parse_timing((tmp_path / "logs" / "table_test.log").read_text())
    assert len(records) == 1
    rec = records[0]
    assert rec["kind"] == "report_table" and rec["work"] >= 0.2
    assert min(rec["startup"], rec["setup"], rec["closing"]) >= 0
    assert rec["process_start"] == pytest.approx(process_start_time(), abs=0.01)


def test_first_batch_timer_logs_once_at_the_first_training_batch(caplog):
    import lightning.pytorch as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from se_lib.train.callbacks import FirstBatchTimer
    from se_lib.train.trainers import bare_trainer

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.randn(6, 2), torch.randn(6, 1)), batch_size=2)
    timer = FirstBatchTimer()
    with caplog.at_level(logging.INFO, logger="se_lib.train.callbacks"):
        bare_trainer(max_epochs=2, callbacks=[timer]).fit(Tiny(), train_dataloaders=data)
    records = parse_timing(caplog.text)
    assert [r["kind"] for r in records] == ["train_first_batch"]  # once, not per batch or epoch
    rec = records[0]
    assert rec["startup"] > 0 and rec["setup"] >= 0 and rec["work"] >= 0
    assert rec["process_start"] == pytest.approx(process_start_time(), abs=0.01)
