"""Snakemake glue for rule `report_learning_curves`: learning curves of the training runs from MLflow."""

import mlflow

from se_lib.config import tracking_uri
from se_lib.io import write_text_atomic
from se_lib.report.plots import plot_learning_curves
from se_lib.tracking.history import learning_curves, read_run_json
from se_lib.workflow import rule_job


def main(smk) -> None:
    models = list(smk.params.models)
    with rule_job(smk, params={"models": models}) as (log, run):
        run_ids = {m: read_run_json(p)["run_id"] for m, p in zip(models, smk.input.runs, strict=True)}
        curves = learning_curves(run_ids, tracking_uri=tracking_uri(smk.config))
        if curves.empty:
            raise RuntimeError(f"no learning-curve metrics in the training runs {run_ids}")
        write_text_atomic(smk.output.tsv, curves.to_csv(sep="\t", index=False, float_format="%.6g"))
        plot_learning_curves(curves, smk.output.png)
        for path in (smk.output.png, smk.output.tsv):
            mlflow.log_artifact(path, artifact_path="report")


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
