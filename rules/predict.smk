# Prediction stage: every trained model enhances every prediction split (default: test); the noisy
# inputs and targets of each split are also exported once, independently of any model, as the
# baseline the scorer compares against.

PREDICT_SPLITS = list(config["predict"]["splits"])
# The splits every model is evaluated on: the DB's prediction splits, then each public test set (`test_<name>`).
EVAL_SPLITS = PREDICT_SPLITS + list(TEST_SETS)
PREDICT_BATCH_SIZE = int(config["predict"]["batch_size"])


PREDICT_SCRIPT = workflow_script("predict.py")


rule predict:
    """The model's best checkpoint on the split with plain torch (no Lightning, as `se predict` would):
    noisy, enhanced and target wavs per mixture, plus inference statistics (real-time factor, parameters)."""
    input:
        ckpt="results/models/{model}/best.ckpt",
        run="results/models/{model}/run.json",
        db=split_db_file,
        model_config=model_configs,
        shared_config=SHARED_MODEL_CONFIG,
        code=PREDICT_SCRIPT.code,
        model_code=net_code,
    output:
        wavs=directory("results/predictions/{model}/{split}"),
        stats="results/predictions/{model}/{split}_predict_stats.json",
    log:
        "logs/predict/{model}/{split}.log",
    conda:
        "../envs/train.yaml"
    threads: 2
    resources:
        gpu=predict_gpus,
        mem_mb=4000,
    params:
        sweep=sweep_point,
        batch_size=PREDICT_BATCH_SIZE,
        overlay=config["train"]["overlay"],
        db_url=split_db_url,
        db_split=split_db_split,
        ref_mic=split_ref_mic,
    script:
        PREDICT_SCRIPT.path


NOISY_REFERENCE_SCRIPT = workflow_script("noisy_reference.py")


rule noisy_reference:
    """Noisy (all mics) and target wavs of every mixture of a split, rendered from the mixture DB with
    the data path prediction uses: the noisy baseline does not depend on any model."""
    input:
        db=split_db_file,
        code=NOISY_REFERENCE_SCRIPT.code,
    output:
        directory("results/references/{split}"),
    log:
        "logs/predict/noisy_reference/{split}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        db_url=split_db_url,
        db_split=split_db_split,
        sample_rate=config["sample_rate"],
        batch_size=PREDICT_BATCH_SIZE,
    script:
        NOISY_REFERENCE_SCRIPT.path
