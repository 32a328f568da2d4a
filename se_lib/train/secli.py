"""The ``se`` command's LightningCLI for speech enhancement, tracked in MLflow (entry point:
:func:`se_lib.train.cli.main`, which also serves ``se runs``).

``uv run se fit --config config/models/ic_conv_tasnet.yaml --data.batch_size 16 --trainer.max_epochs 100``

Before any ``--config``, the command reads config/models/_shared.yaml (:data:`se_lib.config.
SHARED_MODEL_CONFIG`): the training setup the model configs share (data module, trainer, callbacks,
checkpointing, early stopping, MLflow, prediction writer), so ``se fit --config
config/models/<model>.yaml`` is a complete command. The project's classes are known by their short
names (``--data.help MixtureDataModule``, ``--model.init_args.net ConvTasNet``). A parse error prints
the error and a one-line hint, not the usage. On top of Lightning's CLI this adds:

* the standard ``optimizer:`` / ``lr_scheduler:`` sections (defaults: Adam, lr 1e-3;
  ReduceLROnPlateau on ``val_loss``, patience 5, factor 0.5 -- :mod:`se_lib.train.module`), e.g.
  ``--optimizer AdamW --optimizer.lr 5e-4`` or ``--lr_scheduler StepLR --lr_scheduler.step_size 10``;
* always-present, key-by-key configurable callbacks ``checkpoint`` (ModelCheckpoint: best by
  ``val_loss`` + ``last.ckpt``), ``early_stopping`` (``val_loss``, patience 10),
  ``prediction_writer`` (:class:`~se_lib.train.prediction_writer.AudioPredictionWriter`: ``se
  predict`` writes metadata-named wavs, by default to ``<checkpoint dir>/<checkpoint stem>_predictions``),
  ``live_metrics`` (:class:`~se_lib.train.live_metrics.SpeechMetricsMonitor`: ``val_pesq``, ``val_stoi``,
  ``val_dnsmos_ovrl`` on a fixed validation subset every k epochs) and ``progress``
  (:class:`~se_lib.train.progress.TrainingProgress`: one line per epoch and why training stopped);
* an ``mlflow`` group: the run goes to the MLflow store of :func:`se_lib.config.tracking_uri` (or
  ``--mlflow.tracking_uri``), experiment :func:`se_lib.config.experiment_name` (``--mlflow.experiment``,
  else the workflow config's, else ``$SE_EXPERIMENT``, else the schema's default), tagged by
  :func:`se_lib.tracking.runs.standard_tags` (rule ``cli`` outside Snakemake); the resolved config is
  logged as ``config.yaml`` (Lightning's SaveConfigCallback is off: it does not work with MLflow
  loggers), the best checkpoint under ``checkpoints/``, registered as a version of ``se-<arch>`` with
  ``--mlflow.register true`` (the workflow's jobs do; ad-hoc runs do not by default);
* ``se fit`` ends by printing where its checkpoints, MLflow run (id, experiment, store, UI address)
  and model version went (:meth:`SECLI.fit_summary`);
* ``--resume true``: if ``<checkpoint dir>/last.ckpt`` and the run id stored beside it
  (:mod:`se_lib.train.resume`) by an interrupted job with the same model/data/optimizer config
  exist, continue that MLflow run from ``last.ckpt`` (no duplicated or missing metric steps);
  otherwise start afresh;
* ``--compile true``: ``se fit`` runs the network through ``torch.compile``
  (:func:`se_lib.train.precision.compile_network`; the workflow's ``train.compile``); mixed precision is
  Lightning's own ``--trainer.precision`` (the workflow's ``train.precision``, resolved by
  :func:`se_lib.train.precision.resolve_precision`); both are logged as params (``trainer/precision``,
  ``compile``);
* DDP (``--trainer.devices N --trainer.strategy ddp``): rank 0 alone creates and writes the MLflow
  run, the resume state and the model version; the ranks it starts follow its resume decision.

The workflow's jobs build their argument lists and run this class in-process: :mod:`se_lib.train.jobs`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, LRSchedulerTypeTuple
from lightning.pytorch.utilities import rank_zero_only
from torch.optim import Optimizer

# Imported so that LightningCLI (jsonargparse) knows the project's classes by their short names.
import se_lib.data.datamodule  # noqa: F401  MixtureDataModule
import se_lib.models  # noqa: F401  ConvTasNet, ICConvTasNet, DPRNN, WaveUNet
from se_lib.config import SHARED_MODEL_CONFIG, available_models, experiment_name, schema_default
from se_lib.config import tracking_uri as default_tracking_uri
from se_lib.tracking.training import build_logger, mark_run_killed, run_is_active
from se_lib.train.callbacks import (
    CheckpointRegistrar,
    ConfigArtifactSaver,
    FirstBatchTimer,
    best_checkpoint_callback,
)
from se_lib.train.live_metrics import SpeechMetricsMonitor
from se_lib.train.module import DEFAULT_LR_SCHEDULER, DEFAULT_OPTIMIZER, EnhancementModule, optimizer_config
from se_lib.train.precision import compile_network
from se_lib.train.prediction_writer import AudioPredictionWriter
from se_lib.train.progress import TrainingProgress
from se_lib.train.resume import clear_checkpoint_dir, config_digest, read_resume_state, write_resume_state

log = logging.getLogger(__name__)

MLFLOW_SUBCOMMANDS = ("fit", "validate", "test")
TRAINER_PARAMS = (
    "max_epochs",
    "gradient_clip_val",
    "accumulate_grad_batches",
    "precision",
    "accelerator",
    "devices",
    "strategy",
    "limit_train_batches",
    "limit_val_batches",
    "check_val_every_n_epoch",
)

DESCRIPTION = """\
se: train, evaluate and apply the speech-enhancement models of this project (LightningCLI).

Subcommands: fit (train; tracked in MLflow, --resume true continues a killed run), validate, test
(evaluate a checkpoint: --ckpt_path), predict (write enhanced/noisy/target wavs named after their
mixture: --ckpt_path, --prediction_writer.output_dir); `se runs` prints the MLflow runs table
(se runs --help). config/models/_shared.yaml is read first;
add a model with --config config/models/<model>.yaml (models: {models}).

  se fit --config config/models/conv_tasnet.yaml --trainer.max_epochs 10
  se predict --config config/models/conv_tasnet.yaml --ckpt_path results/models/conv_tasnet/best.ckpt
  se fit --help | se fit --data.help MixtureDataModule | se fit --config ... --print_config
"""

# The resume state files sit beside the checkpoints; Lightning's notice about that is noise.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
# The module's configure_optimizers (plain-Trainer defaults) is replaced by the optimizer/lr_scheduler
# sections by design; Lightning says so on every run.
warnings.filterwarnings("ignore", message=r"`EnhancementModule.configure_optimizers` will be overridden")


@dataclass
class TrackingOptions:
    """MLflow options of the ``se`` command.

    Args:
        enabled: log to MLflow (fit/validate/test); otherwise no logger unless ``trainer.logger`` is set.
        experiment: experiment name; default :func:`se_lib.config.experiment_name` (the workflow
            config's, else ``$SE_EXPERIMENT``, else the schema's default).
        tracking_uri: store URI; default ``se_lib.config.tracking_uri()`` ($MLFLOW_TRACKING_URI or
            ``sqlite:///mlflow.db``).
        model_name: architecture name; the registered model is ``se-<model_name>``. Default: the
            module name of the net's class (``se_lib.models.ic_conv_tasnet.ICConvTasNet`` ->
            ``ic_conv_tasnet``).
        register: register the best checkpoint as a new version of ``se-<model_name>`` at the end of
            ``fit``. Off for ad-hoc runs (a smoke test must not become the latest version); the
            workflow's training jobs pass ``--mlflow.register true``.
    """

    enabled: bool = True
    experiment: str | None = None
    tracking_uri: str | None = None
    model_name: str | None = None
    register: bool = False


def arch_name(net_class_path: str | None) -> str | None:
    """``se_lib.models.ic_conv_tasnet.ICConvTasNet`` -> ``ic_conv_tasnet``."""
    if not net_class_path or "." not in net_class_path:
        return None
    return net_class_path.rsplit(".", 2)[-2]


def error_hint(message: str) -> str:
    """One line telling the user what to try after parse error ``message``."""
    lowered = message.lower()
    if "config" in lowered and (
        "does not exist" in lowered or "unable to load" in lowered or "no such file" in lowered
    ):
        return (
            f"hint: model configs are config/models/<model>.yaml ({', '.join(available_models())}); "
            "paths are relative to the working directory"
        )
    if "unrecognized" in lowered or "no action for key" in lowered or "not expected" in lowered:
        return "hint: `se <subcommand> --help` lists the keys; `--print_config` shows the resolved config"
    return "hint: `se <subcommand> --help` lists the options; `--print_config` shows the resolved config"


class DescriptionFormatter(argparse.RawDescriptionHelpFormatter, DefaultHelpFormatter):
    """jsonargparse's help formatter, keeping the line breaks of the command's description."""


class SEArgumentParser(LightningArgumentParser):
    """LightningArgumentParser whose errors print ``error: ...`` and a one-line hint (no usage dump)."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
            super().error(message, ex)
        prog = (getattr(ex, "subcommand_parser", None) or self).prog.replace(" [options]", "")
        sys.stderr.write(f"error: {message.strip()}\n{error_hint(message)} ({prog} --help)\n")
        raise SystemExit(2)


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
        kwargs.setdefault("parser_class", SEArgumentParser)
        kwargs.setdefault("seed_everything_default", schema_default("seed"))
        kwargs.setdefault("parser_kwargs", self.default_parser_kwargs(run))
        super().__init__(args=args, run=run, **kwargs)

    @classmethod
    def default_parser_kwargs(cls, run: bool = True) -> dict[str, Any]:
        """The command's description, and :data:`SHARED_MODEL_CONFIG` as the default config file of
        every subcommand (of the single parser with ``run=False``)."""
        shared = {"default_config_files": [str(SHARED_MODEL_CONFIG)]}
        main = {
            "description": DESCRIPTION.format(models=", ".join(available_models())),
            "formatter_class": DescriptionFormatter,
        }
        if not run:
            return {**shared, **main}
        return {**main, **{name: dict(shared) for name in cls.subcommands()}}

    # ----------------------------------------------------------------------- parser
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Always-present callbacks; their settings are in config/models/_shared.yaml.
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.add_lightning_class_args(AudioPredictionWriter, "prediction_writer")
        # in this order: the progress line shows what the live-metrics callback logged that epoch
        parser.add_lightning_class_args(SpeechMetricsMonitor, "live_metrics")
        parser.add_lightning_class_args(TrainingProgress, "progress")
        parser.add_optimizer_args((Optimizer,))
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple)
        parser.set_defaults({"optimizer": DEFAULT_OPTIMIZER, "lr_scheduler": DEFAULT_LR_SCHEDULER})
        parser.add_class_arguments(TrackingOptions, "mlflow")
        parser.add_argument(
            "--resume",
            type=bool,
            default=False,
            help="Continue an interrupted fit: last.ckpt + its MLflow run, if the model/data config is unchanged.",
        )
        parser.add_argument(
            "--compile",
            type=bool,
            default=False,
            help="fit: run the network through torch.compile (same weights and checkpoints as without).",
        )

    @staticmethod
    def configure_optimizers(lightning_module: Any, optimizer: Optimizer, lr_scheduler: Any = None) -> Any:
        """The ``optimizer:`` / ``lr_scheduler:`` sections as ``configure_optimizers`` returns them
        (:func:`se_lib.train.module.optimizer_config`)."""
        return optimizer_config(optimizer, lr_scheduler)

    # ------------------------------------------------------------------ resolution
    def sub_config(self) -> Any:
        """The parsed config of the running subcommand (the whole config without subcommands)."""
        return self.config[self.subcommand] if self.subcommand else self.config

    def dumped_config(self) -> dict[str, Any]:
        """The resolved config of the running subcommand as plain data (what ``--print_config`` shows)."""
        dumped = yaml.safe_load(self.parser.dump(self.config, skip_none=False, skip_check=True))
        return dumped[self.subcommand] if self.subcommand else dumped

    def config_text(self) -> str:
        """:meth:`dumped_config` as YAML: the complete config logged to MLflow as ``config.yaml``."""
        return yaml.safe_dump(self.dumped_config(), sort_keys=False)

    def store_uri(self, cfg: Any = None) -> str:
        """``--mlflow.tracking_uri``, else :func:`se_lib.config.tracking_uri` of the workflow config."""
        cfg = cfg if cfg is not None else self.sub_config()
        return cfg.mlflow.tracking_uri or default_tracking_uri(self.workflow_config)

    def experiment(self, cfg: Any = None) -> str:
        """The MLflow experiment: :func:`se_lib.config.experiment_name` with ``--mlflow.experiment``."""
        cfg = cfg if cfg is not None else self.sub_config()
        return experiment_name(self.workflow_config, cfg.mlflow.experiment)

    def _model_name(self, cfg: Any) -> str | None:
        if cfg.mlflow.model_name:
            return cfg.mlflow.model_name
        net = getattr(getattr(cfg.model, "init_args", None), "net", None)
        return arch_name(getattr(net, "class_path", None))

    def before_instantiate_classes(self) -> None:
        cfg = self.sub_config()
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

        self.digest = config_digest(self.dumped_config(), db_digest())
        if cfg.resume and not cfg.ckpt_path:
            self._prepare_resume(cfg)

    def _prepare_resume(self, cfg: Any) -> None:
        state = read_resume_state(self.checkpoint_dir)
        last = self.checkpoint_dir / "last.ckpt"
        if rank_zero_only.rank != 0:
            # A DDP rank started by rank 0 (which ran this first, and cleared the folder unless it
            # resumes): resume iff rank 0 does, i.e. iff its last.ckpt is there; no store calls.
            if state is not None and state.config_digest == self.digest and last.is_file():
                cfg.ckpt_path = str(last)
                self.resume_run_id = state.run_id or None
            return
        if state is None:
            if any(self.checkpoint_dir.glob("*.ckpt")):
                log.warning("resume: %s holds checkpoints without a run id; starting afresh", self.checkpoint_dir)
                clear_checkpoint_dir(self.checkpoint_dir)
            return
        usable = state.config_digest == self.digest and last.is_file()
        if usable and state.run_id and cfg.mlflow.enabled:
            usable = run_is_active(self.store_uri(cfg), state.run_id)
        if usable:
            cfg.ckpt_path = str(last)
            self.resume_run_id = state.run_id or None
            log.info("resume: continuing run %s from %s", state.run_id, last)
            return
        reason = "config changed" if state.config_digest != self.digest else "no last.ckpt"
        log.warning("resume: interrupted run %s not resumable (%s); starting a new run", state.run_id, reason)
        if state.run_id and cfg.mlflow.enabled:
            mark_run_killed(self.store_uri(cfg), state.run_id)
        clear_checkpoint_dir(self.checkpoint_dir)

    def instantiate_classes(self) -> None:
        """Instantiate as LightningCLI does, then record the *config* of the module's ``net`` in its
        hparams (the module keeps the network object out of them), so that checkpoints of this
        command rebuild the network they were trained with (``se predict --ckpt_path``)."""
        super().instantiate_classes()
        if self.subcommand is None or not isinstance(self.model, EnhancementModule):
            return
        net = (self.dumped_config()["model"].get("init_args") or {}).get("net")
        if isinstance(net, dict):
            self.model.hparams["net"] = net

    # ------------------------------------------------------------------ trainer
    def instantiate_trainer(self, **kwargs: Any) -> Any:
        cfg = self.sub_config()
        if self.subcommand is None:
            return super().instantiate_trainer(**kwargs)
        config_text = self.config_text()
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
        if self.subcommand == "fit":
            extra.append(FirstBatchTimer())  # one log line: how long the job took to its first batch
        if self.subcommand == "fit" and rank_zero_only.rank == 0:
            write_resume_state(self.checkpoint_dir, self.run_id or "", self.digest)
        defaults = self.trainer_defaults.get("callbacks", [])
        defaults = list(defaults) if isinstance(defaults, list) else [defaults]
        self.trainer_defaults = {**self.trainer_defaults, "callbacks": defaults + extra}
        return super().instantiate_trainer(**kwargs)

    def _run_params(self) -> dict[str, Any]:
        """MLflow params beyond the module's and data module's hparams: the network's config (``net/...``),
        optimizer and scheduler (``optimizer/...``, ``lr_scheduler/...``), trainer settings, seed, ..."""
        dumped = self.dumped_config()
        params: dict[str, Any] = {"seed_everything": dumped.get("seed_everything"), "compile": dumped.get("compile")}
        net = (dumped["model"].get("init_args") or {}).get("net")
        sections = {"net": net, "optimizer": dumped.get("optimizer"), "lr_scheduler": dumped.get("lr_scheduler")}
        for prefix, section in sections.items():
            if isinstance(section, dict):
                params[f"{prefix}/class_path"] = section.get("class_path")
                for key, value in (section.get("init_args") or {}).items():
                    params[f"{prefix}/init_args/{key}"] = value
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

        uri, experiment = self.store_uri(cfg), self.experiment(cfg)
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

    def before_fit(self) -> None:
        """``--compile true``: compile the network's forward before training (in place, see
        :func:`se_lib.train.precision.compile_network`)."""
        if self.sub_config().get("compile") and isinstance(self.model, EnhancementModule):
            compile_network(self.model.net)

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
            "world_size": int(trainer.world_size),
            "registered_model": reg.model_name if reg else None,
            "registered_version": reg.version if reg else None,
            "resumed": self.resume_run_id is not None,
        }
        if rank_zero_only.rank == 0:
            print(self.fit_summary(), flush=True)

    def fit_summary(self) -> str:
        """Where the finished fit went: checkpoints, MLflow run (id, experiment, store, UI address), model
        version -- or how to register one."""
        from se_lib.tracking.urls import DEFAULT_PORT, run_url

        res = self.fit_result or {}
        cfg = self.sub_config()
        score = res.get("best_val_loss")
        lines = [
            f"se fit finished: {res.get('epochs')} epochs, {res.get('global_step')} steps"
            + (f", best val_loss {score:.4f}" if score is not None else "")
        ]
        folder = Path(self.checkpoint_dir).resolve() if self.checkpoint_dir else None
        best, last = res.get("best_checkpoint"), res.get("last_checkpoint")
        names = ", ".join(f"{k} {Path(v).name}" for k, v in (("best", best), ("last", last)) if v)
        lines.append(f"  checkpoints:   {folder}/ ({names or 'none written'})")
        if not self.run_id:
            lines.append("  MLflow run:    none (--mlflow.enabled false, or a logger of your own)")
            return "\n".join(lines)
        lines.append(f"  MLflow run:    {self.run_id}, experiment {self.experiment(cfg)!r}, store {self.tracking_uri}")
        base = f"http://127.0.0.1:{DEFAULT_PORT}"
        lines.append(f"                make mlflow-ui, then {run_url(base, str(self.experiment_id), self.run_id)}")
        name = self._model_name(cfg)
        if res.get("registered_version"):
            lines.append(f"  model version: {res['registered_model']}/{res['registered_version']} (registered)")
        elif name:
            lines.append(f"  model version: none (--mlflow.register true registers the best checkpoint as se-{name})")
        return "\n".join(lines)
