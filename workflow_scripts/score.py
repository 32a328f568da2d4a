"""Snakemake glue for rules `score` and `score_noisy`: score a folder of wavs, log the summary to MLflow.

For a model, the summary also goes onto the model's training run as `<split>_<metric>` metrics (and the
inference real-time factor as `<split>_real_time_factor`), so MLflow's runs table compares models; the
test split's go onto the model's registered version as tags too, so the registry says how good it is. Scores
against an approximate reference (CHiME-4 close-talk mic) keep their `_approx` names there too.
"""

import mlflow

from se_lib.config import tracking_uri
from se_lib.io import read_json_object
from se_lib.metrics.scorer import score_directory
from se_lib.report.tables import read_summary
from se_lib.tracking.history import read_run_json
from se_lib.tracking.promotion import promote_recorded
from se_lib.tracking.runs import record_scores_on_training_run, summary_metrics
from se_lib.workflow import rule_job


def main(smk) -> None:
    split, mode = smk.wildcards.split, smk.params.mode
    system = smk.wildcards.get("model", "noisy")
    with rule_job(
        smk,
        params={
            "system": system,
            "split": split,
            "mode": mode,
            "ref_mic": smk.params.ref_mic,
            "predictions": smk.input.pred,
            "approximate_reference": smk.params.approximate,
        },
    ) as (log, run):
        mlflow.set_tag("se.model", system)
        score_directory(
            smk.input.pred,
            smk.output.tsv,
            smk.output.summary,
            mode=mode,
            ref_mic=smk.params.ref_mic,
            threads=smk.threads,
            sample_rate=smk.params.sample_rate,
            progress=False,
            approximate=smk.params.approximate,
        )
        summary = read_summary(smk.output.summary)
        mlflow.log_metrics(summary_metrics(summary))
        mlflow.log_artifact(smk.output.summary, artifact_path="scores")
        mlflow.log_artifact(smk.output.tsv, artifact_path="scores")
        if mode == "enhanced":
            train_run = read_run_json(smk.input.run)
            stats = read_json_object(smk.input.stats, "prediction statistics")
            mlflow.set_tag("se.train_run_id", train_run["run_id"])
            recorded = record_scores_on_training_run(
                train_run,
                summary,
                split,
                tracking_uri=tracking_uri(smk.config),
                extra={f"{split}_real_time_factor": stats["real_time_factor"]},
            )
            # config registry.promote: move the alias to this version only if its test metric is better
            spec = smk.config["registry"]["promote"]
            promotion = promote_recorded(spec, train_run, recorded, tracking_uri=tracking_uri(smk.config))
            if promotion is not None:
                mlflow.set_tag(f"se.promotion.{promotion.alias}", promotion.message)
                log.info("registry: %s %s", promotion.model, promotion.message)
        log.info("%s/%s summary:\n%s", system, split, summary.to_string())


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
