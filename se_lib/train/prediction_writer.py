"""``se predict``'s prediction writer: the metadata-named wavs of every predicted batch, with Lightning.

:class:`AudioPredictionWriter` is a Lightning :class:`~lightning.pytorch.callbacks.BasePredictionWriter`
(``write_interval="batch"``); for every item it writes ``..._enhanced.wav`` (mono, reference mic),
``..._noisy.wav`` (all microphones) and ``..._target.wav`` through
:class:`se_lib.inference.writer.ItemWriter` (names, cropping, atomic float wavs: see there), and at the
end of the loop ``predict_stats.json`` (:func:`se_lib.inference.predict.prediction_stats`: files,
seconds of audio, inference and wall-clock seconds, real-time factors, parameters, device, whether
inference ran under ``torch.inference_mode``). Inference time is measured from
``on_predict_batch_start`` to the start of writing (CUDA synchronised): forward pass only.

The ``se`` command always has one, configured in the ``prediction_writer:`` section
(config/models/_shared.yaml); by default it writes beside the checkpoint::

    uv run se predict --config config/models/conv_tasnet.yaml --ckpt_path results/models/conv_tasnet/best.ckpt
    # -> results/models/conv_tasnet/best_predictions/*.wav (+ predict_stats.json)
    uv run se predict ... --prediction_writer.output_dir results/predictions/conv_tasnet/test

The workflow's rule ``predict`` does the same without Lightning (:func:`se_lib.inference.predict.predict_job`,
byte-identical wavs). :func:`predict_to_dir` runs a module over a data loader with the writer on a
:func:`se_lib.train.trainers.bare_trainer` (benchmarks, tests, notebooks). ``ItemWriter`` and
``export_references`` (rule ``noisy_reference``) are importable from here too.
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

from se_lib.inference.predict import log_stats, prediction_stats
from se_lib.inference.writer import ItemWriter, export_references
from se_lib.io import write_json_atomic

log = logging.getLogger(__name__)

__all__ = ["AudioPredictionWriter", "ItemWriter", "export_references", "predict_to_dir"]

STATS_NAME = "predict_stats.json"


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
        self.stats = prediction_stats(
            writer,
            inference_seconds=inference_s,
            wall_seconds=wall_s,
            parameters=sum(p.numel() for p in pl_module.parameters()),
            device=pl_module.device,
            inference_mode=self._inference_mode,
            world_size=int(getattr(trainer, "world_size", 1)),
            counts=(n_items, n_files, samples),
        )
        if getattr(trainer, "is_global_zero", True):
            path = Path(self.stats_file) if self.stats_file else writer.output_dir / STATS_NAME
            write_json_atomic(path, self.stats)
            log_stats(self.stats)


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
