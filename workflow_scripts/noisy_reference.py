"""Snakemake glue for rule `noisy_reference`: noisy + target wavs of a split, straight from the mixture DB."""

import mlflow

from se_lib.inference.writer import export_references
from se_lib.workflow import rule_job


def main(smk) -> None:
    split = smk.wildcards.split
    params = {"split": split, "db_url": smk.params.db_url, "db_split": smk.params.db_split}
    with rule_job(smk, params={**params, "sample_rate": smk.params.sample_rate}) as (log, run):
        counts = export_references(
            smk.params.db_url,
            smk.params.db_split,
            smk.output[0],
            sample_rate=smk.params.sample_rate,
            batch_size=smk.params.batch_size,
        )
        mlflow.log_metrics({"n_files": counts["n_files"], "audio_seconds": counts["audio_seconds"]})
        log.info(
            "%s: wrote %d mixtures (%.1f s) to %s", split, counts["n_files"], counts["audio_seconds"], smk.output[0]
        )


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
