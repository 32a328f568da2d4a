"""Training: the LightningModule, the ``se`` LightningCLI, callbacks, losses and MLflow plumbing.

Import the pieces from their modules (``se_lib.train.module.EnhancementModule``,
``se_lib.train.cli.main``, ...); this package file stays import-light so that ``se --help`` and
the Snakemake rule files load quickly.
"""
