# Training stage: one LightningCLI `se fit` job per model config, tracked in MLflow, resumable.
#
# Checkpoints are written to results/models/{model}/checkpoints/ (deliberately NOT declared outputs:
# Snakemake would delete them when a job fails or is killed). Running the rule again after a kill
# continues the same MLflow run from checkpoints/last.ckpt (see se_lib/train/cli.py, jobs.py). On success the
# job copies the best and last checkpoints to the declared outputs and writes run.json.


# LightningCLI config files of a model: the paper config, plus config/models/demo/<model>.yaml when
# `train.overlay` is demo. Both go on top of the shared training setup, which `se` reads by itself
# (an input all the same: it is part of every model's effective config).
TRAIN_CONFIG_DIRS = [repo_path("config/models")] + (
    [repo_path("config/models/demo")] if config["train"]["overlay"] == "demo" else []
)
SHARED_MODEL_CONFIG = repo_path("config/models/_shared.yaml")


rule train:
    """Train one model (`se fit`) on the mixture DB; best/last checkpoints, run.json, MLflow run +
    registered model version `se-{model}`."""
    input:
        db=DB_FILE,
        model_config=lambda wc: [f"{d}/{wc.model}.yaml" for d in TRAIN_CONFIG_DIRS],
        shared_config=SHARED_MODEL_CONFIG,
        code=lib_sources(
            "models",
            "train/__init__.py",
            "train/module.py",
            "train/cli.py",
            "train/jobs.py",
            "train/resume.py",
            "train/prediction_writer.py",
            "train/callbacks.py",
            "train/losses.py",
            "data/datamodule.py",
            "data/render.py",
            "data/audio.py",
            "data/db.py",
            "data/naming.py",
            "data/rooms.py",
            "io.py",
            "workflow.py",
        ),
    output:
        best="results/models/{model}/best.ckpt",
        last="results/models/{model}/last.ckpt",
        run="results/models/{model}/run.json",
    params:
        train=config["train"],
        seed=config["seed"],
        sample_rate=config["sample_rate"],
        experiment=config["experiment"],
        db_url=DB_URL,
    log:
        "logs/train/{model}.log",
    threads: int(config["train"]["threads"])
    resources:
        gpu=1,
        mem_mb=8000,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train.py"
