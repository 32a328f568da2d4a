"""The workflow's training and prediction jobs: ``se`` argument lists built from the workflow config,
run in-process, and what each job leaves behind.

* :func:`train_job` (rule ``train``): ``se fit`` with :func:`train_args`, resumable; writes
  ``best.ckpt``, ``last.ckpt`` and ``run.json``, and records the DB's splits as the run's MLflow
  dataset inputs.
* :func:`predict_job`: ``se predict`` with :func:`predict_args` on the best checkpoint, as the workflow's
  config asks; the command's :class:`~se_lib.train.prediction_writer.AudioPredictionWriter` writes the
  wavs and the statistics file. Rule ``predict`` itself runs the Lightning-free
  :func:`se_lib.inference.predict.predict_job`, which writes the same bytes (tests/test_inference.py
  compares the two).

The model-free job of rule ``noisy_reference`` is :func:`se_lib.inference.writer.export_references`.

Every function takes the *validated* workflow config (:func:`se_lib.config.load_config` or
Snakemake's ``config``) and reads its keys without fallbacks: the schema holds the defaults. Model
config files come from the rule's inputs or :func:`se_lib.config.model_config_files`; the shared
training setup (config/models/_shared.yaml) is read by the ``se`` command itself.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from se_lib.config import db_url as default_db_url
from se_lib.config import experiment_name, model_config_files, tracking_uri
from se_lib.tracking.training import attach_log_files, log_dataset_inputs, log_sweep_point
from se_lib.train.precision import resolve_precision
from se_lib.train.resume import clear_checkpoint_dir
from se_lib.train.secli import SECLI

log = logging.getLogger(__name__)

__all__ = [
    "cli_value",
    "cluster_args",
    "override_args",
    "predict_args",
    "predict_job",
    "resolve_config_files",
    "train_args",
    "train_job",
    "wait_for_ranks",
]


def cli_value(value: Any) -> str:
    """A config value as one command-line argument (strings as they are, anything else as JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def resolve_config_files(model: str, config: Mapping[str, Any], config_files: Sequence[str] | None = None) -> list[str]:
    """LightningCLI config files of ``model``: ``config_files`` when given (the rule's inputs), else the
    model's files for the workflow config's ``train.overlay``."""
    if config_files:
        return [str(p) for p in config_files]
    return model_config_files(model, config["train"]["overlay"])


def _se_args(
    command: str,
    model: str,
    config: Mapping[str, Any],
    *,
    root_dir: str | os.PathLike,
    config_files: Sequence[str] | None,
    db_url: str | None,
    num_workers: int | None,
    accelerator: str,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """``se <command>`` arguments both jobs share: the model's config files, then ``extra_args``, then
    the seed, the DB, the sample rate (data and model), the trainer's root dir, no progress bar, and
    ``num_workers`` / ``accelerator`` unless null / ``auto``."""
    args = [command]
    for path in resolve_config_files(model, config, config_files):
        args += ["--config", str(path)]
    args += extra_args
    sr = str(config["sample_rate"])
    args += [
        "--seed_everything",
        str(config["seed"]),
        "--data.init_args.db_url",
        db_url or default_db_url(config),
        "--data.init_args.sample_rate",
        sr,
        "--model.init_args.sample_rate",
        sr,
        "--trainer.default_root_dir",
        str(root_dir),
        "--trainer.enable_progress_bar",
        "false",
    ]
    if num_workers is not None:
        args += ["--data.init_args.num_workers", str(num_workers)]
    if accelerator != "auto":
        args += ["--trainer.accelerator", str(accelerator)]
    return args


def _run_se(
    args: Sequence[str],
    *,
    rule: str,
    wildcards: Mapping[str, Any],
    config: Mapping[str, Any],
    threads: int | None,
    holder: dict[str, Any] | None = None,
) -> None:
    """Run ``se <args>`` in-process as the job of ``rule`` (``threads``: torch's intra-op threads)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    log.info("se %s", " ".join(args))
    SECLI(args=list(args), rule=rule, wildcards=dict(wildcards), workflow_config=dict(config), holder=holder)


# Overrides prediction applies too (the data module and the module; the trainer's and optimizer's are
# training's own, and the network's come from the checkpoint).
PREDICT_PREFIXES = ("data.", "model.")


# ------------------------------------------------------------------------------------------ train
def cluster_args(devices: int, environ: Mapping[str, str] | None = None) -> list[str]:
    """``se fit`` arguments that let a job whose SLURM step has fewer tasks than ``devices`` start its
    DDP ranks itself.

    Snakemake's SLURM plugin runs every job as one task (``srun -n1`` inside the allocation, which holds
    ``devices`` GPUs and as many tasks). Lightning would take ``SLURM_NTASKS`` (1) as the world size
    and leave the other GPUs idle, so the job names Lightning's own environment: rank 0 starts the
    other ranks on its node, on the GPUs SLURM assigned. A step launched with one task per device
    (``srun --ntasks-per-node=<devices>``) is left to Lightning's ``SLURMEnvironment``.
    """
    env = os.environ if environ is None else environ
    if devices > 1 and env.get("SLURM_JOB_ID") and int(env.get("SLURM_NTASKS", "1")) < devices:
        return ["--trainer.plugins", "lightning.fabric.plugins.environments.LightningEnvironment"]
    return []


def wait_for_ranks(trainer: Any, timeout: float = 300.0) -> None:
    """On rank 0 of a DDP fit whose ranks Lightning started as subprocesses: wait until they have exited,
    so that the job (and its GPU slots) ends after all of them; one still running after ``timeout``
    seconds is killed."""
    import subprocess

    for proc in getattr(getattr(trainer.strategy, "launcher", None), "procs", None) or []:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("DDP rank process %d still running %.0f s after the fit; killing it", proc.pid, timeout)
            proc.kill()
            proc.wait()


def train_args(
    model: str,
    config: Mapping[str, Any],
    out_dir: str | os.PathLike,
    config_files: Sequence[str] | None = None,
    db_url: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[str]:
    """``se fit`` arguments for model ``model`` under the validated workflow ``config``.

    ``train.devices`` and ``train.strategy`` become ``--trainer.devices`` / ``--trainer.strategy`` (see
    :func:`cluster_args`); ``train.precision`` becomes ``--trainer.precision``, resolved on the machine
    that runs the job (``auto``: ``bf16-mixed`` on a bf16-capable GPU, else ``32-true``;
    :func:`se_lib.train.precision.resolve_precision`), and ``train.compile`` ``--compile``.
    ``train.extra_args`` come last, then ``overrides`` (a sweep point's, :mod:`se_lib.sweep`), so the
    point's values win. The job registers its best checkpoint as a version of
    ``se-<model>`` (``--mlflow.register true``) unless it is a sweep point (``overrides`` given): a point
    is one trial, not the model's next version.
    """
    train = config["train"]
    args = _se_args(
        "fit",
        model,
        config,
        root_dir=out_dir,
        config_files=config_files,
        db_url=db_url,
        num_workers=train["num_workers"],
        accelerator=train["accelerator"],
    )
    args += [
        "--data.init_args.seed",
        str(config["seed"]),
        "--mlflow.experiment",
        experiment_name(config),
        "--mlflow.tracking_uri",
        tracking_uri(config),
        "--mlflow.model_name",
        model,
        "--mlflow.register",
        "false" if overrides else "true",
        "--resume",
        "true",
    ]
    args += ["--trainer.devices", str(train["devices"]), "--trainer.strategy", train["strategy"]]
    args += ["--trainer.precision", resolve_precision(train["precision"], train["accelerator"])]
    args += ["--compile", "true" if train["compile"] else "false"]
    args += cluster_args(train["devices"])
    if train["max_epochs"] is not None:
        args += ["--trainer.max_epochs", str(train["max_epochs"])]
    if train["batch_size"] is not None:
        args += ["--data.init_args.batch_size", str(train["batch_size"])]
    args += override_args({**train["extra_args"]})
    args += override_args(overrides or {})
    return args


def override_args(overrides: Mapping[str, Any], prefixes: Sequence[str] = ()) -> list[str]:
    """``--key value`` per LightningCLI override (``train.extra_args``, a sweep point's values); with
    ``prefixes``, only keys starting with one of them."""
    args: list[str] = []
    for key, value in overrides.items():
        key = key.lstrip("-")
        if not prefixes or key.startswith(tuple(prefixes)):
            args += [f"--{key}", cli_value(value)]
    return args


def train_job(
    model: str,
    config: Mapping[str, Any],
    *,
    out_dir: str | os.PathLike | None = None,
    config_files: Sequence[str] | None = None,
    rule: str = "train",
    wildcards: Mapping[str, Any] | None = None,
    threads: int | None = None,
    log_files: Sequence[str] = (),
    db_url: str | None = None,
    sweep: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` as the workflow does; write ``best.ckpt``, ``last.ckpt``, ``run.json`` in ``out_dir``.

    ``sweep`` (a sweep point: ``system``, ``values``, ``overrides``, see :mod:`se_lib.sweep`) adds the
    point's overrides to the arguments and marks the MLflow run as the sweep's
    (:func:`se_lib.tracking.training.log_sweep_point`).

    Checkpoints live in ``<out_dir>/checkpoints/`` (not workflow outputs, so a killed job leaves them
    for the rerun to resume from); on success they are copied to the outputs and removed.
    Returns the ``run.json`` content. With ``train.devices`` > 1 every DDP rank runs this function;
    only rank 0 writes (MLflow, outputs) and returns ``run.json``'s content, after the other ranks
    have exited; the others return ``{"rank": <rank>}``.
    """
    from se_lib.io import copy_file_atomic, write_json_atomic
    from se_lib.tracking.git import git_info

    out = Path(out_dir or f"results/models/{model}")
    files = resolve_config_files(model, config, config_files)
    overrides = dict(sweep["overrides"]) if sweep else None
    args = train_args(model, config, out, files, db_url=db_url, overrides=overrides)
    holder: dict[str, Any] = {}
    try:
        _run_se(args, rule=rule, wildcards=wildcards or {"model": model}, config=config, threads=threads, holder=holder)
        cli: SECLI = holder["cli"]
        if not cli.trainer.is_global_zero:
            return {"rank": int(cli.trainer.global_rank)}
        wait_for_ranks(cli.trainer)
        result = dict(cli.fit_result or {})
        if not result.get("best_checkpoint") or not Path(result["best_checkpoint"]).is_file():
            raise RuntimeError(f"training {model}: no best checkpoint was written (did validation run?)")
        last = result["last_checkpoint"] or result["best_checkpoint"]
        copy_file_atomic(result["best_checkpoint"], out / "best.ckpt")
        copy_file_atomic(last, out / "last.ckpt")
        info = {
            "model": model,
            **result,
            "experiment": experiment_name(config),
            "tracking_uri": tracking_uri(config),
            "git_commit": git_info().commit,
            "config_files": files,
            "cli_args": args,
            "sweep": dict(sweep) if sweep else None,
        }
        info["best_checkpoint_file"] = Path(result["best_checkpoint"]).name
        info["best_checkpoint"] = str(out / "best.ckpt")
        info["last_checkpoint"] = str(out / "last.ckpt")
        write_json_atomic(out / "run.json", info)
        if cli.checkpoint_dir is not None:
            clear_checkpoint_dir(cli.checkpoint_dir)
            try:
                cli.checkpoint_dir.rmdir()
            except OSError:
                pass
        return info
    finally:
        started: SECLI | None = holder.get("cli")
        if started is not None and started.run_id and started.tracking_uri:
            if sweep:
                log_sweep_point(started.tracking_uri, started.run_id, model, sweep)
            _log_training_data(started.tracking_uri, started.run_id, db_url or default_db_url(config))
            attach_log_files(started.tracking_uri, started.run_id, log_files)


def _log_training_data(tracking_uri: str, run_id: str, url: str) -> None:
    """The mixture DB's splits as the training run's dataset inputs (digest from the ``mixture_db``
    rule's digest file, an input of the job); a failure is logged, never raised."""
    from se_lib.data.db import summary_table
    from se_lib.tracking.runs import db_digest

    try:
        totals = summary_table(url).set_index("snr_bin").loc["all"]
        log_dataset_inputs(tracking_uri, run_id, url, db_digest(), {k: int(v) for k, v in totals.items()})
    except Exception as exc:
        log.warning("could not record the dataset inputs of run %s: %s", run_id, exc)


# ---------------------------------------------------------------------------------------- predict
def predict_args(
    model: str,
    split: str,
    config: Mapping[str, Any],
    *,
    ckpt_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    stats_file: str | os.PathLike | None = None,
    config_files: Sequence[str] | None = None,
    db_url: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[str]:
    """``se predict`` arguments for ``model`` on ``split`` under the validated workflow ``config``.

    Reads ``predict.batch_size``, ``predict.num_workers`` and ``predict.accelerator``
    (``train.accelerator`` when null); ``train.extra_args`` keys under ``data.``/``model.`` are
    applied too, and so are a sweep point's ``overrides`` under those prefixes, so the data module
    matches the one the model was trained with. The network's
    hyper-parameters come from the checkpoint (LightningCLI reads them from ``--ckpt_path``); the
    wavs go to ``output_dir`` through the command's ``prediction_writer``.
    """
    train, pred = config["train"], config["predict"]
    extra = override_args(train["extra_args"], PREDICT_PREFIXES) + override_args(overrides or {}, PREDICT_PREFIXES)
    args = _se_args(
        "predict",
        model,
        config,
        root_dir=Path(output_dir).parent,
        config_files=config_files,
        db_url=db_url,
        num_workers=pred["num_workers"],
        accelerator=pred["accelerator"] or train["accelerator"],
        extra_args=extra,
    )
    args += [
        "--data.init_args.predict_split",
        split,
        "--data.init_args.batch_size",
        str(pred["batch_size"]),
        "--trainer.logger",
        "false",
        "--ckpt_path",
        str(ckpt_path),
        "--return_predictions",
        "false",
        "--prediction_writer.output_dir",
        str(output_dir),
    ]
    if stats_file is not None:
        args += ["--prediction_writer.stats_file", str(stats_file)]
    return args


def predict_job(
    model: str,
    split: str,
    config: Mapping[str, Any],
    *,
    stats_file: str | os.PathLike,
    rule: str = "predict",
    wildcards: Mapping[str, Any] | None = None,
    threads: int | None = None,
    **args_kwargs: Any,
) -> dict[str, Any]:
    """Run ``se predict`` in-process with the workflow's settings (the LightningCLI twin of
    :func:`se_lib.inference.predict.predict_job`); returns the statistics written to ``stats_file``.

    ``args_kwargs`` are the further keyword arguments of :func:`predict_args` (``ckpt_path`` and
    ``output_dir`` required, ``config_files``, ``db_url``).
    """
    from se_lib.io import read_json_object

    args = predict_args(model, split, config, stats_file=stats_file, **args_kwargs)
    ckpt_path = args_kwargs["ckpt_path"]
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"predict {model}: checkpoint {ckpt_path} not found")
    _run_se(args, rule=rule, wildcards=wildcards or {"model": model, "split": split}, config=config, threads=threads)
    stats_path = Path(stats_file)
    if not stats_path.is_file():
        raise RuntimeError(f"predict {model}/{split}: no statistics written to {stats_path} (was the writer run?)")
    stats = read_json_object(stats_path, "prediction statistics")
    stats["cli_args"] = args
    return stats
