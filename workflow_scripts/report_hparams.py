"""Snakemake glue for rule `report_hparams`: parallel coordinates of the experiment's training runs."""

import mlflow

from se_lib.config import tracking_uri
from se_lib.io import write_text_atomic
from se_lib.report.plots import hparam_axes, plot_parallel_coordinates
from se_lib.tracking.history import experiment_runs, read_run_json
from se_lib.workflow import rule_job


def main(smk) -> None:
    objective, mode = smk.params.objective, smk.params.mode
    with rule_job(smk, params={"objective": objective, "mode": mode}) as (log, run):
        run_ids = [read_run_json(p)["run_id"] for p in smk.input.runs]
        runs = experiment_runs(
            smk.config["experiment"], objective, mode, tracking_uri=tracking_uri(smk.config), extra_run_ids=run_ids
        )
        best = f"best_{objective}"
        axes = hparam_axes(runs, best, max_axes=smk.params.max_axes)
        log.info("%d training runs; axes %s", len(runs), axes)
        write_text_atomic(smk.output.tsv, runs.to_csv(sep="\t", index=False))
        plot_parallel_coordinates(
            runs,
            best,
            smk.output.png,
            label="run_name",
            axes=axes,
            title=f"{smk.config['experiment']}: hyper-parameters vs {best} ({len(runs)} runs)",
        )
        for path in (smk.output.png, smk.output.tsv):
            mlflow.log_artifact(path, artifact_path="report")


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
