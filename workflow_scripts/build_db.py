"""Snakemake glue for rule `mixture_db`: build the mixture DB, then record its digest and summary."""

import mlflow

from se_lib.data.corpora.stage import test_set_config
from se_lib.data.db import build_db, summary_table
from se_lib.io import write_text_atomic
from se_lib.workflow import rule_job

url = snakemake.params.url
with rule_job(
    snakemake, params={"mixtures": snakemake.params.mixtures, "seed": snakemake.params.seed, "db_url": url}
) as (log, run):
    name = snakemake.params.get("test_set")  # rule test_set_db: a public test set's own DB
    digest = build_db(
        test_set_config(snakemake.config, name) if name else snakemake.config,
        url,
        corpus_dir=snakemake.input.corpus,
        rooms_dir=snakemake.input.get("rooms", "results/rooms"),
        log=log.info,
    )
    table = summary_table(url)
    write_text_atomic(snakemake.output.summary, table.to_csv(sep="\t", index=False))
    write_text_atomic(snakemake.output.digest, digest + "\n")
    mlflow.set_tag("se.db_digest", digest)
    mlflow.log_artifact(snakemake.output.summary)
    log.info("mixture DB %s digest %s\n%s", url, digest, table.to_string(index=False))
