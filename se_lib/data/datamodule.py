"""LightningDataModule over the mixture DB: :class:`se_lib.data.mixtures.MixtureData` as a LightningDataModule.

The loaders, the batch contract and the train/val/test/predict behaviour are
:class:`~se_lib.data.mixtures.MixtureData`'s (see :mod:`se_lib.data.mixtures`), which has no Lightning so that
inference (:mod:`se_lib.inference`) starts fast; :class:`MixtureDataModule` adds what Lightning needs (hparams,
``se`` command, ``Trainer``). All constructor arguments are plain types so LightningCLI can override them
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
    """:class:`~se_lib.data.mixtures.MixtureData` as a LightningDataModule (same arguments, same loaders; the
    arguments are documented there)."""
