"""Command line ``se fit|validate|test|predict`` (LightningCLI) and the workflow's training job.

``uv run se fit --config config/models/ic_conv_tasnet.yaml --data.batch_size 16 --trainer.max_epochs 100``

On top of Lightning's CLI this adds:

* always-present, key-by-key configurable callbacks ``checkpoint`` (ModelCheckpoint: best by
  ``val_loss`` + ``last.ckpt``) and ``early_stopping`` (``val_loss``, patience 10);
* an ``mlflow`` group: the run goes to the MLflow store of :func:`se_lib.config.tracking_uri` (or
  ``--mlflow.tracking_uri``), experiment ``--mlflow.experiment`` / ``$SE_EXPERIMENT`` /
  ``baseline_verification``, tagged by :func:`se_lib.tracking.runs.standard_tags` (rule ``cli``
  outside Snakemake); the resolved config is logged as ``config.yaml`` (Lightning's
  SaveConfigCallback is off: it does not work with MLflow loggers), the best checkpoint under
  ``checkpoints/`` and registered as a version of ``se-<arch>``;
* ``--resume true``: if ``<checkpoint dir>/last.ckpt`` and the run id stored beside it by an
  interrupted job with the same model/data config exist, continue that MLflow run from
  ``last.ckpt`` (no duplicated or missing metric steps); otherwise start afresh.

:func:`train_job` is what the Snakemake rule ``train`` calls: it builds the argument list from the
workflow config, runs ``fit`` in-process and writes ``best.ckpt``, ``last.ckpt`` and ``run.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml
from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from se_lib.config import tracking_uri as default_tracking_uri
from se_lib.tracking.training import attach_log_files, build_logger, mark_run_killed, run_is_active
from se_lib.train.callbacks import (
    CheckpointRegistrar,
    ConfigArtifactSaver,
    best_checkpoint_callback,
    clear_checkpoint_dir,
    read_resume_state,
    write_resume_state,
)
from se_lib.train.module import EnhancementModule

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "baseline_verification"
MLFLOW_SUBCOMMANDS = ("fit", "validate", "test")
# Config sections whose change makes an interrupted run's checkpoint/run unsuitable for resuming.
DIGEST_KEYS = ("seed_everything", "model", "data")
TRAINER_PARAMS = ("max_epochs", "gradient_clip_val", "accumulate_grad_batches", "precision", "accelerator",
                  "devices", "limit_train_batches", "limit_val_batches", "check_val_every_n_epoch")

# The resume state files sit beside the checkpoints; Lightning's notice about that is noise.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


@dataclass
class TrackingOptions:
    """MLflow options of the ``se`` command.

    Args:
        enabled: log to MLflow (fit/validate/test); otherwise no logger unless ``trainer.logger`` is set.
        experiment: experiment name; default ``$SE_EXPERIMENT``, the workflow config's, then
            ``baseline_verification``.
        tracking_uri: store URI; default ``se_lib.config.tracking_uri()`` ($MLFLOW_TRACKING_URI or
            ``sqlite:///mlflow.db``).
        model_name: architecture name; the registered model is ``se-<model_name>``. Default: the
            module name of the net's class (``se_lib.models.ic_conv_tasnet.ICConvTasNet`` ->
            ``ic_conv_tasnet``).
        register: register the best checkpoint as a model version at the end of ``fit``.
    """

    enabled: bool = True
    experiment: Optional[str] = None
    tracking_uri: Optional[str] = None
    model_name: Optional[str] = None
    register: bool = True


def config_digest(dumped: Mapping[str, Any], db_digest: str = "") -> str:
    """SHA-256 of what defines the trained model: config sections model, data, seed, and the mixture
    DB's digest (a rebuilt DB with other content must not continue an old run)."""
    payload: dict[str, Any] = {key: dumped.get(key) for key in DIGEST_KEYS}
    payload["db_digest"] = db_digest
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def arch_name(net_class_path: str | None) -> str | None:
    """``se_lib.models.ic_conv_tasnet.ICConvTasNet`` -> ``ic_conv_tasnet``."""
    if not net_class_path or "." not in net_class_path:
        return None
    return net_class_path.rsplit(".", 2)[-2]


class SECLI(LightningCLI):
    """LightningCLI for :class:`EnhancementModule` + any LightningDataModule, tracked in MLflow.

    Keyword-only ``rule``, ``wildcards`` and ``workflow_config`` describe the Snakemake job for the
    run tags (``rule="cli"``, no wildcards outside Snakemake); ``holder`` (a dict) receives the
    instance under ``"cli"`` before anything runs. Other arguments as LightningCLI.
    """

    def __init__(
        self,
        args: Any = None,
        run: bool = True,
        *,
        rule: str = "cli",
        wildcards: Mapping[str, Any] | None = None,
        workflow_config: Mapping[str, Any] | None = None,
        holder: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if holder is not None:  # lets a caller reach the instance even when the subcommand raises
            holder["cli"] = self
        self.rule = rule
        self.wildcards = dict(wildcards or {})
        self.workflow_config = workflow_config
        self.resume_run_id: str | None = None
        self.checkpoint_dir: Path | None = None
        self.digest = ""
        self.run_id: str | None = None
        self.tracking_uri: str | None = None  # the store of run_id, once the MLflow logger exists
        self.experiment_id: str | None = None
        self.fit_result: dict[str, Any] | None = None
        kwargs.setdefault("model_class", EnhancementModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("datamodule_class", LightningDataModule)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_callback", None)
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("seed_everything_default", 0)
        super().__init__(args=args, run=run, **kwargs)

    # ----------------------------------------------------------------------- parser
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_loss",
                "checkpoint.mode": "min",
                "checkpoint.save_top_k": 1,
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}-val_loss{val_loss:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults(
            {"early_stopping.monitor": "val_loss", "early_stopping.mode": "min", "early_stopping.patience": 10}
        )
        parser.add_class_arguments(TrackingOptions, "mlflow")
        parser.add_argument(
            "--resume",
            type=bool,
            default=False,
            help="Continue an interrupted fit: last.ckpt + its MLflow run, if the model/data config is unchanged.",
        )

    # ------------------------------------------------------------------ resolution
    def _sub_config(self) -> Any:
        return self.config[self.subcommand] if self.subcommand else self.config

    def _dumped(self) -> dict[str, Any]:
        parser = self._parser(self.subcommand)
        return yaml.safe_load(parser.dump(self._sub_config(), skip_none=False, skip_check=True))

    def _tracking_uri(self, cfg: Any) -> str:
        return cfg.mlflow.tracking_uri or default_tracking_uri(self.workflow_config)

    def _experiment(self, cfg: Any) -> str:
        return (
            cfg.mlflow.experiment
            or os.environ.get("SE_EXPERIMENT")
            or (self.workflow_config or {}).get("experiment")
            or DEFAULT_EXPERIMENT
        )

    def _model_name(self, cfg: Any) -> str | None:
        if cfg.mlflow.model_name:
            return cfg.mlflow.model_name
        net = getattr(getattr(cfg.model, "init_args", None), "net", None)
        return arch_name(getattr(net, "class_path", None))

    def before_instantiate_classes(self) -> None:
        cfg = self._sub_config()
        if self.subcommand is None:
            return
        if cfg.get("weights_only") is None and "weights_only" in cfg:
            cfg.weights_only = True  # checkpoints hold tensors and plain containers only
        root = Path(cfg.trainer.default_root_dir or ".")
        if cfg.checkpoint.dirpath is None:
            cfg.checkpoint.dirpath = str(root / "checkpoints")
        self.checkpoint_dir = Path(cfg.checkpoint.dirpath)
        if self.subcommand != "fit":
            return
        from se_lib.tracking.runs import db_digest

        self.digest = config_digest(self._dumped(), db_digest())
        if cfg.resume and not cfg.ckpt_path:
            self._prepare_resume(cfg)

    def _prepare_resume(self, cfg: Any) -> None:
        state = read_resume_state(self.checkpoint_dir)
        last = self.checkpoint_dir / "last.ckpt"
        if state is None:
            if any(self.checkpoint_dir.glob("*.ckpt")):
                log.warning("resume: %s holds checkpoints without a run id; starting afresh", self.checkpoint_dir)
                clear_checkpoint_dir(self.checkpoint_dir)
            return
        usable = state.config_digest == self.digest and last.is_file()
        if usable and state.run_id and cfg.mlflow.enabled:
            usable = run_is_active(self._tracking_uri(cfg), state.run_id)
        if usable:
            cfg.ckpt_path = str(last)
            self.resume_run_id = state.run_id or None
            log.info("resume: continuing run %s from %s", state.run_id, last)
            return
        reason = "config changed" if state.config_digest != self.digest else "no last.ckpt"
        log.warning("resume: interrupted run %s not resumable (%s); starting a new run", state.run_id, reason)
        if state.run_id and cfg.mlflow.enabled:
            mark_run_killed(self._tracking_uri(cfg), state.run_id)
        clear_checkpoint_dir(self.checkpoint_dir)

    # ------------------------------------------------------------------ trainer
    def instantiate_trainer(self, **kwargs: Any) -> Any:
        cfg = self._sub_config()
        if self.subcommand is None:
            return super().instantiate_trainer(**kwargs)
        config_text = self._parser(self.subcommand).dump(cfg, skip_none=False, skip_check=True)
        user_logger = cfg.trainer.get("logger") not in (None, True)
        extra: list[Any] = []
        if self.subcommand in MLFLOW_SUBCOMMANDS and cfg.mlflow.enabled and not user_logger:
            logger = self._make_logger(cfg)
            kwargs["logger"] = logger
            extra.append(ConfigArtifactSaver(config_text, params=self._run_params()))
            if self.subcommand == "fit":
                name = self._model_name(cfg)
                extra.append(
                    CheckpointRegistrar(
                        model_name=f"se-{name}" if name else None,
                        config_text=config_text,
                        register=cfg.mlflow.register,
                    )
                )
        elif not user_logger:
            kwargs["logger"] = False
        if self.subcommand == "fit" and rank_zero_only.rank == 0:
            write_resume_state(self.checkpoint_dir, self.run_id or "", self.digest)
        defaults = self.trainer_defaults.get("callbacks", [])
        defaults = list(defaults) if isinstance(defaults, list) else [defaults]
        self.trainer_defaults = {**self.trainer_defaults, "callbacks": defaults + extra}
        return super().instantiate_trainer(**kwargs)

    def _run_params(self) -> dict[str, Any]:
        """MLflow params beyond the module's and data module's hparams: trainer settings, seed, ..."""
        dumped = self._dumped()
        params: dict[str, Any] = {"seed_everything": dumped.get("seed_everything")}
        data = dumped.get("data") or {}
        if isinstance(data, dict):  # its init args are the data module's own hparams
            params["data/class_path"] = data.get("class_path")
        trainer = dumped.get("trainer") or {}
        for key in TRAINER_PARAMS:
            if key in trainer:
                params[f"trainer/{key}"] = trainer[key]
        for key in ("monitor", "patience"):
            params[f"early_stopping/{key}"] = (dumped.get("early_stopping") or {}).get(key)
        return params

    def _make_logger(self, cfg: Any) -> Any:
        from se_lib.tracking.runs import (
            log_git_diff_if_dirty,
            setup_tracking,
            standard_tags,
        )

        uri, experiment = self._tracking_uri(cfg), self._experiment(cfg)
        tags = standard_tags(self.rule, self.wildcards, self.workflow_config)
        name = self._model_name(cfg)
        tags["se.subcommand"] = str(self.subcommand)
        if name:
            tags["se.model"] = name
        if rank_zero_only.rank == 0:  # creates the store/experiment once, under a lock for sqlite stores
            setup_tracking({"tracking": {"uri": uri}}, experiment=experiment)
        logger = build_logger(experiment, uri, tags, run_id=self.resume_run_id)
        if rank_zero_only.rank == 0:
            self.run_id = logger.run_id  # creates the run now, so its id can be stored beside the checkpoints
            self.tracking_uri = uri
            self.experiment_id = logger.experiment_id
            if self.resume_run_id:
                logger.experiment.set_tag(self.run_id, "se.resumed_from", str(cfg.ckpt_path))
            else:
                log_git_diff_if_dirty(self.run_id)
        return logger

    # ------------------------------------------------------------------- results
    def after_fit(self) -> None:
        trainer = self.trainer
        if trainer.interrupted:
            raise SystemExit("training interrupted; run again with --resume true to continue from last.ckpt")
        ckpt = best_checkpoint_callback(trainer)
        registrar = next((cb for cb in trainer.callbacks if isinstance(cb, CheckpointRegistrar)), None)
        reg = registrar.result if registrar else None
        self.fit_result = {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "best_checkpoint": ckpt.best_model_path if ckpt else None,
            "last_checkpoint": ckpt.last_model_path if ckpt else None,
            "best_val_loss": float(ckpt.best_model_score) if ckpt and ckpt.best_model_score is not None else None,
            "epochs": int(trainer.current_epoch),
            "global_step": int(trainer.global_step),
            "registered_model": reg.model_name if reg else None,
            "registered_version": reg.version if reg else None,
            "resumed": self.resume_run_id is not None,
        }


def main(args: Sequence[str] | None = None) -> None:
    """Console script ``se``."""
    SECLI(args=list(args) if args is not None else None)


# --------------------------------------------------------------------------------- workflow job
def model_config_files(model: str, overlay: str = "demo", root: str | Path | None = None) -> list[str]:
    """``config/models/<model>.yaml`` (+ ``demo/<model>.yaml`` for the demo overlay), checked to exist.

    ``root`` defaults to ``config/models`` in the working directory if present, else the repository's.
    """
    if root is None:
        from se_lib.config import REPO_ROOT

        root = Path("config/models") if Path("config/models").is_dir() else REPO_ROOT / "config" / "models"
    root = Path(root)
    files = [root / f"{model}.yaml"]
    if overlay == "demo":
        files.append(root / "demo" / f"{model}.yaml")
    elif overlay != "paper":
        raise ValueError(f"config key 'train.overlay': expected 'demo' or 'paper', got {overlay!r}")
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"model config {path} not found (config key 'models' lists {model!r})")
    return [str(p) for p in files]


def _arg_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def resolve_config_files(model: str, config: Mapping[str, Any], config_files: Sequence[str] | None = None) -> list[str]:
    """LightningCLI config files of ``model``: ``config_files`` when given (the rule's inputs), else the
    model's files for the workflow config's ``train.overlay``."""
    if config_files:
        return [str(p) for p in config_files]
    return model_config_files(model, (config.get("train") or {}).get("overlay", "demo"))


def workflow_cli_args(
    model: str,
    config: Mapping[str, Any],
    out_dir: str | Path,
    config_files: Sequence[str] | None = None,
    db_url: str | None = None,
) -> list[str]:
    """``se fit`` arguments for model ``model`` under the validated workflow ``config``."""
    from se_lib.config import db_url as default_db_url

    train = dict(config.get("train") or {})
    files = resolve_config_files(model, config, config_files)
    args = ["fit"]
    for path in files:
        args += ["--config", str(path)]
    args += [
        "--seed_everything", str(config["seed"]),
        "--data.init_args.db_url", db_url or default_db_url(config),
        "--data.init_args.sample_rate", str(config["sample_rate"]),
        "--data.init_args.seed", str(config["seed"]),
        "--model.init_args.sample_rate", str(config["sample_rate"]),
        "--trainer.default_root_dir", str(out_dir),
        "--trainer.enable_progress_bar", "false",
        "--mlflow.experiment", str(config.get("experiment") or DEFAULT_EXPERIMENT),
        "--mlflow.tracking_uri", default_tracking_uri(config),
        "--mlflow.model_name", model,
        "--resume", "true",
    ]
    if train.get("max_epochs") is not None:
        args += ["--trainer.max_epochs", str(train["max_epochs"])]
    if train.get("batch_size") is not None:
        args += ["--data.init_args.batch_size", str(train["batch_size"])]
    if train.get("num_workers") is not None:
        args += ["--data.init_args.num_workers", str(train["num_workers"])]
    if train.get("accelerator") not in (None, "auto"):
        args += ["--trainer.accelerator", str(train["accelerator"])]
    for key, value in (train.get("extra_args") or {}).items():
        args += [f"--{key.lstrip('-')}", _arg_value(value)]
    return args


def train_job(
    model: str,
    config: Mapping[str, Any],
    *,
    out_dir: str | Path | None = None,
    config_files: Sequence[str] | None = None,
    rule: str = "train",
    wildcards: Mapping[str, Any] | None = None,
    threads: int | None = None,
    log_files: Sequence[str] = (),
    db_url: str | None = None,
) -> dict[str, Any]:
    """Train ``model`` as the workflow does; write ``best.ckpt``, ``last.ckpt``, ``run.json`` in ``out_dir``.

    Checkpoints live in ``<out_dir>/checkpoints/`` (not workflow outputs, so a killed job leaves them
    for the rerun to resume from); on success they are copied to the outputs and removed.
    Returns the ``run.json`` content.
    """
    import torch

    from se_lib.io import copy_file_atomic, write_json_atomic
    from se_lib.tracking.git import git_info

    out = Path(out_dir or f"results/models/{model}")
    if threads:
        torch.set_num_threads(int(threads))
    files = resolve_config_files(model, config, config_files)
    args = workflow_cli_args(model, config, out, files, db_url=db_url)
    log.info("se %s", " ".join(args))
    holder: dict[str, Any] = {}
    try:
        SECLI(args=args, rule=rule, wildcards=wildcards or {"model": model}, workflow_config=config, holder=holder)
        cli: SECLI = holder["cli"]
        result = dict(cli.fit_result or {})
        if not result.get("best_checkpoint") or not Path(result["best_checkpoint"]).is_file():
            raise RuntimeError(f"training {model}: no best checkpoint was written (did validation run?)")
        last = result.get("last_checkpoint") or result["best_checkpoint"]
        copy_file_atomic(result["best_checkpoint"], out / "best.ckpt")
        copy_file_atomic(last, out / "last.ckpt")
        info = {
            "model": model,
            **result,
            "experiment": str(config.get("experiment") or DEFAULT_EXPERIMENT),
            "tracking_uri": default_tracking_uri(config),
            "git_commit": git_info().commit,
            "config_files": files,
            "cli_args": args,
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
            attach_log_files(started.tracking_uri, started.run_id, log_files)


if __name__ == "__main__":
    main()
