# Scoring stage: SI-SDR(i), PESQ-WB, STOI/ESTOI and DNSMOS per file and summarised with 95 % CIs, for
# every model x split and for the noisy input (`noisy` row, scored on results/references/{split}).
# The summaries also land on each model's training run in MLflow as `<split>_<metric>` metrics.
# A model must therefore not be called `noisy` (the baseline's name in results/scores/).

from se_lib.report.names import BASELINE

if BASELINE in MODELS:
    raise ValueError(f"config key 'models': {BASELINE!r} is reserved for the unprocessed-input baseline")


SCORE_SCRIPT = workflow_script("score.py")


rule score:
    """Score one model's predictions of one split (mode `enhanced`)."""
    input:
        pred="results/predictions/{model}/{split}",
        run="results/models/{model}/run.json",
        stats="results/predictions/{model}/{split}_predict_stats.json",
        code=SCORE_SCRIPT.code,
    output:
        tsv="results/scores/{model}/{split}.tsv",
        summary="results/scores/{model}/{split}_summary.tsv",
    log:
        "logs/score/{model}/{split}.log",
    wildcard_constraints:
        model="(?!noisy$)[A-Za-z0-9_\-]+",
    conda:
        "../envs/score.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        mode="enhanced",
        ref_mic=split_ref_mic,
        sample_rate=config["sample_rate"],
        approximate=split_approximate,
    script:
        SCORE_SCRIPT.path


rule score_noisy:
    """Score the unprocessed reference microphone of a split (mode `noisy`): the baseline row."""
    input:
        pred="results/references/{split}",
        code=SCORE_SCRIPT.code,
    output:
        tsv="results/scores/noisy/{split}.tsv",
        summary="results/scores/noisy/{split}_summary.tsv",
    log:
        "logs/score/noisy/{split}.log",
    conda:
        "../envs/score.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        mode="noisy",
        ref_mic=split_ref_mic,
        sample_rate=config["sample_rate"],
        approximate=split_approximate,
    script:
        SCORE_SCRIPT.path
