"""Snakemake glue for rule `report_sweep_table`: one CSV row per sweep point (values, best validation
metric from MLflow, test metrics from the score summaries)."""

import mlflow

from se_lib.config import tracking_uri
from se_lib.io import write_text_atomic
from se_lib.report.sweeps import sweep_table
from se_lib.tracking.history import read_run_json
from se_lib.workflow import rule_job


def main(smk) -> None:
    points, splits = list(smk.params.points), list(smk.params.splits)
    systems = [p["system"] for p in points]
    with rule_job(smk, params={"sweep": smk.wildcards.sweep, "points": systems, "objective": smk.params.objective}) as (
        log,
        run,
    ):
        run_ids = {s: read_run_json(path)["run_id"] for s, path in zip(systems, smk.input.runs, strict=True)}
        # expand() order: system-major, then split
        paths = iter(smk.input.summaries)
        summaries = {s: {split: next(paths) for split in splits} for s in systems}
        table = sweep_table(
            points,
            run_ids,
            summaries,
            objective=smk.params.objective,
            mode=smk.params.mode,
            metrics=smk.params.metrics,
            tracking_uri=tracking_uri(smk.config),
        )
        write_text_atomic(smk.output.csv, table.to_csv(index=False, float_format="%.6g"))
        mlflow.log_artifact(smk.output.csv, artifact_path="report")
        log.info("sweep %s:\n%s", smk.wildcards.sweep, table.to_string(index=False))


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
