"""Snakemake glue for rule `report_provenance`: which config produced the results (se_lib/report/provenance.py)."""

import mlflow

from se_lib.io import write_json_atomic
from se_lib.report.provenance import provenance_record
from se_lib.tracking.history import read_run_json
from se_lib.tracking.runs import db_digest
from se_lib.workflow import rule_job


def main(smk) -> None:
    models = list(smk.params.models)
    with rule_job(smk, params={"models": models, "config_digest": smk.params.config_digest}) as (log, run):
        runs = {m: read_run_json(p) for m, p in zip(models, smk.input.runs, strict=True)}
        record = provenance_record(smk.config, list(smk.params.configfiles), runs, db_digest(smk.input.db_digest))
        if record["config_digest"] != smk.params.config_digest:
            raise RuntimeError(f"config digest {record['config_digest']} != the rule's {smk.params.config_digest}")
        write_json_atomic(smk.output[0], record)
        mlflow.log_artifact(smk.output[0], artifact_path="report")
        log.info("provenance: %s", record)


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
