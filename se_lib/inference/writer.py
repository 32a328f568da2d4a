"""Metadata-named wavs of predicted batches, and the noisy/target references of a split (no Lightning).

:class:`ItemWriter` writes, for every item of a batch,

* ``sid_X_nids_Y_Z_rid_W_snr_VdB_enhanced.wav`` (mono, reference mic, the network output),
* ``..._noisy.wav`` (all microphone channels, multichannel wav) and ``..._target.wav`` (mono),

named by :func:`se_lib.data.naming.mixture_filename` so that every file parses back to its DB row.
Batches are zero-padded to their longest item; each item is cropped to its ``lengths`` entry, so the
written audio is exactly the item's samples. Files are written with
:func:`se_lib.data.audio.write_wav_atomic` (temporary file + ``os.replace``): an interrupted run never
leaves a truncated wav under a final name. The default sample format is 32-bit float, so network
outputs beyond [-1, 1] are stored unclipped and the scorer reads back exactly what the model produced.

Used by the workflow's predict job (:mod:`se_lib.inference.predict`), by ``se predict``'s
:class:`se_lib.train.prediction_writer.AudioPredictionWriter`, and by :func:`export_references`
(rule ``noisy_reference``), so every path writes the same names and format.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from se_lib.data.audio import write_wav_atomic
from se_lib.data.naming import mixture_filename

__all__ = ["ItemWriter", "export_references"]


def _cpu(x: Any) -> Any:
    return x.detach().to("cpu", torch.float32) if isinstance(x, torch.Tensor) and x.is_floating_point() else x


class ItemWriter:
    """Write the files of batches into one folder; refuses two items with the same file name.

    Args:
        output_dir: destination folder (created).
        sample_rate: sample rate written into the wav headers.
        subtype: libsndfile subtype (``FLOAT`` keeps values exactly and unclipped; ``PCM_16`` for
            smaller files).
    """

    def __init__(self, output_dir: str | os.PathLike, sample_rate: int, subtype: str = "FLOAT") -> None:
        self.output_dir = Path(output_dir)
        self.sample_rate = int(sample_rate)
        self.subtype = subtype
        self.names: dict[str, str] = {}  # file name -> mid that produced it
        self.n_items = 0
        self.n_files = 0
        self.samples = 0

    def write_batch(
        self,
        meta: Sequence[Mapping[str, Any]],
        lengths: torch.Tensor | Sequence[int] | None,
        *,
        enhanced: torch.Tensor | None = None,
        noisy: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        mids: Sequence[str] | None = None,
    ) -> list[Path]:
        """Write every item of one batch; returns the paths written.

        ``enhanced [B, T]``, ``noisy [B, C, T]``, ``target [B, T]`` (any may be None); each item
        ``i`` is cropped to ``lengths[i]`` samples (all of ``T`` when ``lengths`` is None).
        """
        tensors = {"enhanced": enhanced, "noisy": noisy, "target": target}
        present = {k: _cpu(v) for k, v in tensors.items() if v is not None}
        if not present:
            raise ValueError("nothing to write: no enhanced, noisy or target tensor in the batch")
        batch = len(meta)
        for kind, x in present.items():
            want = 3 if kind == "noisy" else 2
            if x.ndim != want or x.shape[0] != batch:
                raise ValueError(
                    f"prediction writer: {kind} has shape {tuple(x.shape)}, expected "
                    f"{'[B, C, T]' if want == 3 else '[B, T]'} with B = {batch} (len(meta))"
                )
        total = next(iter(present.values())).shape[-1]
        if lengths is None:
            sizes = [int(total)] * batch
        else:
            sizes = [int(n) for n in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]
        if len(sizes) != batch:
            raise ValueError(f"prediction writer: {len(sizes)} lengths for a batch of {batch} items")
        written: list[Path] = []
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for i, row in enumerate(meta):
            n = sizes[i]
            mid = str((mids[i] if mids is not None else None) or row.get("mid", f"item{self.n_items}"))
            for kind, x in present.items():
                if not 0 < n <= x.shape[-1]:
                    raise ValueError(f"prediction writer: mixture {mid}: length {n} outside 1..{x.shape[-1]}")
                name = mixture_filename(row, kind)
                other = self.names.get(name)
                if other is not None and other != mid:
                    raise ValueError(f"prediction writer: mixtures {other} and {mid} map to the same file name {name}")
                self.names[name] = mid
                audio = x[i, :, :n] if kind == "noisy" else x[i, :n]
                written.append(write_wav_atomic(self.output_dir / name, audio, self.sample_rate, subtype=self.subtype))
                self.n_files += 1
            self.n_items += 1
            self.samples += n
        return written


# ------------------------------------------------------------------------------ reference files
def export_references(
    db_url: str,
    split: str,
    output_dir: str | os.PathLike,
    *,
    sample_rate: int,
    batch_size: int,
    num_workers: int = 0,
    max_items: int | None = None,
    subtype: str = "FLOAT",
    corpus_root: str = ".",
) -> dict[str, Any]:
    """Write ``*_noisy.wav`` and ``*_target.wav`` of every mixture of ``split`` (no model involved).

    Uses the very data path of prediction (:class:`~se_lib.data.mixtures.MixtureData` in predict mode, the renderer,
    :class:`ItemWriter`), so the files are identical to those a
    model's prediction run writes. Returns counts (``n_files`` mixtures, ``n_wavs``, ``audio_seconds``).
    """
    from se_lib.data.mixtures import MixtureData

    dm = MixtureData(
        db_url=db_url,
        batch_size=batch_size,
        num_workers=num_workers,
        sample_rate=sample_rate,
        predict_split=split,
        max_items=max_items,
        corpus_root=corpus_root,
    )
    dm.setup("predict")
    writer = ItemWriter(output_dir, sample_rate, subtype)
    for batch in dm.predict_dataloader():
        writer.write_batch(
            batch["meta"], batch["lengths"], noisy=batch["noisy"], target=batch["target"], mids=batch["mid"]
        )
    return {
        "n_files": writer.n_items,
        "n_wavs": writer.n_files,
        "audio_seconds": writer.samples / sample_rate,
        "split": split,
        "output_dir": str(output_dir),
    }
