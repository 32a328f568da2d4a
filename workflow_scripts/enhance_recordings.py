"""Snakemake glue for rule `enhance`: one model on one recording set with `se enhance`'s code
(se_lib.inference.recordings), no Lightning; DNSMOS and real-time factor to MLflow."""

import sys

import mlflow

from se_lib.inference.recordings import enhance_set, summary
from se_lib.train.gpu_slots import claim_gpus
from se_lib.workflow import rule_job


def main(smk) -> None:
    model, name = smk.wildcards.model, smk.wildcards.recordings
    with rule_job(
        smk,
        params={
            "model": model,
            "recordings": name,
            "inputs": ",".join(smk.params.inputs),
            "channels": ",".join(map(str, smk.params.channels or [])) or "all",
            "checkpoint": smk.input.ckpt,
            "device": smk.params.device,
        },
    ) as (log, run):
        claim_gpus(smk.resources.gpu, logger=log)  # before torch initialises CUDA
        mlflow.set_tag("se.model", model)
        mlflow.set_tag("se.recordings", name)
        rows = enhance_set(
            smk.input.ckpt,
            smk.params.inputs,
            smk.output[0],
            channels=smk.params.channels,
            device=smk.params.device,
            threads=smk.threads,
        )
        stats = summary(rows)
        mlflow.log_metrics(stats)
        mlflow.log_artifact(f"{smk.output[0]}/enhance_scores.tsv", artifact_path="recordings")
        mlflow.set_tag("se.lightning_imported", str("lightning" in sys.modules).lower())
        log.info("%s on recordings %s: %s", model, name, stats)


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
