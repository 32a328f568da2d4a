"""Snakemake glue for rule `predict`: the best checkpoint on a split with plain torch (se_lib.inference.predict)."""

import sys

import mlflow

from se_lib.tracking.history import read_run_json
from se_lib.train.gpu_slots import claim_gpus
from se_lib.workflow import rule_job


def main(smk) -> None:
    model, split = smk.wildcards.model, smk.wildcards.split
    train_run = read_run_json(smk.input.run)
    with rule_job(
        smk,
        params={
            "model": model,
            "split": split,
            "batch_size": smk.params.batch_size,
            "checkpoint": smk.input.ckpt,
            "train_run_id": train_run["run_id"],
            "db_url": smk.params.db_url,
            "db_split": smk.params.db_split,
            "ref_mic": smk.params.ref_mic,
        },
    ) as (log, run):
        claim_gpus(smk.resources.gpu, logger=log)  # before torch initialises CUDA
        from se_lib.inference.predict import predict_job

        mlflow.set_tag("se.model", model)
        mlflow.set_tag("se.train_run_id", train_run["run_id"])
        stats = predict_job(
            model,
            split,
            smk.config,
            ckpt_path=smk.input.ckpt,
            output_dir=smk.output.wavs,
            stats_file=smk.output.stats,
            threads=smk.threads,
            db_url=smk.params.db_url,
            config_files=list(smk.input.model_config),
            overrides=(smk.params.sweep or {}).get("overrides"),
            db_split=smk.params.db_split,
            ref_mic=smk.params.ref_mic,
        )
        mlflow.log_metrics(
            {
                k: float(stats[k])
                for k in (
                    "n_files",
                    "audio_seconds",
                    "inference_seconds",
                    "wall_seconds",
                    "real_time_factor",
                    "wall_real_time_factor",
                    "parameters",
                )
            }
        )
        mlflow.set_tag("se.device", stats["device_name"])
        mlflow.set_tag("se.lightning_imported", str("lightning" in sys.modules).lower())
        mlflow.log_artifact(smk.output.stats)
        log.info(
            "%s/%s: %d mixtures, RTF %.4f on %s",
            model,
            split,
            stats["n_files"],
            stats["real_time_factor"],
            stats["device_name"],
        )


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
