# Report stage: comparison table, metric-versus-input-SNR plots, spectrogram examples (per prediction
# split), learning curves (+ their diagnosis) and a hyper-parameter parallel-coordinates plot read from
# MLflow. Every figure is a PNG with its data beside it as CSV (se_lib.report.figures.save_figure). Files
# shown are marked with report() for `snakemake --report report.html` (or report.zip); captions in report/.

from se_lib.report.names import METRIC_LABELS, METRICS
from se_lib.report.provenance import CONTEXT_KEY, config_digest, report_context, shown_paths

REPORT_DIR = "results/report"
REPORT_EXAMPLES = int(config["report"]["spectrogram_examples"])
REPORT_SNR_BINS = int(config["report"]["snr_bins"])
REPORT_PROVENANCE = f"{REPORT_DIR}/provenance.json"
CONFIGFILES = shown_paths(workflow.configfiles, overrides=workflow.overwrite_configfiles)
# What report/workflow.rst shows about the config: this invocation's files and digest against the record of
# the run that produced the results on disk (the template sees nothing but `config`; se_lib/report/provenance.py).
config[CONTEXT_KEY] = report_context(config, CONFIGFILES, REPORT_PROVENANCE)


# Every report output, for the `all` target.
REPORT_TARGETS = [
    f"{REPORT_DIR}/learning_curves.png",
    f"{REPORT_DIR}/diagnosis.html",
    f"{REPORT_DIR}/hparams_parallel.png",
    REPORT_PROVENANCE,
] + [
    path
    for split in PREDICT_SPLITS
    for path in [
        f"{REPORT_DIR}/{split}/comparison.html",
        f"{REPORT_DIR}/{split}/comparison.tsv",
        f"{REPORT_DIR}/{split}/metrics.json",
        f"{REPORT_DIR}/{split}/spectrograms",
    ]
    + [f"{REPORT_DIR}/{split}/snr/{m}.png" for m in METRICS]
]


REPORT_TABLE_SCRIPT = workflow_script("report_table.py")


rule report_table:
    """Comparison table: every metric with its 95 % CI, parameters and real-time factor, per system."""
    input:
        summaries=expand("results/scores/{model}/{{split}}_summary.tsv", model=MODELS),
        noisy="results/scores/noisy/{split}_summary.tsv",
        stats=expand("results/predictions/{model}/{{split}}_predict_stats.json", model=MODELS),
        code=REPORT_TABLE_SCRIPT.code,
    output:
        html=report(
            f"{REPORT_DIR}/{{split}}/comparison.html",
            caption="../report/comparison.rst",
            category="Comparison",
            subcategory="Table",
            labels={"split": "{split}", "format": "HTML"},
        ),
        tsv=report(
            f"{REPORT_DIR}/{{split}}/comparison.tsv",
            caption="../report/comparison.rst",
            category="Comparison",
            subcategory="Table",
            labels={"split": "{split}", "format": "TSV"},
        ),
        # the table's means per system as JSON: DVC metrics (`dvc metrics show`), see se_lib/dvc_stages.py
        metrics=f"{REPORT_DIR}/{{split}}/metrics.json",
    log:
        "logs/report/table_{split}.log",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        models=MODELS,
    script:
        REPORT_TABLE_SCRIPT.path


REPORT_SNR_SCRIPT = workflow_script("report_snr.py")


rule report_snr:
    """One plot per metric: mean and 95 % CI per input-SNR bin, every model and the noisy input."""
    input:
        per_file=expand("results/scores/{model}/{{split}}.tsv", model=MODELS),
        noisy="results/scores/noisy/{split}.tsv",
        code=REPORT_SNR_SCRIPT.code,
    output:
        plots=[
            report(
                f"{REPORT_DIR}/{{split}}/snr/{m}.png",
                caption="../report/snr.rst",
                category="Comparison",
                subcategory="Metric vs input SNR",
                labels={"split": "{split}", "metric": METRIC_LABELS[m]},
            )
            for m in METRICS
        ],
        data=[f"{REPORT_DIR}/{{split}}/snr/{m}.csv" for m in METRICS],
        bins=f"{REPORT_DIR}/{{split}}/snr_bins.tsv",
    log:
        "logs/report/snr_{split}.log",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        models=MODELS,
        metrics=list(METRICS),
        n_bins=REPORT_SNR_BINS,
    script:
        REPORT_SNR_SCRIPT.path


REPORT_SPECTROGRAMS_SCRIPT = workflow_script("report_spectrograms.py")


rule report_spectrograms:
    """Spectrogram panels (noisy reference mic / each model / target, kHz axis) for a few test files
    spread over the input-SNR range."""
    input:
        predictions=expand("results/predictions/{model}/{{split}}", model=MODELS),
        scores=expand("results/scores/{model}/{{split}}.tsv", model=MODELS),
        references="results/references/{split}",
        noisy="results/scores/noisy/{split}.tsv",
        code=REPORT_SPECTROGRAMS_SCRIPT.code,
    output:
        report(
            directory(f"{REPORT_DIR}/{{split}}/spectrograms"),
            patterns=["{example}.png"],
            caption="../report/spectrograms.rst",
            category="Examples",
            subcategory="Spectrograms",
            labels={"split": "{split}", "mixture": "{example}"},
        ),
    log:
        "logs/report/spectrograms_{split}.log",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        models=MODELS,
        n_examples=REPORT_EXAMPLES,
        ref_mic=config["rooms"]["mic_array"]["reference_mic"],
        sample_rate=config["sample_rate"],
    script:
        REPORT_SPECTROGRAMS_SCRIPT.path


REPORT_LEARNING_CURVES_SCRIPT = workflow_script("report_learning_curves.py")


rule report_learning_curves:
    """Learning curves of every model's training run, read from MLflow, and their diagnosis (also set as
    the runs' tag `se.diagnosis`)."""
    input:
        runs=expand("results/models/{model}/run.json", model=MODELS),
        code=REPORT_LEARNING_CURVES_SCRIPT.code,
    output:
        png=report(
            f"{REPORT_DIR}/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Training",
            subcategory="Learning curves",
            labels={"figure": "learning curves"},
        ),
        csv=f"{REPORT_DIR}/learning_curves.csv",
        diagnosis_html=report(
            f"{REPORT_DIR}/diagnosis.html",
            caption="../report/diagnosis.rst",
            category="Training",
            subcategory="Diagnosis",
            labels={"table": "learning-curve diagnosis"},
        ),
        diagnosis_tsv=f"{REPORT_DIR}/diagnosis.tsv",
    log:
        "logs/report/learning_curves.log",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        models=MODELS,
        curves=config["report"]["curves"],
    script:
        REPORT_LEARNING_CURVES_SCRIPT.path


REPORT_HPARAMS_SCRIPT = workflow_script("report_hparams.py")


rule report_hparams:
    """Parallel coordinates: hyper-parameters of every finished training run of the experiment
    against its best validation SI-SDR."""
    input:
        runs=expand("results/models/{model}/run.json", model=MODELS),
        code=REPORT_HPARAMS_SCRIPT.code,
    output:
        png=report(
            f"{REPORT_DIR}/hparams_parallel.png",
            caption="../report/hparams.rst",
            category="Training",
            subcategory="Hyper-parameters",
            labels={"figure": "parallel coordinates"},
        ),
        csv=f"{REPORT_DIR}/hparams_parallel.csv",
        tsv=f"{REPORT_DIR}/hparams_runs.tsv",
    log:
        "logs/report/hparams.log",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        models=MODELS,
        objective="val_si_sdr",
        mode="max",
        max_axes=int(config["report"]["max_hparam_axes"]),
    script:
        REPORT_HPARAMS_SCRIPT.path


REPORT_PROVENANCE_SCRIPT = workflow_script("report_provenance.py")


rule report_provenance:
    """The config files, experiment and config digest that produced the results, the mixture-DB digest and
    each model's training run (commit, run id): what the report's description compares its config with."""
    input:
        runs=expand("results/models/{model}/run.json", model=MODELS),
        db_digest=DB_FILE,
        code=REPORT_PROVENANCE_SCRIPT.code,
    output:
        REPORT_PROVENANCE,
    log:
        "logs/report/provenance.log",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        models=MODELS,
        configfiles=CONFIGFILES,
        config_digest=config_digest(config),
    script:
        REPORT_PROVENANCE_SCRIPT.path
