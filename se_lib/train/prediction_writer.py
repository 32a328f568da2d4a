"""Write enhanced / noisy / target wavs during ``se predict`` and export noisy references of a split.

:class:`AudioPredictionWriter` is a Lightning :class:`~lightning.pytorch.callbacks.BasePredictionWriter`
(``write_interval="batch"``): for every item of every predicted batch it writes

* ``sid_X_nids_Y_Z_rid_W_snr_VdB_enhanced.wav`` (mono, reference mic, the network output),
* ``..._noisy.wav`` (all microphone channels, multichannel wav) and ``..._target.wav`` (mono),

named by :func:`se_lib.data.naming.mixture_filename` so that every file parses back to its DB row.
Batches are zero-padded to their longest item; each item is cropped to its ``lengths`` entry, so the
written audio is exactly the item's samples. Files are written with
:func:`se_lib.data.audio.write_wav_atomic` (temporary file + ``os.replace``): an interrupted run never
leaves a truncated wav under a final name. The default sample format is 32-bit float, so network
outputs beyond [-1, 1] are stored unclipped and the scorer reads back exactly what the model produced.

At the end of the loop the writer stores ``predict_stats.json`` (number of files, seconds of audio,
inference and wall-clock seconds, real-time factors, parameter count, device, whether inference ran
under ``torch.inference_mode``). Inference time is measured from ``on_predict_batch_start`` to the
start of writing (CUDA synchronised), i.e. forward pass only, without data loading or file writing.

The ``se`` command always has one, configured in the ``prediction_writer:`` section
(config/models/_shared.yaml); by default it writes beside the checkpoint::

    uv run se predict --config config/models/conv_tasnet.yaml --ckpt_path results/models/conv_tasnet/best.ckpt
    # -> results/models/conv_tasnet/best_predictions/*.wav (+ predict_stats.json)
    uv run se predict ... --prediction_writer.output_dir results/predictions/conv_tasnet/test

The workflow's rule ``predict`` runs ``se predict`` through :func:`se_lib.train.jobs.predict_job`.
Without the command, :func:`predict_to_dir` runs a module over a data loader with the writer on a
:func:`se_lib.train.trainers.bare_trainer` (benchmarks, tests, notebooks).
:func:`export_references` (rule ``noisy_reference``) writes the noisy and target files of a split
straight from the mixture DB (no model), with the same names and format: the workflow's noisy
baseline is scored on them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from se_lib.data.audio import write_wav_atomic
from se_lib.data.naming import mixture_filename
from se_lib.io import write_json_atomic

log = logging.getLogger(__name__)

__all__ = ["AudioPredictionWriter", "ItemWriter", "export_references", "predict_to_dir"]

STATS_NAME = "predict_stats.json"


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


class AudioPredictionWriter(BasePredictionWriter):
    """Lightning callback writing noisy / enhanced / target wavs per predicted batch.

    Args:
        output_dir: destination folder; default ``<checkpoint dir>/<checkpoint stem>_predictions``
            (the checkpoint given to ``predict --ckpt_path``), else ``<default_root_dir>/predictions``.
        sample_rate: sample rate of the data; default (None) the module's ``sample_rate``, else checked
            against it.
        write_noisy: also write the multichannel noisy input.
        write_target: also write the reference-mic target.
        subtype: wav sample format (``FLOAT`` default, ``PCM_16``, ...).
        stats_file: where to write the statistics JSON; default ``<output_dir>/predict_stats.json``.

    Batches are dicts ``noisy [B, C, T]``, ``target [B, T]``, ``lengths [B]``, ``meta`` (list of
    dicts with sid/nid1/nid2/rid/snr_db), ``mid``; the prediction is either the enhanced tensor
    ``[B, T]`` or a dict holding it under ``enhanced`` (and optionally the batch's other keys).
    """

    def __init__(
        self,
        output_dir: str | None = None,
        sample_rate: int | None = None,
        write_noisy: bool = True,
        write_target: bool = True,
        subtype: str = "FLOAT",
        stats_file: str | None = None,
    ) -> None:
        super().__init__(write_interval="batch")
        if sample_rate is not None and sample_rate <= 0:
            raise ValueError(f"AudioPredictionWriter: sample_rate must be > 0, got {sample_rate}")
        self.output_dir = output_dir
        self.sample_rate = int(sample_rate) if sample_rate is not None else None
        self.write_noisy = write_noisy
        self.write_target = write_target
        self.subtype = subtype
        self.stats_file = stats_file
        self.writer: ItemWriter | None = None
        self.stats: dict[str, Any] = {}
        self._t_loop = 0.0
        self._t_batch = 0.0
        self._inference_s = 0.0
        self._inference_mode = True

    # -------------------------------------------------------------------------- resolution
    def resolve_output_dir(self, trainer: Any) -> Path:
        """The folder files go to (see the class docstring for the default)."""
        if self.output_dir:
            return Path(self.output_dir)
        ckpt = getattr(trainer, "ckpt_path", None)
        if ckpt and Path(str(ckpt)).suffix == ".ckpt":
            ckpt = Path(str(ckpt))
            return ckpt.parent / f"{ckpt.stem}_predictions"
        return Path(getattr(trainer, "default_root_dir", ".")) / "predictions"

    @staticmethod
    def _sync(device: torch.device) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # ------------------------------------------------------------------------------ hooks
    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        module_sr = getattr(pl_module, "sample_rate", None)
        if self.sample_rate is None:
            if module_sr is None:
                raise ValueError("AudioPredictionWriter: no sample_rate given and the model has none")
            self.sample_rate = int(module_sr)
        elif module_sr is not None and int(module_sr) != self.sample_rate:
            raise ValueError(
                f"AudioPredictionWriter: sample_rate={self.sample_rate} but the model's sample_rate is "
                f"{module_sr}; set --prediction_writer.sample_rate {module_sr} (or leave it unset)"
            )
        out = self.resolve_output_dir(trainer)
        self.writer = ItemWriter(out, self.sample_rate, self.subtype)
        self._inference_s = 0.0
        self._inference_mode = True
        log.info("writing predictions to %s", out)
        self._t_loop = time.perf_counter()

    def on_predict_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._sync(pl_module.device)
        self._t_batch = time.perf_counter()

    def write_on_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        self._sync(pl_module.device)
        self._inference_s += time.perf_counter() - self._t_batch
        self._inference_mode &= torch.is_inference_mode_enabled()
        if self.writer is None:  # hooks called outside trainer.predict (tests, custom loops)
            self.on_predict_start(trainer, pl_module)
        pred = prediction if isinstance(prediction, Mapping) else {"enhanced": prediction}
        if "enhanced" not in pred:
            raise KeyError("AudioPredictionWriter: the predict_step output has no 'enhanced' entry")

        def pick(key: str) -> Any:
            value = pred.get(key)
            return value if value is not None else (batch.get(key) if isinstance(batch, Mapping) else None)

        meta = pick("meta")
        if meta is None:
            raise KeyError("AudioPredictionWriter: the batch has no 'meta' (sid/nid1/nid2/rid/snr_db per item)")
        sr = pred.get("sample_rate")
        if sr is not None and int(sr) != self.sample_rate:
            raise ValueError(f"AudioPredictionWriter: prediction at {sr} Hz, writer at {self.sample_rate} Hz")
        self.writer.write_batch(
            meta,
            pick("lengths"),
            enhanced=pred["enhanced"],
            noisy=pick("noisy") if self.write_noisy else None,
            target=pick("target") if self.write_target else None,
            mids=pick("mid"),
        )

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        wall = time.perf_counter() - self._t_loop
        writer = self.writer
        assert writer is not None
        counts = torch.tensor([writer.n_items, writer.n_files, writer.samples], dtype=torch.float64)
        timing = torch.tensor([self._inference_s, wall], dtype=torch.float64)
        if getattr(trainer, "world_size", 1) > 1:  # sum counts, take the slowest rank's times
            counts = trainer.strategy.reduce(counts.to(pl_module.device), reduce_op="sum").cpu()
            timing = trainer.strategy.reduce(timing.to(pl_module.device), reduce_op="max").cpu()
        n_items, n_files, samples = (int(v) for v in counts.tolist())
        inference_s, wall_s = timing.tolist()
        audio_s = samples / self.sample_rate
        device = pl_module.device
        self.stats = {
            "n_files": n_items,
            "n_wavs": n_files,
            "audio_seconds": audio_s,
            "inference_seconds": inference_s,
            "wall_seconds": wall_s,
            "real_time_factor": inference_s / audio_s if audio_s else float("nan"),
            "wall_real_time_factor": wall_s / audio_s if audio_s else float("nan"),
            "parameters": int(sum(p.numel() for p in pl_module.parameters())),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch_threads": torch.get_num_threads(),
            "world_size": int(getattr(trainer, "world_size", 1)),
            "inference_mode": bool(self._inference_mode),
            "sample_rate": self.sample_rate,
            "subtype": self.subtype,
            "output_dir": str(writer.output_dir),
        }
        if getattr(trainer, "is_global_zero", True):
            path = Path(self.stats_file) if self.stats_file else writer.output_dir / STATS_NAME
            write_json_atomic(path, self.stats)
            log.info(
                "predicted %d mixtures (%.1f s audio) in %.2f s: RTF %.4f, wrote %s",
                n_items,
                audio_s,
                inference_s,
                self.stats["real_time_factor"],
                writer.output_dir,
            )


def predict_to_dir(
    module: Any,
    dataloader: Any,
    output_dir: str | os.PathLike,
    *,
    return_predictions: bool = False,
    **writer_kwargs: Any,
) -> AudioPredictionWriter:
    """Predict ``module`` (an :class:`~se_lib.train.module.EnhancementModule`) over ``dataloader`` on a
    :func:`~se_lib.train.trainers.bare_trainer` with an :class:`AudioPredictionWriter` into
    ``output_dir`` (``writer_kwargs`` go to the writer); returns the writer, whose ``stats`` hold the
    run's statistics."""
    from se_lib.train.trainers import bare_trainer

    writer = AudioPredictionWriter(output_dir=str(output_dir), **writer_kwargs)

    bare_trainer(callbacks=[writer]).predict(module, dataloaders=dataloader, return_predictions=return_predictions)
    return writer


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

    Uses the very data path of prediction (``MixtureDataModule`` in predict mode, the renderer,
    :class:`ItemWriter`), so the files are identical to those a
    model's prediction run writes. Returns counts (``n_files`` mixtures, ``n_wavs``, ``audio_seconds``).
    """
    from se_lib.data.datamodule import MixtureDataModule

    dm = MixtureDataModule(
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
