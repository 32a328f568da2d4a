"""Snakemake glue for rule `corpus`: build the speech/noise corpus into the declared output folder."""

import os

import mlflow

from se_lib.data.corpora.stage import test_set_config
from se_lib.data.corpus import build_corpus
from se_lib.workflow import rule_job

with rule_job(snakemake) as (log, run):  # logs the rule's params (corpus, seed, sample_rate)
    name = snakemake.params.get("test_set")  # rule test_set_corpus: a public test set's own corpus
    config = test_set_config(snakemake.config, name) if name else snakemake.config
    stats = build_corpus(config, out_dir=snakemake.output[0], log=log.info)
    mlflow.log_dict(stats, "corpus_stats.json")
    for name in ("speech.tsv", "noise.tsv", "recordings.tsv", "manifest.tsv"):  # simulated / recorded corpus
        if os.path.exists(f"{snakemake.output[0]}/{name}"):
            mlflow.log_artifact(f"{snakemake.output[0]}/{name}", artifact_path="manifests")
