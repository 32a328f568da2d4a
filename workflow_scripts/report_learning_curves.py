"""Snakemake glue for rule `report_learning_curves`: learning curves of the training runs from MLflow, their
diagnosis (shown in the report, set as tag `se.diagnosis` on each run)."""

import mlflow

from se_lib.config import tracking_uri
from se_lib.io import write_text_atomic
from se_lib.report.diagnosis import diagnose_curves, diagnosis_html
from se_lib.report.plots import LEARNING_CURVE_METRICS, plot_learning_curves
from se_lib.tracking.history import learning_curves, read_run_json, set_run_tags
from se_lib.workflow import rule_job


def main(smk) -> None:
    models, options = list(smk.params.models), dict(smk.params.curves)
    with rule_job(smk, params={"models": models, **{f"curves.{k}": v for k, v in options.items()}}) as (log, run):
        uri = tracking_uri(smk.config)
        run_ids = {m: read_run_json(p)["run_id"] for m, p in zip(models, smk.input.runs, strict=True)}
        curves = learning_curves(run_ids, LEARNING_CURVE_METRICS, tracking_uri=uri)
        if curves.empty:
            raise RuntimeError(f"no learning-curve metrics in the training runs {run_ids}")
        diagnosis = diagnose_curves(curves)
        set_run_tags(
            {r.run_id: {"se.diagnosis": r.diagnosis, "se.diagnosis.action": r.action} for r in diagnosis.itertuples()},
            tracking_uri=uri,
        )
        for r in diagnosis.itertuples():
            log.info("%s (run %s): %s -- %s; %s", r.model, r.run_id, r.diagnosis, r.reason, r.action)
        write_text_atomic(smk.output.diagnosis_tsv, diagnosis.to_csv(sep="\t", index=False))
        write_text_atomic(smk.output.diagnosis_html, diagnosis_html(diagnosis))
        labels = {r.model: f"{r.model} ({r.diagnosis})" for r in diagnosis.itertuples()}
        plot_learning_curves(curves, smk.output.png, labels=labels, **options)  # + its data: smk.output.csv
        for path in (smk.output.png, smk.output.csv, smk.output.diagnosis_tsv):
            mlflow.log_artifact(path, artifact_path="report")


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
