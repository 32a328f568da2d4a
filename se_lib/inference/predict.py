"""Batch prediction of a mixture-DB split with plain torch: the workflow's rule ``predict``.

:func:`predict_job` does what ``se predict --ckpt_path best.ckpt`` does for the workflow
(:func:`se_lib.train.jobs.predict_args`), without Lightning:

1. the network from the checkpoint (:func:`se_lib.inference.checkpoint.load_network`);
2. the data settings the model was trained with: ``data.init_args`` of the shared config
   (config/models/_shared.yaml), the model's config files and the overrides (``train.extra_args``
   and a sweep point's, keys under ``data.``), then the workflow's own (DB, sample rate, seed,
   ``predict.batch_size`` / ``num_workers``) -- :func:`data_args`;
3. every batch of :class:`se_lib.data.mixtures.MixtureData`'s predict loader through the network
   under ``torch.inference_mode()``, the enhanced reference mic cropped to each item's length and
   written by :class:`se_lib.inference.writer.ItemWriter` with the ``prediction_writer:`` settings of
   the same config files (:func:`predict_split`);
4. the statistics file ``se predict`` writes (:func:`prediction_stats`: the same keys).

The wavs are byte-identical to ``se predict``'s (tests/test_inference.py, on the tiny workflow).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from se_lib.config import SHARED_MODEL_CONFIG, read_config_files
from se_lib.config import db_url as default_db_url
from se_lib.inference.checkpoint import LoadedNetwork, load_network, torch_device
from se_lib.inference.writer import ItemWriter
from se_lib.io import write_json_atomic

log = logging.getLogger(__name__)

__all__ = [
    "DATA_CLASSES",
    "data_args",
    "inference_device",
    "model_config",
    "log_stats",
    "predict_job",
    "predict_split",
    "prediction_stats",
    "writer_args",
]

# The data classes whose predict loader this module reproduces (the `data.class_path` of a model config).
DATA_CLASSES = ("se_lib.data.datamodule.MixtureDataModule", "se_lib.data.mixtures.MixtureData")
WRITER_DEFAULTS: dict[str, Any] = {"write_noisy": True, "write_target": True, "subtype": "FLOAT"}


def model_config(config_files: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """The shared config, then ``config_files`` in order, merged as the ``se`` command reads them."""
    return read_config_files([SHARED_MODEL_CONFIG, *config_files])[0]


def data_args(cfg: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``data.init_args`` the ``se`` command would build from the merged model config ``cfg``
    (:func:`model_config`) and ``overrides`` (``--data.K`` / ``--data.init_args.K`` keys; others are ignored)."""
    data = cfg.get("data") or {}
    class_path = data.get("class_path", DATA_CLASSES[0])
    if class_path not in DATA_CLASSES:
        raise ValueError(
            f"model config: data.class_path {class_path!r} is not one of {DATA_CLASSES}; "
            "the workflow's predict job renders mixtures with MixtureData"
        )
    args = dict(data.get("init_args") or {})
    for key, value in (overrides or {}).items():
        key = key.lstrip("-")
        for prefix in ("data.init_args.", "data."):
            if key.startswith(prefix):
                args[key[len(prefix) :]] = value
                break
    return args


def writer_args(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``write_noisy``, ``write_target`` and ``subtype`` of the merged model config's ``prediction_writer:``."""
    section = cfg.get("prediction_writer") or {}
    return {k: section.get(k, v) for k, v in WRITER_DEFAULTS.items()}


def inference_device(accelerator: str = "auto") -> torch.device:
    """The device of the workflow's ``predict.accelerator`` / ``train.accelerator`` (Lightning's names: ``auto``,
    ``cpu``, ``gpu``/``cuda``, ``mps``): :func:`se_lib.inference.checkpoint.torch_device`."""
    try:
        return torch_device(accelerator)
    except ValueError as exc:
        raise ValueError(f"accelerator {exc}") from None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prediction_stats(
    writer: ItemWriter,
    *,
    inference_seconds: float,
    wall_seconds: float,
    parameters: int,
    device: torch.device,
    inference_mode: bool,
    world_size: int = 1,
    counts: tuple[int, int, int] | None = None,
) -> dict[str, Any]:
    """The statistics of a prediction run (``predict_stats.json``; ``se predict`` writes them too).

    ``counts``: ``(mixtures, wavs, samples)`` summed over DDP ranks (default: ``writer``'s own)."""
    n_items, n_files, samples = counts or (writer.n_items, writer.n_files, writer.samples)
    audio_s = samples / writer.sample_rate
    return {
        "n_files": n_items,
        "n_wavs": n_files,
        "audio_seconds": audio_s,
        "inference_seconds": inference_seconds,
        "wall_seconds": wall_seconds,
        "real_time_factor": inference_seconds / audio_s if audio_s else float("nan"),
        "wall_real_time_factor": wall_seconds / audio_s if audio_s else float("nan"),
        "parameters": int(parameters),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "world_size": int(world_size),
        "inference_mode": bool(inference_mode),
        "sample_rate": writer.sample_rate,
        "subtype": writer.subtype,
        "output_dir": str(writer.output_dir),
    }


def predict_split(
    loaded: LoadedNetwork,
    loader: Any,
    output_dir: str | os.PathLike,
    *,
    device: torch.device | str = "cpu",
    write_noisy: bool = True,
    write_target: bool = True,
    subtype: str = "FLOAT",
    stats_file: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Enhance every batch of ``loader`` (batches of :func:`se_lib.data.mixtures.collate_mixtures`) with
    ``loaded.net`` on ``device`` and write the wavs into ``output_dir``; returns (and writes to
    ``stats_file``, default ``<output_dir>/predict_stats.json``) the statistics.

    Inference time is the forward passes only (CUDA synchronised), as ``se predict`` measures it."""
    device = torch.device(device)
    net = loaded.net.to(device).eval()
    writer = ItemWriter(output_dir, loaded.sample_rate, subtype)
    inference_s = 0.0
    t_loop = time.perf_counter()
    with torch.inference_mode():
        for batch in loader:
            noisy = batch["noisy"].to(device)
            _sync(device)
            t0 = time.perf_counter()
            enhanced = net(noisy)
            _sync(device)
            inference_s += time.perf_counter() - t0
            if enhanced.shape != batch["target"].shape:
                raise RuntimeError(
                    f"{type(net).__name__} returned shape {tuple(enhanced.shape)} for noisy input "
                    f"{tuple(noisy.shape)}; expected the target's shape {tuple(batch['target'].shape)}"
                )
            writer.write_batch(
                batch["meta"],
                batch["lengths"],
                enhanced=enhanced.detach().float().cpu(),
                noisy=batch["noisy"] if write_noisy else None,
                target=batch["target"] if write_target else None,
                mids=batch["mid"],
            )
    stats = prediction_stats(
        writer,
        inference_seconds=inference_s,
        wall_seconds=time.perf_counter() - t_loop,
        parameters=loaded.parameters,
        device=device,
        inference_mode=True,
    )
    write_json_atomic(Path(stats_file) if stats_file else writer.output_dir / "predict_stats.json", stats)
    log_stats(stats)
    return stats


def log_stats(stats: Mapping[str, Any]) -> None:
    """One log line: mixtures, seconds of audio, inference seconds, real-time factor, where the files went."""
    log.info(
        "predicted %d mixtures (%.1f s audio) in %.2f s: RTF %.4f, wrote %s",
        stats["n_files"],
        stats["audio_seconds"],
        stats["inference_seconds"],
        stats["real_time_factor"],
        stats["output_dir"],
    )


def predict_job(
    model: str,
    split: str,
    config: Mapping[str, Any],
    *,
    ckpt_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    stats_file: str | os.PathLike,
    config_files: Sequence[str | os.PathLike],
    threads: int | None = None,
    db_url: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    db_split: str | None = None,
    ref_mic: int | None = None,
) -> dict[str, Any]:
    """Rule ``predict``: ``model``'s checkpoint on ``split`` under the validated workflow ``config`` (see
    the module docstring); returns the statistics written to ``stats_file``.

    A public test set (``test_sets``, split ``test_<name>``) is the ``db_split`` (``test``) of its own DB
    (``db_url``), and its reference microphone ``ref_mic`` is the network's: a one-channel network enhances that
    channel, a C-channel one sees the channels rolled so it comes first (:mod:`se_lib.models.base`).

    ``config_files`` are the model's LightningCLI files (the rule's inputs, without the shared one);
    ``overrides`` a sweep point's. Reads ``predict.batch_size``, ``predict.num_workers`` and
    ``predict.accelerator`` (``train.accelerator`` when null), as :func:`se_lib.train.jobs.predict_args`.
    """
    from se_lib.data.mixtures import MixtureData

    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"predict {model}: checkpoint {ckpt_path} not found")
    if threads:
        torch.set_num_threads(int(threads))
    train, pred = config["train"], config["predict"]
    cfg = model_config(config_files)
    args = data_args(cfg, {**train["extra_args"], **(overrides or {})})
    args.update(
        db_url=db_url or default_db_url(config),
        sample_rate=int(config["sample_rate"]),
        seed=int(config["seed"]),
        predict_split=db_split or split,
        batch_size=int(pred["batch_size"]),
    )
    if pred["num_workers"] is not None:
        args["num_workers"] = int(pred["num_workers"])
    device = inference_device(pred["accelerator"] or train["accelerator"])
    loaded = load_network(ckpt_path, map_location=device)
    if loaded.sample_rate != args["sample_rate"]:
        raise ValueError(
            f"predict {model}: checkpoint {ckpt_path} was trained at {loaded.sample_rate} Hz, "
            f"the workflow's sample_rate is {args['sample_rate']}"
        )
    data = MixtureData(**args)
    if loaded.in_channels is not None and loaded.in_channels > 1 and loaded.in_channels != data.num_channels:
        raise ValueError(
            f"predict {model}: the mixture DB has {data.num_channels} microphones, the network of {ckpt_path} "
            f"takes {loaded.in_channels}"
        )
    if ref_mic is not None and ref_mic != getattr(loaded.net, "ref_mic", ref_mic):
        if not 0 <= ref_mic < data.num_channels:
            raise ValueError(f"predict {model}/{split}: reference mic {ref_mic} of a {data.num_channels}-channel DB")
        log.info(
            "predict %s/%s: reference mic %d (the network was trained with %d)",
            model,
            split,
            ref_mic,
            loaded.net.ref_mic,
        )
        loaded.net.ref_mic = int(ref_mic)
    log.info(
        "predict %s/%s: %s (%d parameters) from %s on %s, batch %d",
        model,
        split,
        loaded.class_path,
        loaded.parameters,
        ckpt_path,
        device,
        args["batch_size"],
    )
    stats = predict_split(
        loaded,
        data.predict_dataloader(),
        output_dir,
        device=device,
        stats_file=stats_file,
        **writer_args(cfg),
    )
    stats["data_args"] = args
    return stats
