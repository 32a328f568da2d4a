"""Snakemake glue for rule `report_table`: the comparison table (TSV + HTML + DVC metrics JSON) of one split."""

import mlflow

from se_lib.dvc_stages import write_metrics
from se_lib.report.tables import BASELINE, write_comparison
from se_lib.workflow import rule_job


def main(smk) -> None:
    split, models = smk.wildcards.split, list(smk.params.models)
    with rule_job(smk, params={"split": split, "models": models}) as (log, run):
        summaries = {BASELINE: smk.input.noisy, **dict(zip(models, smk.input.summaries, strict=True))}
        stats = {BASELINE: None, **dict(zip(models, smk.input.stats, strict=True))}
        table = write_comparison(
            summaries, stats, smk.output.tsv, smk.output.html, split=split, published=smk.params.published
        )
        write_metrics(table, smk.output.metrics)
        for path in (smk.output.tsv, smk.output.html):
            mlflow.log_artifact(path, artifact_path="report")
        log.info("comparison (%s):\n%s", split, table.to_string(index=False))


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
