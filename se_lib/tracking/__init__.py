"""All MLflow code of the project, one module per concern.

* :mod:`se_lib.tracking.runs` - one run per workflow rule with the provenance tags (light: imported
  when the Snakefile is parsed), nested under one parent run per ``snakemake`` invocation, and the
  test scores logged onto a model's training run and its registered version;
* :mod:`se_lib.tracking.git` / :mod:`se_lib.tracking.env` - git and environment provenance (the
  dirty flag, and the clean-tree check of ``require_clean_git``);
* :mod:`se_lib.tracking.cluster` - cluster execution: the store check of cluster executors (no local
  sqlite store unless ``tracking.shared_single_node``) and the ``slurm.*`` tags of a SLURM job;
* :mod:`se_lib.tracking.training` - the training job's side: resumable Lightning ``MLFlowLogger``,
  checkpoint registry (versions tagged with commit and DB digest), the DB splits as dataset inputs,
  run lookup, kill and log attachment (imports Lightning);
* :mod:`se_lib.tracking.history` - finished training runs read back for the report (``run.json``,
  learning curves, the experiment's runs and parameters);
* :mod:`se_lib.tracking.table` - the runs table of an experiment (``se runs``);
* :mod:`se_lib.tracking.ui` - the MLflow UI over the project's store at the runs table (``make mlflow-ui``);
* :mod:`se_lib.tracking.service` - the tracking server as a background service of the team (``se mlflow
  start|stop|status``: pid file, log, health, basic auth) and the workflow's check of its credentials;
* :mod:`se_lib.tracking.cleanup` - ``se runs delete`` (mark runs deleted) and ``se runs gc`` (remove
  them and their artifacts for good, ``mlflow gc``).
"""
