"""Snakemake glue for rule `rooms`: simulate the rooms into the declared output folder."""

import mlflow

from se_lib.data.rooms import build_rooms
from se_lib.workflow import rule_job

with rule_job(snakemake) as (log, run):  # logs the rule's params (rooms, seed, sample_rate)
    stats = build_rooms(
        snakemake.config,
        out_dir=snakemake.output[0],
        corpus_dir=snakemake.input.corpus,
        workers=snakemake.threads,
        log=log.info,
    )
    mlflow.log_dict(stats, "rooms_stats.json")
    mlflow.log_artifact(f"{snakemake.output[0]}/rooms.tsv", artifact_path="manifests")
