"""MLflow side of a training job: the Lightning logger, run resumption and the model registry.

* :class:`ResumableMLFlowLogger` is Lightning's ``MLFlowLogger`` that can continue an existing run
  after a crash: when resumed it drops metric points whose step is not past the last step already
  stored for that key (the part of the interrupted epoch that is being recomputed), so every metric
  history keeps strictly increasing, unique steps; parameters already stored are not re-logged.
* :func:`build_logger` assembles the logger for a training job with the workflow's run tags.
* :func:`mlflow_logger` finds that logger on a trainer (for the callbacks that log artifacts).
* :func:`log_checkpoint` logs the best checkpoint (+ its metadata and config) as run artifacts;
  :func:`register_checkpoint` creates a registered model version (``se-<arch>``) pointing at the
  run's ``model`` artifact folder, the checkpoint's MLflow pyfunc model (:mod:`se_lib.inference.pyfunc`;
  MLflow 3 registry, works on the sqlite store), tagged with the run's commit and DB digest.
* :func:`log_dataset_inputs` records the mixture DB's train/val/test splits as the run's MLflow
  dataset inputs (digest = DB digest, source = DB URL); :func:`lineage_version_tags` are the commit
  and DB digest a registered version carries.
* :func:`log_sweep_point` tags a sweep point's run (``se.sweep``, ``se.sweep.point``) and logs its overrides
  as ``sweep/<key>`` parameters.
* :func:`run_is_active`, :func:`mark_run_killed` and :func:`attach_log_files` look up, supersede and
  annotate a training run by id (resuming an interrupted job, attaching the job's log).

This module imports Lightning; the light ``se_lib.tracking`` modules (``runs``, ``git``, ``env``,
``history``) do not.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from argparse import Namespace
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from se_lib.tracking.runs import client_for

log = logging.getLogger(__name__)

_METRIC_NAME = re.compile(r"[^a-zA-Z0-9_/. -]+")
# LightningCLI bookkeeping stored in hparams, not a hyper-parameter of the experiment.
INTERNAL_PARAMS = ("_instantiator", "_class_path")
# Tags a resumed run keeps from its first job: its name, and the invocation (and parent run) that
# started it; the resuming invocation is recorded as ``se.resumed_in_invocation``.
KEPT_ON_RESUME = ("mlflow.runName", "mlflow.parentRunId", "se.invocation_id")


def flatten_hparams(params: Mapping[str, Any] | Namespace | None, parent: str = "") -> dict[str, Any]:
    """Hyper-parameters keyed as Lightning's ``MLFlowLogger`` stores them, minus :data:`INTERNAL_PARAMS`.

    Nested mappings, ``Namespace``s and dataclass instances become ``/``-joined keys
    (``{"net": {"init_args": {"N": 64}}}`` -> ``{"net/init_args/N": 64}``), as do non-empty lists of
    mappings (``key/<index>/...``); other values are kept as they are. Top-level keys named in
    :data:`INTERNAL_PARAMS` are dropped.
    """
    if isinstance(params, Namespace):
        params = vars(params)
    flat: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if not parent and key in INTERNAL_PARAMS:
            continue
        name = f"{parent}/{key}" if parent else str(key)
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        elif isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, MutableMapping):
            flat.update(flatten_hparams(value, name))
        elif isinstance(value, list) and value and all(isinstance(v, MutableMapping) for v in value):
            for i, item in enumerate(value):
                flat.update(flatten_hparams(item, f"{name}/{i}"))
        else:
            flat[name] = value
    return flat


class ResumableMLFlowLogger(MLFlowLogger):
    """``MLFlowLogger`` that continues run ``run_id`` without duplicated metric steps.

    Args:
        resume: treat ``run_id`` as an interrupted run being continued (metric points at or before
            the last stored step of their key are skipped; the run is set back to RUNNING).
        Other arguments as :class:`lightning.pytorch.loggers.MLFlowLogger`.
    """

    def __init__(self, *args: Any, resume: bool = False, prefix: str = "", **kwargs: Any) -> None:
        super().__init__(*args, prefix=prefix, **kwargs)
        self._metric_prefix = prefix
        self._resume = bool(resume and kwargs.get("run_id"))
        self._last_steps: dict[str, int] | None = None

    @property
    def resumed(self) -> bool:
        return self._resume

    def _stored_last_steps(self) -> dict[str, int]:
        client = self.experiment
        run = client.get_run(self.run_id)
        last: dict[str, int] = {}
        for key in run.data.metrics:
            history = client.get_metric_history(self.run_id, key)
            if history:
                last[key] = max(m.step for m in history)
        return last

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._resume:
            if self._last_steps is None:
                self._last_steps = self._stored_last_steps()
            s = step or 0
            kept = {}
            for key, value in metrics.items():
                name = _METRIC_NAME.sub(
                    "", f"{self._metric_prefix}{self.LOGGER_JOIN_CHAR}{key}" if self._metric_prefix else key
                )
                if s > self._last_steps.get(name, -1):
                    kept[key] = value
            metrics = kept
            if not metrics:
                return
        super().log_metrics(metrics, step)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        flat = flatten_hparams(params)
        if not self._resume:
            super().log_hyperparams(flat)
            return
        stored = self.experiment.get_run(self.run_id).data.params
        fresh = {}
        for key, value in flat.items():
            text = str(value)[:250]
            if key not in stored:
                fresh[key] = value
            elif stored[key] != text:
                log.warning(
                    "resumed run %s: parameter %s was %r, now %r (kept the stored value)",
                    self.run_id,
                    key,
                    stored[key],
                    text,
                )
        if fresh:
            super().log_hyperparams(fresh)


def build_logger(
    experiment: str,
    tracking_uri: str,
    tags: Mapping[str, str],
    run_id: str | None = None,
) -> ResumableMLFlowLogger:
    """Logger for one training job: a new run carrying ``tags``, or the interrupted run ``run_id``
    (its tags updated, except :data:`KEPT_ON_RESUME`)."""
    if run_id:
        logger = ResumableMLFlowLogger(
            experiment_name=experiment, tracking_uri=tracking_uri, run_id=run_id, resume=True
        )
        client = logger.experiment
        client.update_run(run_id, status="RUNNING")
        for key, value in tags.items():
            if key not in KEPT_ON_RESUME:
                client.set_tag(run_id, key, value)
        if tags.get("se.invocation_id"):
            client.set_tag(run_id, "se.resumed_in_invocation", tags["se.invocation_id"])
        return logger
    run_name = tags.get("mlflow.runName")
    return ResumableMLFlowLogger(
        experiment_name=experiment,
        tracking_uri=tracking_uri,
        tags={k: v for k, v in tags.items() if k != "mlflow.runName"},
        run_name=run_name,
    )


def mlflow_logger(trainer: Any) -> MLFlowLogger | None:
    """The trainer's first MLflow logger, or ``None``."""
    for logger in getattr(trainer, "loggers", []) or []:
        if isinstance(logger, MLFlowLogger):
            return logger
    return None


def log_checkpoint(
    client: Any,
    run_id: str,
    checkpoint: str | os.PathLike,
    meta: Mapping[str, Any],
    config_text: str | None = None,
    artifact_path: str = "checkpoints",
) -> None:
    """Log ``checkpoint`` on run ``run_id`` as ``<artifact_path>/best.ckpt`` beside ``best.json``
    (``meta``) and, if given, ``config.yaml`` (the resolved config it was trained with)."""
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(os.path.abspath(checkpoint), os.path.join(tmp, "best.ckpt"))  # no copy of a large file
        Path(tmp, "best.json").write_text(json.dumps(dict(meta), indent=2), encoding="utf-8")
        if config_text:
            Path(tmp, "config.yaml").write_text(config_text, encoding="utf-8")
        client.log_artifacts(run_id, tmp, artifact_path=artifact_path)


def lineage_version_tags(run_tags: Mapping[str, str]) -> dict[str, str]:
    """Model-version tags naming the code and data of a training run (from the run's tags):
    ``git_commit``, ``git_dirty``, ``db_digest``, ``experiment``, ``invocation_id``."""
    keys = {
        "git_commit": "mlflow.source.git.commit",
        "git_dirty": "se.git.dirty",
        "db_digest": "se.db_digest",
        "experiment": "se.experiment",
        "invocation_id": "se.invocation_id",
    }
    return {name: run_tags[key] for name, key in keys.items() if run_tags.get(key)}


def register_checkpoint(
    client: Any, run_id: str, name: str, artifact_path: str = "model", tags: Mapping[str, str] | None = None
) -> str:
    """Register ``runs:/<run_id>/<artifact_path>`` as a new version of model ``name``; return the version.

    The version carries ``tags`` and the run's :func:`lineage_version_tags` (commit, dirty flag, DB
    digest); the run is tagged ``se.registered_model = <name>/<version>``.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            name,
            description="Speech-enhancement networks as MLflow pyfunc models (se_lib.inference.pyfunc): "
            "recordings [batch, channels, samples] -> enhanced [batch, samples]",
        )
    except MlflowException as exc:  # already registered (possibly by a concurrent job)
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code) and "already exists" not in str(exc):
            raise
    version_tags = {**lineage_version_tags(client.get_run(run_id).data.tags), **dict(tags or {})}
    version = str(
        client.create_model_version(
            name, source=f"runs:/{run_id}/{artifact_path}", run_id=run_id, tags=version_tags
        ).version
    )
    client.set_tag(run_id, "se.registered_model", f"{name}/{version}")
    return version


# MLflow's limit on a dataset digest (mlflow.utils.validation.MAX_DATASET_DIGEST_SIZE); the full DB
# digest goes into the input tag ``se.db_digest``.
DATASET_DIGEST_CHARS = 36


def dataset_source(db_url: str) -> tuple[str, str]:
    """MLflow ``(source_type, source)`` of the mixture DB at ``db_url``, password hidden: a SQLite file
    is ``local`` ``{"uri": url}``, a server ``external`` ``{"url": url}`` (what the UI shows)."""
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(db_url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (a bare path): shown as given
        shown = str(db_url)
    if shown.startswith("sqlite") or "://" not in shown:
        return "local", json.dumps({"uri": shown})
    return "external", json.dumps({"url": shown})


def dataset_inputs(db_url: str, digest: str, counts: Mapping[str, int] | None = None) -> list[Any]:
    """One MLflow ``DatasetInput`` per split of the mixture DB: name ``mixtures-<split>``, the DB digest
    (first :data:`DATASET_DIGEST_CHARS` characters) as digest, the DB URL as source, context = split
    (input tag ``mlflow.data.context``), the full digest as input tag ``se.db_digest`` and, when
    ``counts`` gives it, the split's mixture count as profile ``{"num_rows": n}``."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from se_lib.data.splits import SPLITS

    source_type, source = dataset_source(db_url)
    inputs = []
    for split in SPLITS:
        profile = json.dumps({"num_rows": int(counts[split])}) if counts and split in counts else None
        dataset = Dataset(
            name=f"mixtures-{split}",
            digest=digest[:DATASET_DIGEST_CHARS],
            source_type=source_type,
            source=source,
            profile=profile,
        )
        tags = [InputTag("mlflow.data.context", split), InputTag("se.db_digest", digest)]
        inputs.append(DatasetInput(dataset, tags))
    return inputs


def log_dataset_inputs(
    tracking_uri: str, run_id: str, db_url: str, digest: str, counts: Mapping[str, int] | None = None
) -> None:
    """Record the train/val/test splits of the mixture DB as dataset inputs of run ``run_id``
    (:func:`dataset_inputs`; logging the same inputs again, e.g. from a resumed job, adds nothing)."""
    client_for(tracking_uri).log_inputs(run_id, datasets=dataset_inputs(db_url, digest, counts))


def run_is_active(tracking_uri: str, run_id: str) -> bool:
    """Whether run ``run_id`` exists in the store and is not deleted."""
    from mlflow.exceptions import MlflowException

    try:
        run = client_for(tracking_uri).get_run(run_id)
    except MlflowException:
        return False
    return run.info.lifecycle_stage == "active"


def mark_run_killed(tracking_uri: str, run_id: str) -> None:
    """Set a superseded interrupted run to KILLED (no-op if it is gone or already terminated)."""
    from mlflow.exceptions import MlflowException

    client = client_for(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return
    if run.info.status == "RUNNING":
        client.set_terminated(run_id, status="KILLED")


def attach_log_files(tracking_uri: str, run_id: str, paths: Sequence[str | os.PathLike]) -> None:
    """Attach the existing files of ``paths`` to run ``run_id`` under ``logs/``.

    Failures are logged as warnings, never raised: attaching a log must not mask the job's outcome.
    """
    client = client_for(tracking_uri)
    for path in paths:
        if path and Path(path).is_file():
            try:
                client.log_artifact(run_id, str(path), artifact_path="logs")
            except Exception as exc:
                log.warning("could not attach %s to run %s: %s", path, run_id, exc)


#: Tags of a sweep point's training run: the sweep (its model) and the point (its system name).
SWEEP_TAG, SWEEP_POINT_TAG = "se.sweep", "se.sweep.point"
#: Prefix of the parameters holding a sweep point's overrides (``sweep/optimizer.init_args.lr``).
SWEEP_PARAM_PREFIX = "sweep/"


def log_sweep_point(tracking_uri: str, run_id: str, model: str, point: Mapping[str, Any]) -> None:
    """Mark run ``run_id`` as sweep point ``point`` of model ``model``'s sweep: tags :data:`SWEEP_TAG`
    (the model) and :data:`SWEEP_POINT_TAG` (the point's system name), and one parameter
    ``sweep/<key>`` per override (JSON for non-strings), so MLflow's runs table filters and compares
    a sweep by them. A failure is logged, never raised (the training outcome stands)."""
    from mlflow.entities import Param, RunTag

    client = client_for(tracking_uri)
    try:
        params = {
            f"{SWEEP_PARAM_PREFIX}{k}": v if isinstance(v, str) else json.dumps(v)
            for k, v in point["overrides"].items()
        }
        existing = client.get_run(run_id).data.params
        client.log_batch(
            run_id,
            params=[Param(k, v) for k, v in params.items() if k not in existing],
            tags=[RunTag(SWEEP_TAG, model), RunTag(SWEEP_POINT_TAG, str(point["system"]))],
        )
    except Exception as exc:
        log.warning("could not mark run %s as sweep point %s: %s", run_id, point.get("system"), exc)
