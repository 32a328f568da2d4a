"""Data over the mixture DB, without Lightning: rows read once, audio rendered on the fly in workers.

:class:`MixtureData` holds the loaders; :class:`se_lib.data.datamodule.MixtureDataModule` is the same class
as a LightningDataModule (training, ``se`` commands). Inference (:mod:`se_lib.inference`) uses this module
directly, so it never imports Lightning.

Batches (``docs/contracts.md``) are dicts: ``noisy [B, C, T]`` float32, ``target [B, T]``,
``lengths [B]`` int64 (valid samples; the rest is zero padding), ``mid: list[str]`` and
``meta: list[dict]`` (``sid nid1 nid2 rid snr_db split`` of the DB row, plus ``mid``,
``rendered_snr_db`` and ``scale`` of the rendered item).

* **train**: each epoch visits the rows in a seeded random order; every item draws its crop start
  (``segment_seconds``; default the whole mixture) and, when ``snr_range`` is given, a new SNR
  (uniform in the range) from an RNG seeded by ``(seed, epoch, index)``, so a run is reproducible
  whatever the number of workers and however it is resumed. The epoch reaches the workers through
  the sampler's indices (Lightning calls ``sampler.set_epoch``; without Lightning every new pass
  counts as the next epoch), which works with persistent workers.
* **val / test**: the DB's SNR and a fixed crop per item (seeded by ``(seed, index)`` only, the
  same every epoch); full mixtures when ``segment_seconds`` is None.
* **predict**: full-length items of ``predict_split``, zero-padded to the longest in the batch.

**Render cache** (``cache_mb``): a mixture whose SNR is not redrawn renders to the same audio every epoch,
so the train set (without ``snr_range``) and the val set can be rendered once, in :meth:`MixtureData.setup`
before the workers start (forked workers share those pages), and each item is then only cropped: the same
tensors, without the per-epoch convolutions (the demo: ~11 ms per item, ~4.4 s of CPU per epoch and
training; 13-19 % less training time, docs/training.md "Render cache"). A split is cached only when its
rendered audio (noisy + target, float32) fits in ``cache_mb`` MB; otherwise it is rendered on the fly.

All constructor arguments are plain types so LightningCLI can override them
(``--data.batch_size 16 --data.snr_range "[-5, 5]"``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from se_lib.data import db as mixture_db
from se_lib.data.render import Renderer
from se_lib.data.splits import SPLITS

log = logging.getLogger(__name__)
_EVAL_STREAM = 2**31 - 1  # RNG stream tag of the fixed val/test crops (epochs are smaller)
META_KEYS = ("sid", "nid1", "nid2", "rid", "snr_db", "split")


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy/random from torch's per-worker seed, one thread."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    torch.set_num_threads(1)


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` pairs; shuffles with a ``(seed, epoch)`` RNG when ``shuffle``."""

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle = int(n), int(seed), shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        self.epoch += 1  # next pass = next epoch unless set_epoch says otherwise
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
        return iter([(epoch, int(i)) for i in order])


class MixtureDataset(Dataset):
    """Rendered items of one split (``mode``: train | val | test | predict)."""

    def __init__(
        self,
        rows: Sequence[dict],
        mode: str,
        segment: int | None,
        snr_range: Sequence[float] | None,
        seed: int,
        corpus_root: str = ".",
    ) -> None:
        if mode not in (*SPLITS, "predict"):
            raise ValueError(f"unknown mode {mode!r}")
        self.rows = list(rows)
        self.mode = mode
        self.segment = segment
        self.snr_range = tuple(float(x) for x in snr_range) if snr_range is not None else None
        self.seed = int(seed)
        self.renderer = Renderer(corpus_root)
        self.cache: list[tuple[torch.Tensor, torch.Tensor, float, float]] | None = None

    def cacheable(self) -> bool:
        """Whether every epoch renders each item to the same audio (no SNR redraw)."""
        return self.snr_range is None

    def cache_bytes(self, channels: int) -> int:
        """Memory :meth:`fill_cache` takes: noisy (``channels``) + target of every row, float32."""
        return sum(int(r["length"]) for r in self.rows) * (channels + 1) * 4

    def fill_cache(self) -> None:
        """Render every row once; :meth:`__getitem__` then only crops (same tensors as rendering)."""
        if not self.cacheable():
            raise ValueError(f"{self.mode} items are rendered anew every epoch (SNR redraw): nothing to cache")
        cache = []
        for row in self.rows:
            r = self.renderer.render(row)
            cache.append((r.noisy, r.target, r.snr_db, r.scale))
        self.cache = cache

    def __len__(self) -> int:
        return len(self.rows)

    def item_plan(self, epoch: int, index: int) -> tuple[int, int, float | None]:
        """``(start, size, snr_db override)`` of item ``index`` in ``epoch`` (no audio touched)."""
        length = int(self.rows[index]["length"])
        if self.mode == "predict":
            return 0, length, None
        if self.mode == "train":
            rng = np.random.default_rng([self.seed, epoch, index])
            snr = float(rng.uniform(*self.snr_range)) if self.snr_range is not None else None
        else:
            rng = np.random.default_rng([self.seed, _EVAL_STREAM, index])
            snr = None
        if self.segment is None:
            return 0, length, snr
        start = int(rng.integers(0, max(0, length - self.segment) + 1))
        return start, self.segment, snr

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, int(key))
        row = self.rows[index]
        start, size, snr = self.item_plan(epoch, index)
        if self.cache is not None:
            full_noisy, full_target, snr_db, scale = self.cache[index]
        else:
            r = self.renderer.render(row, snr_db=snr)
            full_noisy, full_target, snr_db, scale = r.noisy, r.target, r.snr_db, r.scale
        noisy, target = full_noisy[:, start : start + size], full_target[start : start + size]
        valid = target.shape[-1]
        if valid < size:  # segment longer than the mixture: zero padding
            noisy = torch.nn.functional.pad(noisy, (0, size - valid))
            target = torch.nn.functional.pad(target, (0, size - valid))
        meta = {k: row[k] for k in META_KEYS}
        meta.update(mid=row["mid"], rendered_snr_db=snr_db, scale=scale)
        return {"noisy": noisy, "target": target, "length": valid, "mid": row["mid"], "meta": meta}


def collate_mixtures(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack items, zero-padding to the longest; ``lengths`` holds the valid sizes."""
    size = max(it["noisy"].shape[-1] for it in items)
    channels = items[0]["noisy"].shape[0]
    noisy = torch.zeros(len(items), channels, size)
    target = torch.zeros(len(items), size)
    for i, it in enumerate(items):
        n = it["noisy"].shape[-1]
        noisy[i, :, :n] = it["noisy"]
        target[i, :n] = it["target"]
    return {
        "noisy": noisy,
        "target": target,
        "lengths": torch.tensor([it["length"] for it in items], dtype=torch.int64),
        "mid": [it["mid"] for it in items],
        "meta": [it["meta"] for it in items],
    }


class MixtureData:
    """Train/val/test/predict loaders over the mixture DB (see the module docstring).

    Args:
        db_url: SQLAlchemy URL (or SQLite path) of the mixture DB.
        batch_size: items per batch.
        num_workers: DataLoader worker processes (persistent when > 0).
        snr_range: ``[low, high]`` dB; train SNRs are redrawn uniformly in it (None: the DB's).
        segment_seconds: train crop length, and the val/test segment length unless
            ``eval_segment_seconds`` is given (None: the whole mixture).
        eval_segment_seconds: val/test segment length: ``"train"`` (default) the same as
            ``segment_seconds``; ``None`` whole mixtures; a number that many seconds. E.g. short
            crops for many cheap training steps but validation (and the live speech metrics: PESQ
            wants more than a second of speech) on whole mixtures.
        sample_rate: expected sample rate; must match the DB.
        seed: seed of the shuffling, crops and SNR redraws.
        predict_split: split served by ``predict_dataloader``.
        max_items: at most this many rows per split (the first by ``mid``), e.g. for smoke tests.
        corpus_root: directory the DB's relative audio/RIR paths are relative to (repo root).
        cache_mb: render the train (unless ``snr_range`` redraws SNRs) and val mixtures once, at
            ``setup``, when a split's audio fits in this many MB (module docstring); 0: render every
            item anew each epoch.
    """

    def __init__(
        self,
        db_url: str = "sqlite:///results/db/mixtures.sqlite",
        batch_size: int = 8,
        num_workers: int = 2,
        snr_range: tuple[float, float] | None = None,
        segment_seconds: float | None = None,
        sample_rate: int = 16000,
        seed: int = 0,
        predict_split: str = "test",
        max_items: int | None = None,
        corpus_root: str = ".",
        eval_segment_seconds: float | Literal["train"] | None = "train",
        cache_mb: float = 0,
    ) -> None:
        super().__init__()  # LightningDataModule's, in MixtureDataModule
        if snr_range is not None:
            if len(snr_range) != 2 or float(snr_range[0]) > float(snr_range[1]):
                raise ValueError(f"data.snr_range must be [low, high] with low <= high, got {snr_range}")
            snr_range = (float(snr_range[0]), float(snr_range[1]))
        if segment_seconds is not None and segment_seconds <= 0:
            raise ValueError(f"data.segment_seconds must be > 0, got {segment_seconds}")
        if (
            eval_segment_seconds != "train"
            and eval_segment_seconds is not None
            and not (isinstance(eval_segment_seconds, (int, float)) and eval_segment_seconds > 0)
        ):
            raise ValueError(f"data.eval_segment_seconds must be 'train', null or > 0, got {eval_segment_seconds!r}")
        if predict_split not in SPLITS:
            raise ValueError(f"data.predict_split must be one of {SPLITS}, got {predict_split!r}")
        if not cache_mb >= 0:
            raise ValueError(f"data.cache_mb must be >= 0 (MB; 0 turns the render cache off), got {cache_mb!r}")
        if batch_size < 1 or num_workers < 0 or (max_items is not None and max_items < 1):
            raise ValueError("data.batch_size >= 1, data.num_workers >= 0, data.max_items >= 1 required")
        if hasattr(self, "save_hyperparameters"):  # MixtureDataModule: LightningCLI/checkpoint hparams
            self.save_hyperparameters()
        self.db_url = db_url
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.snr_range = snr_range
        self.segment_seconds = segment_seconds
        self.eval_segment_seconds = eval_segment_seconds
        self.sample_rate = int(sample_rate)
        self.seed = int(seed)
        self.predict_split = predict_split
        self.max_items = max_items
        self.corpus_root = corpus_root
        self.cache_mb = float(cache_mb)
        self.datasets: dict[str, MixtureDataset] = {}
        self._channels: int | None = None

    # ------------------------------------------------------------------------------- DB access
    def _check_db(self) -> None:
        meta = mixture_db.read_meta(self.db_url)
        if int(meta.get("sample_rate", -1)) != self.sample_rate:
            raise ValueError(
                f"data.sample_rate {self.sample_rate} != sample_rate "
                f"{meta.get('sample_rate')} of the mixture DB {self.db_url}"
            )

    @property
    def num_channels(self) -> int:
        """Microphone channels of every room in the DB (models must accept this many)."""
        if self._channels is None:
            import sqlalchemy as sa

            with mixture_db.get_engine(self.db_url).connect() as conn:
                values = conn.execute(sa.select(mixture_db.Room.channels).distinct()).scalars().all()
            if len(values) != 1:
                raise ValueError(f"mixture DB {self.db_url}: rooms have channel counts {sorted(values)}")
            self._channels = int(values[0])
        return self._channels

    def _segment(self, mode: str = "train") -> int | None:
        """Segment length in samples of ``mode``'s items (None: whole mixtures)."""
        seconds = self.segment_seconds
        if mode in ("val", "test") and self.eval_segment_seconds != "train":
            seconds = self.eval_segment_seconds
        return None if seconds is None else round(seconds * self.sample_rate)

    def _dataset(self, split: str, mode: str) -> MixtureDataset:
        rows = list(mixture_db.iter_mixtures(self.db_url, split, limit=self.max_items))
        if not rows:
            raise ValueError(f"mixture DB {self.db_url} has no {split} mixtures")
        return MixtureDataset(
            rows,
            mode,
            self._segment(mode) if mode != "predict" else None,
            self.snr_range if mode == "train" else None,
            self.seed,
            self.corpus_root,
        )

    def setup(self, stage: str | None = None) -> None:
        self._check_db()
        wanted = {
            "fit": [("train", "train"), ("val", "val")],
            "validate": [("val", "val")],
            "test": [("test", "test")],
            "predict": [("predict", self.predict_split)],
        }
        stages = [stage] if stage in wanted else list(wanted)
        for st in stages:
            for mode, split in wanted[st]:
                if mode not in self.datasets:
                    self.datasets[mode] = self._dataset(split, mode)
                    self._maybe_cache(mode)

    def _maybe_cache(self, mode: str) -> None:
        ds = self.datasets[mode]
        if mode not in ("train", "val") or self.cache_mb <= 0 or not ds.cacheable():
            return
        size = ds.cache_bytes(self.num_channels)
        if size > self.cache_mb * 2**20:
            log.info(
                "data: %s set not cached: its %d mixtures take %.0f MB > data.cache_mb %g",
                mode,
                len(ds),
                size / 2**20,
                self.cache_mb,
            )
            return
        t0 = time.perf_counter()
        ds.fill_cache()
        log.info(
            "data: %s set rendered once into memory: %d mixtures, %.0f MB, %.1f s",
            mode,
            len(ds),
            size / 2**20,
            time.perf_counter() - t0,
        )

    # ------------------------------------------------------------------------------- loaders
    def _loader(self, mode: str, sampler: Sampler | None = None) -> DataLoader:
        if mode not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test", "predict": "predict"}[mode])
        ds = self.datasets[mode]
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_mixtures,
            worker_init_fn=seed_worker,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        if "train" not in self.datasets:
            self.setup("fit")
        return self._loader("train", EpochSampler(len(self.datasets["train"]), self.seed, shuffle=True))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
