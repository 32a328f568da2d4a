"""Snakemake glue for rule `corpus`: build the speech/noise corpus into the declared output folder."""

import mlflow

from se_lib.data.corpus import build_corpus
from se_lib.workflow import rule_job

with rule_job(snakemake) as (log, run):  # logs the rule's params (corpus, seed, sample_rate)
    stats = build_corpus(snakemake.config, out_dir=snakemake.output[0], log=log.info)
    mlflow.log_dict(stats, "corpus_stats.json")
    for name in ("speech.tsv", "noise.tsv"):
        mlflow.log_artifact(f"{snakemake.output[0]}/{name}", artifact_path="manifests")
