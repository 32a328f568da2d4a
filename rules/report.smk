# Report stage: comparison table, metric-versus-input-SNR plots, spectrogram examples (per prediction
# split), learning curves (+ their diagnosis) and a hyper-parameter parallel-coordinates plot read from
# MLflow. Every figure is a PNG with its data beside it as CSV (se_lib.report.figures.save_figure). Files
# shown are marked with report() for `snakemake --report report.html` (or report.zip); captions in report/.

from se_lib.report.names import METRIC_LABELS, METRICS
from se_lib.report.provenance import CONTEXT_KEY, config_digest, report_context, shown_paths
from se_lib.sweep import contour_pairs, pair_name, sweep_keys

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
    for split in EVAL_SPLITS
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
        summaries=lambda wc: expand(
            "results/scores/{model}/{split}_summary.tsv", model=eval_systems(wc.split), split=wc.split
        ),
        noisy="results/scores/noisy/{split}_summary.tsv",
        stats=lambda wc: expand(
            "results/predictions/{model}/{split}_predict_stats.json", model=eval_systems(wc.split), split=wc.split
        ),
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
        models=lambda wc: eval_systems(wc.split),
        published=split_published,
    script:
        REPORT_TABLE_SCRIPT.path


REPORT_SNR_SCRIPT = workflow_script("report_snr.py")


rule report_snr:
    """One plot per metric: mean and 95 % CI per input-SNR bin, every model and the noisy input."""
    input:
        per_file=lambda wc: expand("results/scores/{model}/{split}.tsv", model=eval_systems(wc.split), split=wc.split),
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
        models=lambda wc: eval_systems(wc.split),
        metrics=list(METRICS),
        n_bins=REPORT_SNR_BINS,
    script:
        REPORT_SNR_SCRIPT.path


REPORT_SPECTROGRAMS_SCRIPT = workflow_script("report_spectrograms.py")


rule report_spectrograms:
    """Spectrogram panels (noisy reference mic / each model / target, kHz axis) for a few test files
    spread over the input-SNR range."""
    input:
        predictions=lambda wc: expand(
            "results/predictions/{model}/{split}", model=eval_systems(wc.split, MODELS), split=wc.split
        ),
        scores=lambda wc: expand(
            "results/scores/{model}/{split}.tsv", model=eval_systems(wc.split, MODELS), split=wc.split
        ),
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
        models=lambda wc: eval_systems(wc.split, MODELS),
        n_examples=REPORT_EXAMPLES,
        ref_mic=split_ref_mic,
        sample_rate=config["sample_rate"],
    script:
        REPORT_SPECTROGRAMS_SCRIPT.path


REPORT_LEARNING_CURVES_SCRIPT = workflow_script("report_learning_curves.py")


rule report_learning_curves:
    """Learning curves of every model's training run, read from MLflow, and their diagnosis (also set as
    the runs' tag `se.diagnosis`)."""
    input:
        runs=expand("results/models/{model}/run.json", model=SYSTEMS),
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
        models=SYSTEMS,
        curves=config["report"]["curves"],
    script:
        REPORT_LEARNING_CURVES_SCRIPT.path


REPORT_HPARAMS_SCRIPT = workflow_script("report_hparams.py")


rule report_hparams:
    """Parallel coordinates: hyper-parameters of every finished training run of the experiment
    against its best validation SI-SDR."""
    input:
        runs=expand("results/models/{model}/run.json", model=SYSTEMS),
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
        models=SYSTEMS,
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
        runs=expand("results/models/{model}/run.json", model=SYSTEMS),
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
        models=SYSTEMS,
        configfiles=CONFIGFILES,
        config_digest=config_digest(config),
    script:
        REPORT_PROVENANCE_SCRIPT.path


# ------------------------------------------------------------------------------------------- sweeps
# Per sweep (config `sweeps.<model>`, se_lib/sweep.py): a table of its points (swept values, best
# validation SI-SDR, test metrics; CSV) and its views, parallel coordinates, metric-vs-hyper-parameter
# scatter and, per pair of grid keys, a contour plot (se_lib/report/sweeps.py).
SWEEP_REPORT_DIR = f"{REPORT_DIR}/sweeps"
SWEEP_OBJECTIVE = "val_si_sdr"
# The split whose metrics the views show (test when predicted); the CSV holds every predicted split.
SWEEP_SPLIT = "test" if "test" in PREDICT_SPLITS else PREDICT_SPLITS[0]
SWEEP_METRICS = [f"{SWEEP_SPLIT}_{m}" for m in config["report"]["sweep_metrics"]]
# (sweep, pair name) -> the two grid keys of a contour plot
SWEEP_CONTOURS = {
    (model, pair_name(config["sweeps"][model], x, y)): (x, y)
    for model in SWEEPS
    for x, y in contour_pairs(config["sweeps"][model])
}
REPORT_TARGETS += [
    f"{SWEEP_REPORT_DIR}/{model}/{name}" for model in SWEEPS for name in ("points.csv", "parallel.png", "scatter.png")
] + [f"{SWEEP_REPORT_DIR}/{model}/contour_{pair}.png" for model, pair in SWEEP_CONTOURS]


REPORT_SWEEP_TABLE_SCRIPT = workflow_script("report_sweep_table.py")


rule report_sweep_table:
    """One row per point of a sweep: its swept values, best validation SI-SDR (MLflow) and the mean of
    every metric on every predicted split (score summaries)."""
    input:
        runs=lambda wc: expand("results/models/{model}/run.json", model=sweep_systems(wc)),
        summaries=lambda wc: expand(
            "results/scores/{model}/{split}_summary.tsv", model=sweep_systems(wc), split=PREDICT_SPLITS
        ),
        code=REPORT_SWEEP_TABLE_SCRIPT.code,
    output:
        csv=f"{SWEEP_REPORT_DIR}/{{sweep}}/points.csv",
    log:
        "logs/report/sweep_table_{sweep}.log",
    wildcard_constraints:
        sweep=r"[A-Za-z0-9_]+",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        points=lambda wc: [{"system": p.system, "origin": p.origin, "values": p.values} for p in SWEEPS[wc.sweep]],
        splits=PREDICT_SPLITS,
        metrics=list(METRICS),
        objective=SWEEP_OBJECTIVE,
        mode="max",
    script:
        REPORT_SWEEP_TABLE_SCRIPT.path


REPORT_SWEEP_SCRIPT = workflow_script("report_sweep.py")


rule report_sweep:
    """A sweep's parallel coordinates (hyper-parameters -> test metrics -> best validation SI-SDR) and
    each metric against each hyper-parameter."""
    input:
        csv=f"{SWEEP_REPORT_DIR}/{{sweep}}/points.csv",
        code=REPORT_SWEEP_SCRIPT.code,
    output:
        parallel=report(
            f"{SWEEP_REPORT_DIR}/{{sweep}}/parallel.png",
            caption="../report/sweep_parallel.rst",
            category="Sweeps",
            subcategory="{sweep}",
            labels={"sweep": "{sweep}", "figure": "parallel coordinates"},
        ),
        scatter=report(
            f"{SWEEP_REPORT_DIR}/{{sweep}}/scatter.png",
            caption="../report/sweep_scatter.rst",
            category="Sweeps",
            subcategory="{sweep}",
            labels={"sweep": "{sweep}", "figure": "metric vs hyper-parameter"},
        ),
    log:
        "logs/report/sweep_{sweep}.log",
    wildcard_constraints:
        sweep=r"[A-Za-z0-9_]+",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        hparams=lambda wc: sweep_keys(config["sweeps"][wc.sweep]),
        metrics=SWEEP_METRICS,
        objective=f"best_{SWEEP_OBJECTIVE}",
    script:
        REPORT_SWEEP_SCRIPT.path


rule report_sweep_contour:
    """A metric over the grid of two of a sweep's hyper-parameters (test SI-SDRi and best validation SI-SDR)."""
    input:
        csv=f"{SWEEP_REPORT_DIR}/{{sweep}}/points.csv",
        code=REPORT_SWEEP_SCRIPT.code,
    output:
        contour=report(
            f"{SWEEP_REPORT_DIR}/{{sweep}}/contour_{{pair}}.png",
            caption="../report/sweep_contour.rst",
            category="Sweeps",
            subcategory="{sweep}",
            labels={"sweep": "{sweep}", "figure": "contour {pair}"},
        ),
    log:
        "logs/report/sweep_contour_{sweep}_{pair}.log",
    wildcard_constraints:
        sweep=r"[A-Za-z0-9_]+",
        pair=r"[A-Za-z0-9]+-[A-Za-z0-9]+",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        pair=lambda wc: SWEEP_CONTOURS[(wc.sweep, wc.pair)],
        metrics=[SWEEP_METRICS[0], f"best_{SWEEP_OBJECTIVE}"],
    script:
        REPORT_SWEEP_SCRIPT.path
