"""MixtureDataModule: batch format, seeded crops per epoch, SNR override, workers, Lightning, CLI types."""

from __future__ import annotations

import lightning.pytorch as L
import numpy as np
import pytest
import torch

from se_lib.data import db as dbm
from se_lib.data.datamodule import EpochSampler, MixtureDataModule, collate_mixtures
from se_lib.train.trainers import bare_trainer


def make_dm(world, **kw) -> MixtureDataModule:
    root, _, url = world
    args = {
        "db_url": url,
        "batch_size": 4,
        "num_workers": 0,
        "segment_seconds": 0.5,
        "seed": 3,
        "corpus_root": str(root),
    }
    args.update(kw)
    return MixtureDataModule(**args)


def _epoch_batches(loader, n=2):
    out = []
    for i, b in enumerate(loader):
        out.append(b)
        if i + 1 == n:
            break
    return out


def test_batch_format(world):
    dm = make_dm(world)
    assert dm.num_channels == 4
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["noisy"].shape == (4, 4, 8000) and b["noisy"].dtype == torch.float32
    assert b["target"].shape == (4, 8000) and b["target"].dtype == torch.float32
    assert b["lengths"].dtype == torch.int64 and b["lengths"].tolist() == [8000] * 4
    assert len(b["mid"]) == 4 and all(m.startswith("train-") for m in b["mid"])
    assert all({"sid", "nid1", "nid2", "rid", "snr_db", "split"} <= set(m) for m in b["meta"])
    v = next(iter(dm.val_dataloader()))
    assert v["noisy"].shape == (4, 4, 8000) and all(m["split"] == "val" for m in v["meta"])


def test_train_crops_seeded_per_epoch(world):
    a, b = make_dm(world), make_dm(world)
    a.setup("fit")
    b.setup("fit")
    la, lb = a.train_dataloader(), b.train_dataloader()
    e0a, e0b = _epoch_batches(la), _epoch_batches(lb)
    for x, y in zip(e0a, e0b, strict=True):
        assert x["mid"] == y["mid"] and torch.equal(x["noisy"], y["noisy"]) and torch.equal(x["target"], y["target"])
    e1a = _epoch_batches(la)  # next pass = next epoch: new order and new crops
    assert e1a[0]["mid"] != e0a[0]["mid"] or not torch.equal(e1a[0]["noisy"], e0a[0]["noisy"])
    lb.sampler.set_epoch(1)  # what Lightning does; same epoch -> same data
    e1b = _epoch_batches(lb)
    assert e1a[0]["mid"] == e1b[0]["mid"] and torch.equal(e1a[0]["noisy"], e1b[0]["noisy"])
    # the same item in two epochs gets different crops
    ds = a.datasets["train"]
    starts = {ds.item_plan(epoch, 0)[0] for epoch in range(6)}
    assert len(starts) > 1
    c = make_dm(world, seed=4)
    c.setup("fit")
    assert not torch.equal(_epoch_batches(c.train_dataloader(), 1)[0]["noisy"], e0a[0]["noisy"])


def test_val_segments_fixed(world):
    dm = make_dm(world)
    dm.setup("fit")
    loader = dm.val_dataloader()
    x, y = _epoch_batches(loader, 1)[0], _epoch_batches(loader, 1)[0]
    assert x["mid"] == y["mid"] and torch.equal(x["noisy"], y["noisy"])
    assert all(abs(m["rendered_snr_db"] - m["snr_db"]) < 0.1 for m in x["meta"])


def test_snr_override_train_only(world):
    dm = make_dm(world, snr_range=[20.0, 25.0], segment_seconds=None)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["noisy"].shape[-1] == 32000  # full mixtures by default
    for m in b["meta"]:
        assert 20.0 - 0.1 < m["rendered_snr_db"] < 25.0 + 0.1 and m["snr_db"] <= 10.0
    v = next(iter(dm.val_dataloader()))
    assert all(abs(m["rendered_snr_db"] - m["snr_db"]) < 0.1 for m in v["meta"])


def test_workers_match_main_process(world):
    ref = make_dm(world)
    ref.setup("fit")
    par = make_dm(world, num_workers=2)
    par.setup("fit")
    lr, lp = ref.train_dataloader(), par.train_dataloader()
    assert lp.persistent_workers
    for _ in range(2):  # two epochs through persistent workers
        for x, y in zip(_epoch_batches(lr, 3), _epoch_batches(lp, 3), strict=True):
            assert x["mid"] == y["mid"] and torch.equal(x["noisy"], y["noisy"])


def test_render_cache_same_tensors(world, caplog):
    """cache_mb renders train (no SNR redraw) and val once at setup: the same batches, epoch after epoch and
    through workers, without rendering again; a split larger than the budget, a train set with SNR redraws
    and the predict set are rendered on the fly."""
    ref = make_dm(world)
    ref.setup("fit")
    with caplog.at_level("INFO", logger="se_lib.data.mixtures"):
        cached = make_dm(world, cache_mb=64, num_workers=2)
        cached.setup("fit")
    assert "train set rendered once into memory" in caplog.text and "val set rendered once" in caplog.text
    train, val = cached.datasets["train"], cached.datasets["val"]
    assert len(train.cache) == len(train) and len(val.cache) == len(val)
    train.renderer.render = val.renderer.render = None  # a render now would fail: items come from the cache
    lr, lc = ref.train_dataloader(), cached.train_dataloader()
    for _ in range(2):  # two epochs: new order and crops, same tensors
        for x, y in zip(_epoch_batches(lr, 3), _epoch_batches(lc, 3), strict=True):
            assert x["mid"] == y["mid"] and x["meta"] == y["meta"]
            assert torch.equal(x["noisy"], y["noisy"]) and torch.equal(x["target"], y["target"])
    for x, y in zip(ref.val_dataloader(), cached.val_dataloader(), strict=True):
        assert x["mid"] == y["mid"] and torch.equal(x["noisy"], y["noisy"]) and x["meta"] == y["meta"]
    size = train.cache_bytes(4)
    assert size == sum(int(r["length"]) for r in train.rows) * 5 * 4  # 4 mics + target, float32

    with caplog.at_level("INFO", logger="se_lib.data.mixtures"):
        small = make_dm(world, cache_mb=size / 2**20 / 2)  # half the train set: val fits, train does not
        small.setup("fit")
    assert small.datasets["train"].cache is None and small.datasets["val"].cache is not None
    assert "train set not cached" in caplog.text and "> data.cache_mb" in caplog.text
    redraw = make_dm(world, cache_mb=64, snr_range=[0.0, 5.0])
    redraw.setup("fit")
    assert redraw.datasets["train"].cache is None and redraw.datasets["val"].cache is not None
    with pytest.raises(ValueError, match="SNR redraw"):
        redraw.datasets["train"].fill_cache()
    pred = make_dm(world, cache_mb=64, predict_split="test")
    pred.setup("predict")
    assert pred.datasets["predict"].cache is None
    with pytest.raises(ValueError, match="data.cache_mb"):
        make_dm(world, cache_mb=-1)


def test_predict_full_length_and_padding(world):
    _root, _config, url = world
    dm = make_dm(world, predict_split="test", max_items=5, batch_size=2)
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    assert sum(len(b["mid"]) for b in batches) == 5
    assert [m for b in batches for m in b["mid"]] == [r["mid"] for r in dbm.iter_mixtures(url, "test", limit=5)]
    assert all(b["noisy"].shape[-1] == 32000 and b["lengths"].tolist() == [32000] * len(b["mid"]) for b in batches)
    items = [dm.datasets["predict"][i] for i in range(2)]
    items[1] = dict(items[1], noisy=items[1]["noisy"][:, :1000], target=items[1]["target"][:1000], length=1000)
    b = collate_mixtures(items)
    assert b["lengths"].tolist() == [32000, 1000]
    assert torch.all(b["noisy"][1, :, 1000:] == 0) and torch.all(b["target"][1, 1000:] == 0)
    long = make_dm(world, segment_seconds=2.5)  # longer than the 2 s mixtures: zero padded
    long.setup("validate")
    v = next(iter(long.val_dataloader()))
    assert v["noisy"].shape[-1] == 40000 and v["lengths"].tolist() == [32000] * 4


def test_eval_segment_seconds(world):
    """Short training crops, validation on other lengths: "train" (default) keeps the crop length, None
    the whole mixtures, a number that many seconds; training crops are unaffected."""
    lengths = {}
    for value in ("train", None, 1.0):
        dm = make_dm(world, eval_segment_seconds=value)
        dm.setup("fit")
        lengths[value] = next(iter(dm.val_dataloader()))["noisy"].shape[-1]
        assert next(iter(dm.train_dataloader()))["noisy"].shape[-1] == 8000
    assert lengths == {"train": 8000, None: 32000, 1.0: 16000}
    with pytest.raises(ValueError, match="eval_segment_seconds"):
        make_dm(world, eval_segment_seconds=0)
    with pytest.raises(ValueError, match="eval_segment_seconds"):
        make_dm(world, eval_segment_seconds="whole")


def test_bad_arguments(world):
    with pytest.raises(ValueError, match="sample_rate"):
        make_dm(world, sample_rate=8000).setup("fit")
    with pytest.raises(ValueError, match="snr_range"):
        make_dm(world, snr_range=[5.0, -5.0])
    with pytest.raises(FileNotFoundError, match="nope.sqlite"):
        make_dm(world, db_url="sqlite:///nope.sqlite").setup("fit")


def test_lightning_cli_style_overrides(world):
    from jsonargparse import ArgumentParser

    root, _, url = world
    p = ArgumentParser()
    p.add_class_arguments(MixtureDataModule, "data")
    cfg = p.parse_args(
        [
            "--data.db_url",
            url,
            "--data.batch_size",
            "16",
            "--data.snr_range",
            "[-5, 5]",
            "--data.segment_seconds",
            "1.5",
            "--data.corpus_root",
            str(root),
            "--data.eval_segment_seconds",
            "null",
        ]
    )
    dm = MixtureDataModule(**cfg.data.as_dict())
    assert dm.batch_size == 16 and dm.snr_range == (-5.0, 5.0) and dm.segment_seconds == 1.5
    assert dm.eval_segment_seconds is None
    assert p.parse_args(["--data.db_url", url, "--data.eval_segment_seconds", "2.5"]).data.eval_segment_seconds == 2.5
    assert p.parse_args(["--data.db_url", url]).data.eval_segment_seconds == "train"


class _Probe(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[list[str]] = []

    def training_step(self, batch, _idx):
        self.seen.append(list(batch["mid"]))
        return (self.w - batch["noisy"].mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_sets_epochs(world):
    dm = make_dm(world, batch_size=8)
    probe = _Probe()
    trainer = bare_trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=0)
    trainer.fit(probe, datamodule=dm)
    rows = dm.datasets["train"].rows
    for epoch in range(2):
        s = EpochSampler(len(rows), 3)
        s.set_epoch(epoch)
        order = [rows[i]["mid"] for _, i in s]
        assert probe.seen[2 * epoch] == order[:8] and probe.seen[2 * epoch + 1] == order[8:16]
    assert probe.seen[0] != probe.seen[2]
    assert np.isfinite(float(probe.w.detach()))
