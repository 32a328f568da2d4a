"""Snakemake glue for rule `train`: GPU slot(s), then `se fit` for one model (resumable), then best/last + run.json."""

from pathlib import Path

from se_lib.tracking.runs import snakemake_context
from se_lib.train.gpu_slots import claim_gpus
from se_lib.workflow import log_to_file

ctx = snakemake_context(snakemake)
model = snakemake.params.model  # the model config; the wildcard is the system (the model or a sweep point)
with log_to_file(ctx["log_files"][0] if ctx["log_files"] else None) as log:
    claim_gpus(snakemake.resources.gpu, logger=log)  # before torch initialises CUDA; held until the job ends
    from se_lib.train.jobs import train_job

    info = train_job(
        model,
        snakemake.config,
        out_dir=Path(snakemake.output.run).parent,
        config_files=list(snakemake.input.model_config),
        rule=ctx["rule"],
        wildcards=ctx["wildcards"],
        threads=snakemake.threads,
        log_files=ctx["log_files"],
        db_url=snakemake.params.db_url,
        sweep=snakemake.params.sweep,
    )
    if info.get("rank", 0) == 0:
        version = info["registered_version"]  # None: not registered (sweep points never are)
        log.info(
            "trained %s%s: run %s, best val_loss %s, %s%s",
            model,
            f" (sweep point {snakemake.wildcards.model})" if snakemake.params.sweep else "",
            info["run_id"],
            info["best_val_loss"],
            f"registered {info['registered_model']} v{version}" if version is not None else "not registered",
            " (resumed)" if info["resumed"] else "",
        )
