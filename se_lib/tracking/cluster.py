"""MLflow on a cluster: a tracking store every node can reach, and each run tagged with its SLURM job.

* :func:`check_store_reachable` -- called by the Snakefile's ``onstart`` with the executor that runs the
  jobs. Jobs a cluster executor (e.g. ``slurm``) submits run on other machines: a sqlite file (the default
  ``sqlite:///mlflow.db``) is then either not there or shared over a network file system, where sqlite's
  locking is unsafe across nodes. Refused unless ``tracking.shared_single_node`` says the working directory
  is on a file system all jobs see and the cluster is a single node; the message says what to set instead
  (an MLflow server URL in ``tracking.uri`` or ``MLFLOW_TRACKING_URI``).
* :func:`slurm_tags` -- ``slurm.job_id`` (and cluster, node, partition, GPUs) of the SLURM job this process runs
  in, from the variables SLURM sets in every job; empty outside SLURM. Every run this workflow starts carries
  them (:func:`se_lib.tracking.runs.provenance_tags`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from se_lib.config import ConfigError, tracking_uri

# tag -> the SLURM variables it is read from, the first one set wins (slurmd sets them in every job step;
# the plugin's job step keeps only the job's identity of its batch script's variables before it calls srun,
# so the GPUs come from the step's own SLURM_STEP_GPUS)
SLURM_TAGS = {
    "slurm.job_id": ("SLURM_JOB_ID",),
    "slurm.cluster": ("SLURM_CLUSTER_NAME",),
    "slurm.node": ("SLURMD_NODENAME",),
    "slurm.partition": ("SLURM_JOB_PARTITION",),
    "slurm.gpus": ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS"),  # indices of the job's GPUs (only when it has some)
}
SHARED_KEY = "tracking.shared_single_node"
# Stores kept in a local file: reachable from other machines only through a shared file system.
FILE_STORE_SCHEMES = ("sqlite:", "file:")


def slurm_tags(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``slurm.*`` tags of the SLURM job this process runs in (``environ``: default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    if not environ.get("SLURM_JOB_ID"):
        return {}
    tags = {}
    for tag, names in SLURM_TAGS.items():
        value = next((environ[n] for n in names if environ.get(n)), None)
        if value:
            tags[tag] = value
    return tags


def is_file_store(uri: str) -> bool:
    """True for stores in a local file (``sqlite:///...``, ``file:...``, a bare path)."""
    return uri.startswith(FILE_STORE_SCHEMES) or "://" not in uri


def check_store_reachable(config: Mapping, executor: str | None, remote: bool) -> None:
    """Refuse a local file store when ``executor`` runs jobs on other machines (``remote``).

    ``config`` is the validated workflow config; ``executor`` the executor's name (e.g. ``slurm``, for the
    message). Raises :class:`se_lib.config.ConfigError` naming the keys to set.
    """
    if not remote:
        return
    uri = tracking_uri(config)
    if not is_file_store(uri) or config["tracking"]["shared_single_node"]:
        return
    raise ConfigError(
        f"config key 'tracking.uri': the MLflow store {uri!r} is a local file, but the {executor or 'cluster'} "
        "executor runs jobs on other machines. Set tracking.uri (--config tracking.uri=http://<host>:<port>) or "
        "MLFLOW_TRACKING_URI to an MLflow server URL every node reaches (README: 'Cluster (SLURM)' shows how to "
        f"start `mlflow server`), or set {SHARED_KEY}: true if the working directory is on a file system all "
        "jobs see and the cluster is one node."
    )
