"""One MLflow run per workflow rule, carrying the provenance tags of DESIGN.md.

Every rule's run carries: ``mlflow.source.git.commit`` + a dirty flag (and the diff as an artifact when
dirty), ``mlflow.runName`` = rule plus wildcards, ``snakemake.rule``, ``snakemake.wildcards.*``, the
environment (uv.lock digest, Python, torch, CUDA, device), the SLURM job (``slurm.job_id``, ... when run
by SLURM; :mod:`se_lib.tracking.cluster`), the mixture-DB digest and the workflow invocation id
(``SE_INVOCATION_ID``, set once per ``snakemake`` invocation by the Snakefile and inherited by every job,
locally or on a cluster).

Each ``snakemake`` invocation that runs jobs has a parent run (:func:`start_invocation_run` at
``onstart``, :func:`end_invocation_run` at ``onsuccess``/``onerror``; tag ``se.run_kind = invocation``);
every rule's run started under that invocation carries ``mlflow.parentRunId`` = its id, so the MLflow
UI nests them. A ``snakemake`` killed outright (SIGKILL, a lost node, a closed laptop) runs no
``onerror``, so its parent run would stay RUNNING for ever: the parent records the snakemake process
(``se.invocation.host``/``.pid``), and the next invocation on that host marks parents whose process is
gone KILLED (:func:`close_abandoned_invocations`). A job finds its parent in the store by the
invocation id (:func:`invocation_parent`), so nothing but ``SE_INVOCATION_ID`` has to reach a job, wherever it runs.

Every experiment the workflow creates or uses (:func:`setup_tracking`) carries MLflow's experiment-kind
tag ``mlflow.experimentKind = custom_model_development`` ("Machine learning" in the UI;
:func:`ensure_experiment_kind`): MLflow 3 UIs that read the tag open the runs table and the classic
navigation for it instead of inferring a kind (or offering the GenAI pages). A value a user chose
is kept. (MLflow 3.17's UI decides the kind by its GenAI / Machine-learning switch instead, so the
addresses :mod:`se_lib.tracking.urls` prints select "machine_learning" as well.)

Beside the rule's own run: :func:`client_for` (a client for a given store) and
:func:`log_split_metrics` (a split's test scores written onto the model's *training* run, so MLflow's
runs table compares models).
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from se_lib.config import experiment_name, tracking_uri
from se_lib.tracking.cluster import slurm_tags
from se_lib.tracking.env import environment_tags
from se_lib.tracking.git import git_info

log = logging.getLogger(__name__)

DB_DIGEST_FILE = Path("results/db/digest.txt")
INVOCATION_ENV = "SE_INVOCATION_ID"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's nesting tag (what mlflow.start_run(nested=True) sets)
RUN_KIND_TAG = "se.run_kind"  # "invocation" on the parent run of a snakemake invocation
INVOCATION_KIND = "invocation"
# MLflow's experiment-kind tag and its value for a model-training experiment (the UI's "Machine learning";
# others are e.g. "genai_development"): see ensure_experiment_kind
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def run_name(rule: str, wildcards: Mapping[str, Any] | None) -> str:
    """``rule`` or ``rule[key=value,...]`` in wildcard order."""
    if not wildcards:
        return rule
    return f"{rule}[" + ",".join(f"{k}={v}" for k, v in wildcards.items()) + "]"


def db_digest(path: str | os.PathLike = DB_DIGEST_FILE) -> str:
    """Digest of the mixture DB recorded by the ``mixture_db`` rule, or ``none`` before it exists."""
    try:
        return Path(path).read_text(encoding="utf-8").split()[0]
    except (FileNotFoundError, IndexError):
        return "none"


def provenance_tags(config: Mapping | None = None) -> dict[str, str]:
    """Git, environment, SLURM job, invocation, experiment and seed tags (every run of this workflow, parents
    too)."""
    tags: dict[str, str] = {}
    tags.update(git_info().tags())
    tags.update(environment_tags())
    tags.update(slurm_tags())  # slurm.job_id etc. when this process runs in a SLURM job
    tags["mlflow.source.type"] = "JOB"
    tags["se.invocation_id"] = os.environ.get(INVOCATION_ENV, "interactive")
    if config is not None:
        tags["se.experiment"] = experiment_name(config)
        if "seed" in config:  # a validated workflow config always has one
            tags["se.seed"] = str(config["seed"])
    return tags


def standard_tags(
    rule: str, wildcards: Mapping[str, Any] | None = None, config: Mapping | None = None
) -> dict[str, str]:
    """Tags every rule's run carries (see module docstring); ``mlflow.parentRunId`` when the invocation
    has a parent run in the store of ``config``."""
    wildcards = dict(wildcards or {})
    tags = provenance_tags(config)
    tags["mlflow.runName"] = run_name(rule, wildcards)
    tags["mlflow.source.name"] = "Snakefile" if rule != "cli" else "se"
    tags["snakemake.rule"] = rule
    for key, value in wildcards.items():
        tags[f"snakemake.wildcards.{key}"] = str(value)
    tags["se.db_digest"] = db_digest()
    parent = invocation_parent(config)
    if parent:
        tags[PARENT_TAG] = parent
    return tags


def _store_exists(uri: str) -> bool:
    """False for a sqlite store whose file does not exist yet (opening it would create it unlocked)."""
    return not uri.startswith("sqlite:///") or Path(uri[len("sqlite:///") :]).exists()


def invocation_parent(config: Mapping | None = None, invocation: str | None = None) -> str | None:
    """Id of the parent run of invocation ``invocation`` (default ``$SE_INVOCATION_ID``) in the store and
    experiment of ``config``; ``None`` outside an invocation or when it has no parent run."""
    invocation = invocation or os.environ.get(INVOCATION_ENV)
    uri = tracking_uri(config)
    if not invocation or not _store_exists(uri):
        return None
    client = client_for(uri)
    exp = client.get_experiment_by_name(experiment_name(config))
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{RUN_KIND_TAG}` = '{INVOCATION_KIND}' and tags.`se.invocation_id` = '{invocation}'",
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


HOST_TAG = "se.invocation.host"
PID_TAG = "se.invocation.pid"
END_TAG = "se.invocation.end"


def _process_alive(pid: int, since_ms: int) -> bool:
    """Whether process ``pid`` exists and is the one that was running at ``since_ms`` (not a reused pid)."""
    import psutil

    try:
        return psutil.Process(pid).create_time() * 1000 <= since_ms + 1000
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def close_abandoned_invocations(client: Any, experiment_id: str, host: str | None = None) -> list[str]:
    """Mark KILLED the RUNNING parent runs of experiment ``experiment_id`` started on ``host`` (default:
    this machine) whose snakemake process is gone; return their ids. Parents from other hosts are left
    alone (their process cannot be checked from here)."""
    host = host or socket.gethostname()
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_KIND_TAG}` = '{INVOCATION_KIND}' and attributes.status = 'RUNNING' "
        f"and tags.`{HOST_TAG}` = '{host}'",
        max_results=1000,
    )
    closed = []
    for run in runs:
        pid = run.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or _process_alive(int(pid), run.info.start_time):
            continue
        client.set_tag(
            run.info.run_id, END_TAG, f"abandoned: snakemake process {pid} on {host} ended without onsuccess/onerror"
        )
        client.set_terminated(run.info.run_id, status="KILLED")
        log.warning(
            "parent run %s of an earlier invocation was left RUNNING (process %s gone): marked KILLED",
            run.info.run_id,
            pid,
        )
        closed.append(run.info.run_id)
    return closed


def start_invocation_run(config: Mapping, configfiles: Sequence[str] = (), targets: Sequence[str] = ()) -> str:
    """Create the parent run of this ``snakemake`` invocation (``$SE_INVOCATION_ID``) once; return its id.

    Called by the Snakefile's ``onstart`` (the main process, before any job starts): run name
    ``snakemake <invocation id[:8]>``, the provenance tags, tag ``se.run_kind = invocation``, the config
    files and targets as tags, the workflow config as parameters, and the git diff when dirty. Calling
    it again in the same invocation returns the existing run. Parent runs of earlier invocations on this
    host whose snakemake process died without ending them are marked KILLED first.
    """
    exp_id = setup_tracking(config)
    invocation = os.environ.setdefault(INVOCATION_ENV, uuid.uuid4().hex)
    existing = invocation_parent(config, invocation)
    if existing:
        return existing
    client = client_for(tracking_uri(config))
    close_abandoned_invocations(client, exp_id)
    tags = provenance_tags(config)
    tags["mlflow.source.name"] = "Snakefile"
    tags[RUN_KIND_TAG] = INVOCATION_KIND
    tags[HOST_TAG] = socket.gethostname()
    tags[PID_TAG] = str(os.getpid())  # onstart runs in the snakemake process itself
    if configfiles:
        tags["se.configfiles"] = ",".join(str(f) for f in configfiles)
    if targets:
        tags["se.targets"] = " ".join(str(t) for t in targets)[:5000]
    run = client.create_run(exp_id, run_name=f"snakemake {invocation[:8]}", tags=tags)
    run_id = run.info.run_id
    from mlflow.entities import Param

    # MlflowClient.log_batch splits the params into batches of MLflow's limit (100) itself
    client.log_batch(run_id, params=[Param(k, v) for k, v in flatten(dict(config)).items()])
    log_git_diff_if_dirty(run_id, client)
    return run_id


def end_invocation_run(config: Mapping, success: bool) -> str | None:
    """Mark this invocation's parent run FINISHED (``success``) or FAILED, with the final DB digest."""
    parent = invocation_parent(config)
    if parent is None:
        return None
    client = client_for(tracking_uri(config))
    client.set_tag(parent, "se.db_digest", db_digest())
    client.set_tag(parent, END_TAG, "success" if success else "error")
    client.set_terminated(parent, status="FINISHED" if success else "FAILED")
    return parent


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Serialise store creation across processes for file-backed (sqlite) stores."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db_path = Path(uri[len("sqlite:///") :])
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(db_path) + ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def setup_tracking(config: Mapping | None = None, experiment: str | None = None) -> str:
    """Point MLflow at the configured store, create it and the experiment once; return the experiment id.

    Several processes opening a *fresh* sqlite store at once race in MLflow's schema migration, so the
    Snakefile calls this once before jobs start and every job calls it again under a file lock.
    """
    import mlflow

    uri = tracking_uri(config)
    name = experiment_name(config, experiment)
    mlflow.set_tracking_uri(uri)
    with _store_lock(uri):
        client = mlflow.MlflowClient(uri)
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                exp_id = client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
            except mlflow.exceptions.MlflowException:  # created concurrently by a non-locking peer
                exp = client.get_experiment_by_name(name)
                exp_id = exp.experiment_id
                ensure_experiment_kind(client, exp)
        else:
            exp_id = exp.experiment_id
            ensure_experiment_kind(client, exp)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def ensure_experiment_kind(client: Any, experiment: Any) -> bool:
    """Tag ``experiment`` (an MLflow ``Experiment``) with :data:`EXPERIMENT_KIND_TAG` =
    :data:`EXPERIMENT_KIND` unless it already has a kind (a user's own choice is kept) or is deleted;
    return whether it was tagged. Experiments created before this tag existed get it on their next use.

    Without the tag, MLflow 3 UIs that read it infer a kind in the browser from what the experiment
    holds (a trace: GenAI, with its overview page; runs: Machine learning) on every visit. A store that
    refuses the tag (a read-only user on a tracking server) only costs that hint: a warning, the
    workflow goes on.
    """
    from mlflow.exceptions import MlflowException

    if EXPERIMENT_KIND_TAG in (experiment.tags or {}) or experiment.lifecycle_stage != "active":
        return False
    try:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    except MlflowException as exc:
        log.warning("could not tag experiment %s with %s: %s", experiment.name, EXPERIMENT_KIND_TAG, exc)
        return False
    return True


def log_git_diff_if_dirty(run_id: str, client: Any = None) -> None:
    """Attach ``git diff HEAD`` (plus untracked names) to the run as ``git/diff.patch`` when dirty."""
    info = git_info()
    if not info.dirty:
        return
    client = client or client_for()
    with tempfile.TemporaryDirectory() as tmp:
        patch = Path(tmp) / "diff.patch"
        patch.write_text(info.diff, encoding="utf-8")
        client.log_artifact(run_id, str(patch), artifact_path="git")


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested params to dotted keys with string values (MLflow param limit: 6000 chars)."""
    out: dict[str, str] = {}
    for key, value in d.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, full + "."))
        else:
            text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
            out[full] = text[:6000]
    return out


@contextmanager
def rule_run(
    rule: str,
    wildcards: Mapping[str, Any] | None,
    config: Mapping | None,
    params: Mapping[str, Any] | None = None,
    log_files: list[str] | None = None,
):
    """Start the rule's MLflow run with the standard tags; log params, and on exit the given log files.

    Yields the active ``mlflow.ActiveRun``; metrics/artifacts logged inside go to it. A failing body
    marks the run FAILED (MLflow's context manager) after the log files were attached.
    """
    import mlflow

    setup_tracking(config)
    tags = standard_tags(rule, wildcards, config)
    with mlflow.start_run(run_name=tags["mlflow.runName"], tags=tags) as run:
        log_git_diff_if_dirty(run.info.run_id)
        if params:
            mlflow.log_params(flatten(params))
        try:
            yield run
        finally:
            for path in log_files or []:
                if path and Path(path).exists():
                    mlflow.log_artifact(str(path), artifact_path="logs")


def snakemake_context(smk) -> dict[str, Any]:
    """Rule name, wildcards (as dict), config and log paths from a ``snakemake`` script object."""
    wildcards = {k: v for k, v in smk.wildcards.items()} if hasattr(smk.wildcards, "items") else {}
    return {
        "rule": smk.rule,
        "wildcards": wildcards,
        "config": dict(smk.config),
        "log_files": [str(p) for p in smk.log],
    }


def client_for(tracking_uri: str | None = None) -> Any:
    """An ``MlflowClient`` for the store ``tracking_uri``; ``None``: MLflow's current tracking URI."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri) if tracking_uri else MlflowClient()


def summary_metrics(summary: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """``<prefix><metric>`` (mean) and ``<prefix><metric>_ci95`` of a scorer summary, finite values only.

    ``summary`` is indexed by metric with columns ``mean`` (and ``ci95``), as
    :func:`se_lib.report.tables.read_summary` returns it.
    """
    values: dict[str, float] = {}
    for metric, row in summary.iterrows():
        values[f"{prefix}{metric}"] = float(row["mean"])
        if "ci95" in row:
            values[f"{prefix}{metric}_ci95"] = float(row["ci95"])
    return {k: v for k, v in values.items() if math.isfinite(v)}


def log_split_metrics(
    run_id: str,
    summary: pd.DataFrame,
    split: str,
    *,
    tracking_uri: str | None = None,
    extra: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Log :func:`summary_metrics` with prefix ``<split>_`` on run ``run_id`` (step 0), e.g. ``test_pesq``.

    ``extra`` metrics are logged as given. Non-finite values are skipped. Returns what was logged.
    """
    from mlflow.entities import Metric

    values = summary_metrics(summary, f"{split}_")
    values.update({k: float(v) for k, v in (extra or {}).items() if math.isfinite(float(v))})
    now = int(time.time() * 1000)
    if values:
        client_for(tracking_uri).log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in values.items()])
    return values


def tag_model_version(
    name: str, version: str | int, values: Mapping[str, Any], *, tracking_uri: str | None = None
) -> None:
    """Set ``values`` as tags of registered model version ``name``/``version`` (e.g. its test scores)."""
    client = client_for(tracking_uri)
    for key, value in values.items():
        client.set_model_version_tag(name, str(version), key, str(value))


def record_scores_on_training_run(
    train_run: Mapping[str, Any],
    summary: pd.DataFrame,
    split: str,
    *,
    tracking_uri: str | None = None,
    extra: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Write a model's ``split`` scores onto its training run (:func:`log_split_metrics`) and, for the
    test split and every public test set (``test_<name>``), onto its registered model version as tags
    (:func:`tag_model_version`): ``test_pesq_wb``, ``test_vbd_pesq_wb``, ...

    ``train_run`` is the model's ``run.json``. When that run is not in this store -- results restored
    with ``make pull`` into a clone without the original MLflow store, then re-scored -- nothing is
    written there (the score rule's own run still holds the scores) and a warning says why; returns
    ``{}`` then, else what was logged.
    """
    from mlflow.exceptions import MlflowException

    run_id = train_run["run_id"]
    client = client_for(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        log.warning(
            "training run %s is not in the tracking store %s (results restored without their MLflow store?): "
            "the %s scores stay on this score run only",
            run_id,
            tracking_uri,
            split,
        )
        return {}
    logged = log_split_metrics(run_id, summary, split, tracking_uri=tracking_uri, extra=extra)
    if (split == "test" or split.startswith("test_")) and train_run.get("registered_version"):
        name, version = train_run["registered_model"], train_run["registered_version"]
        tag_model_version(name, version, logged, tracking_uri=tracking_uri)
        log.info("tagged %s version %s with the %s scores", name, version, split)
    log.info("logged %d metrics on training run %s", len(logged), run_id)
    return logged
