"""Snakemake glue for rules `report_sweep` (parallel coordinates + scatter) and `report_sweep_contour`:
figures of a sweep's points table (results/report/sweeps/<model>/points.csv, the figures' data)."""

import mlflow
import pandas as pd

from se_lib.report.sweeps import plot_sweep_contour, plot_sweep_parallel, plot_sweep_scatter
from se_lib.workflow import rule_job


def main(smk) -> None:
    sweep = smk.wildcards.sweep
    with rule_job(smk) as (log, run):
        table = pd.read_csv(smk.input.csv)
        n = f"{len(table)} points"
        if smk.rule == "report_sweep_contour":
            x_key, y_key = smk.params.pair
            plot_sweep_contour(
                table, x_key, y_key, smk.params.metrics, smk.output.contour, title=f"sweep {sweep}: {x_key} x {y_key}"
            )
        else:
            keys, metrics, objective = list(smk.params.hparams), list(smk.params.metrics), smk.params.objective
            plot_sweep_parallel(
                table, keys, objective, metrics, smk.output.parallel, title=f"sweep {sweep}: hyper-parameters ({n})"
            )
            plot_sweep_scatter(
                table, keys, [objective, *metrics], smk.output.scatter, title=f"sweep {sweep}: metrics ({n})"
            )
        for path in smk.output:
            mlflow.log_artifact(path, artifact_path="report")
        log.info("sweep %s: %s from %s", sweep, ", ".join(smk.output), n)


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
