# Real recordings (config `recordings:`, se_lib/inference/recordings.py): every model whose network takes a set's
# channel count (or one channel) enhances the set with `se enhance`'s code, and the report gets a section per set
# (DNSMOS table, spectrograms, audio to listen to). The sets are checked here, when the workflow is parsed: a
# missing folder fails naming `recordings.<name>.path` before any job starts. Empty by default: no jobs.

from se_lib.data.corpora.stage import network_takes
from se_lib.inference.recordings import enhance_device, recording_sets

RECORDING_SETS = recording_sets(config)
# set -> the models that enhance it / the others, with their channel count (named in the report)
RECORDING_MODELS = {
    name: [m for m in MODELS if network_takes(system_channels(m), rs.n_channels)] for name, rs in RECORDING_SETS.items()
}
RECORDING_SKIPPED = {
    name: {m: system_channels(m) for m in MODELS if m not in RECORDING_MODELS[name]} for name in RECORDING_SETS
}
RECORDINGS_REPORT_DIR = f"{REPORT_DIR}/recordings"
REPORT_TARGETS += [
    f"{RECORDINGS_REPORT_DIR}/{name}/{f}"
    for name in RECORDING_SETS
    for f in ("dnsmos.html", "dnsmos.tsv", "spectrograms", "listen.html")
]


ENHANCE_SCRIPT = workflow_script("enhance_recordings.py")


rule enhance:
    """One model's best checkpoint on one recording set (`se enhance`, no Lightning): an enhanced wav per
    recording at its rate and length, and enhance_scores.tsv (DNSMOS of input and output, real-time factor)."""
    input:
        ckpt="results/models/{model}/best.ckpt",
        recordings=lambda wc: RECORDING_SETS[wc.recordings].files,
        code=ENHANCE_SCRIPT.code,
        model_code=net_code,
    output:
        directory("results/recordings/{recordings}/{model}"),
    log:
        "logs/enhance/{recordings}/{model}.log",
    wildcard_constraints:
        recordings="|".join(RECORDING_SETS) or "(?!)",
    conda:
        "../envs/train.yaml"
    threads: 2
    resources:
        gpu=predict_gpus,
        mem_mb=4000,
    params:
        inputs=lambda wc: list(RECORDING_SETS[wc.recordings].inputs),
        channels=lambda wc: RECORDING_SETS[wc.recordings].channels and list(RECORDING_SETS[wc.recordings].channels),
        device=enhance_device(config["predict"]["accelerator"] or config["train"]["accelerator"]),
    script:
        ENHANCE_SCRIPT.path


REPORT_RECORDINGS_SCRIPT = workflow_script("report_recordings.py")


rule report_recordings:
    """A recording set's report section: mean DNSMOS of the input and of each model, spectrograms of a few
    recordings (input vs each model) and a page to listen to them."""
    input:
        enhanced=lambda wc: expand(
            "results/recordings/{recordings}/{model}", recordings=wc.recordings, model=RECORDING_MODELS[wc.recordings]
        ),
        code=REPORT_RECORDINGS_SCRIPT.code,
    output:
        html=report(
            f"{RECORDINGS_REPORT_DIR}/{{recordings}}/dnsmos.html",
            caption="../report/recordings.rst",
            category="Recordings",
            subcategory="{recordings}",
            labels={"recordings": "{recordings}", "view": "DNSMOS table"},
        ),
        tsv=f"{RECORDINGS_REPORT_DIR}/{{recordings}}/dnsmos.tsv",
        spectrograms=report(
            directory(f"{RECORDINGS_REPORT_DIR}/{{recordings}}/spectrograms"),
            patterns=["{example}.png"],
            caption="../report/recordings_spectrograms.rst",
            category="Recordings",
            subcategory="{recordings}",
            labels={"recordings": "{recordings}", "view": "spectrogram {example}"},
        ),
        listen=report(
            f"{RECORDINGS_REPORT_DIR}/{{recordings}}/listen.html",
            caption="../report/recordings_listen.rst",
            category="Recordings",
            subcategory="{recordings}",
            labels={"recordings": "{recordings}", "view": "listen"},
        ),
    log:
        "logs/report/recordings_{recordings}.log",
    wildcard_constraints:
        recordings="|".join(RECORDING_SETS) or "(?!)",
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        models=lambda wc: RECORDING_MODELS[wc.recordings],
        skipped=lambda wc: RECORDING_SKIPPED[wc.recordings],
        n_channels=lambda wc: RECORDING_SETS[wc.recordings].n_channels,
        n_examples=REPORT_EXAMPLES,
    script:
        REPORT_RECORDINGS_SCRIPT.path
