# Multichannel speech-enhancement workflow: corpus -> rooms -> mixture DB -> train -> predict -> score -> report.
# Run: `uv run snakemake --cores all --resources gpu=1` (see README.md).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    model=r"[A-Za-z0-9_\-]+",
    split="|".join([*SPLITS, *TEST_SETS]),


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/predict.smk"
include: "rules/score.smk"
include: "rules/report.smk"
include: "rules/enhance.smk"


# Every rule with a script declares the script's se_lib import closure as input `code` (rules/common.smk).
check_code_inputs()


rule all:
    default_target: True
    input:
        all_targets(),


onstart:
    # LightningCLI overrides (train.extra_args, sweep points) must parse before any job starts.
    check_overrides()
    # Refuse a dirty tree if `require_clean_git`; create the MLflow store and experiment once before
    # parallel jobs open it (a fresh sqlite store opened by several processes at once races in MLflow's
    # schema migration), and the invocation's parent run every rule's run is nested under.
    prepare_tracking()


onsuccess:
    finish_tracking(success=True)
    print(
        f"Workflow finished (invocation {INVOCATION_ID}).\n"
        f"  Results: results/  (comparison table: results/report/<split>/comparison.html)\n"
        f"  Report:  uv run snakemake --report report.html\n"
        f"  MLflow:  {tracking_uri(config)}  (make mlflow-ui; `uv run se runs` prints the runs table)"
    )


onerror:
    finish_tracking(success=False)
