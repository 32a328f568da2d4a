# Training stage: one LightningCLI `se fit` job per system (a model config, or a point of its sweep:
# rules/common.smk SYSTEMS), tracked in MLflow, resumable.
#
# Checkpoints are written to results/models/{model}/checkpoints/ (deliberately NOT declared outputs:
# Snakemake would delete them when a job fails or is killed). Running the rule again after a kill
# continues the same MLflow run from checkpoints/last.ckpt (see se_lib/train/cli.py, jobs.py). On success the
# job copies the best and last checkpoints to the declared outputs and writes run.json.


TRAIN_SCRIPT = workflow_script("train.py")


rule train:
    """Train one system (`se fit`) on the mixture DB; best/last checkpoints, run.json, MLflow run +
    registered model version `se-{model}` (a sweep point's run is tagged `se.sweep`, not registered)."""
    input:
        db=DB_FILE,
        model_config=model_configs,
        shared_config=SHARED_MODEL_CONFIG,
        code=TRAIN_SCRIPT.code,
        model_code=model_code,
    output:
        best="results/models/{model}/best.ckpt",
        last="results/models/{model}/last.ckpt",
        run="results/models/{model}/run.json",
    log:
        "logs/train/{model}.log",
    conda:
        "../envs/train.yaml"
    threads: int(config["train"]["threads"])
    # gpu: locally counted against --resources gpu=N, the job's devices picked by se_lib/train/gpu_slots.py
    # (0 on a machine without a GPU: trainings then run side by side, as many as cores / threads allow);
    # under SLURM (executor plugin) --gpus=<gpu> --ntasks-per-gpu=1: the N GPUs and N tasks of a DDP job.
    # Derived from train.devices: profiles should not set gpu/tasks for this rule.
    resources:
        gpu=train_gpus,
        tasks_per_gpu=1,
        mem_mb=8000,
    params:
        model=lambda wc: system_model(wc.model),
        sweep=sweep_point,
        train=config["train"],
        seed=config["seed"],
        sample_rate=config["sample_rate"],
        experiment=config["experiment"],
        db_url=DB_URL,
    script:
        TRAIN_SCRIPT.path
