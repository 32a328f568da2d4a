"""Addresses in the MLflow UI (MLflow 3.x), kept free of imports: the ``se fit`` summary prints them and
:mod:`se_lib.tracking.ui` (``make mlflow-ui``) serves them.

MLflow 3's UI lands on a GenAI "Overview" page at its root or at ``#/experiments/<id>``; the classic runs
table of an experiment is at ``#/experiments/<id>/runs``, a run's page at ``.../runs/<run_id>``.

MLflow 3.17's UI also has a GenAI / Machine-learning switch (its "workflow type": the address's
``workflowType`` parameter, else the browser's last choice, else GenAI) that decides the experiment's
kind there, whatever the experiment's ``mlflow.experimentKind`` tag says: on GenAI the runs table sits
under the GenAI navigation (Overview, Traces, ...) as "Training runs". :func:`runs_table_url` therefore
selects ``workflowType=machine_learning``: the classic "Runs" page and navigation (Runs, Models, Traces,
Model registry), in any browser, fresh or not.
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "TRAINING_RUNS", "WORKFLOW_TYPE", "run_url", "runs_table_url"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
# MLflow search filter for the workflow's training runs (their Dataset column names the data they used)
TRAINING_RUNS = "tags.`snakemake.rule` = 'train'"
# MLflow UI's workflow type for model training (the other is "genai"), an address parameter
WORKFLOW_TYPE = "machine_learning"


def runs_table_url(base_url: str, experiment_id: str, search: str | None = None) -> str:
    """Address of experiment ``experiment_id``'s runs table in the MLflow UI served at ``base_url``, in the
    UI's Machine-learning view (:data:`WORKFLOW_TYPE`), filtered by the MLflow search expression ``search``
    when given (e.g. :data:`TRAINING_RUNS`)."""
    url = f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType={WORKFLOW_TYPE}"
    return f"{url}&searchFilter={quote(search, safe='')}" if search else url


def run_url(base_url: str, experiment_id: str, run_id: str) -> str:
    """Address of run ``run_id``'s page (parameters, metrics, tags, artifacts) in the MLflow UI."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
