"""LightningDataModule over the mixture DB: rows read once, audio rendered on the fly in workers.

The loaders are :class:`se_lib.data.mixtures.MixtureData`'s (Lightning-free, used by inference);
:class:`MixtureDataModule` makes it a LightningDataModule (hparams, ``se`` command, ``Trainer``).

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

All constructor arguments are plain types so LightningCLI can override them
(``--data.batch_size 16 --data.snr_range "[-5, 5]"``).
"""

from __future__ import annotations

import lightning.pytorch as L

from se_lib.data.mixtures import (
    META_KEYS,
    EpochSampler,
    MixtureData,
    MixtureDataset,
    collate_mixtures,
    seed_worker,
)

__all__ = [
    "META_KEYS",
    "EpochSampler",
    "MixtureDataModule",
    "MixtureDataset",
    "collate_mixtures",
    "seed_worker",
]


class MixtureDataModule(MixtureData, L.LightningDataModule):
    """:class:`~se_lib.data.mixtures.MixtureData` as a LightningDataModule (same arguments, same loaders).

    Args:
        db_url: SQLAlchemy URL (or SQLite path) of the mixture DB.
        batch_size: items per batch.
        num_workers: DataLoader worker processes (persistent when > 0).
        snr_range: ``[low, high]`` dB; train SNRs are redrawn uniformly in it (None: the DB's).
        segment_seconds: train crop length, and the val/test segment length unless
            ``eval_segment_seconds`` is given (None: the whole mixture).
        eval_segment_seconds: val/test segment length: ``"train"`` (default) the same as
            ``segment_seconds``; ``None`` whole mixtures; a number that many seconds.
        sample_rate: expected sample rate; must match the DB.
        seed: seed of the shuffling, crops and SNR redraws.
        predict_split: split served by ``predict_dataloader``.
        max_items: at most this many rows per split (the first by ``mid``), e.g. for smoke tests.
        corpus_root: directory the DB's relative audio/RIR paths are relative to (repo root).
    """
