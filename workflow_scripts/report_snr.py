"""Snakemake glue for rule `report_snr`: metric-versus-input-SNR plots of one split."""

from pathlib import Path

import mlflow
import pandas as pd

from se_lib.io import write_text_atomic
from se_lib.report.plots import plot_metric_vs_snr
from se_lib.report.tables import BASELINE, read_per_file
from se_lib.workflow import rule_job


def main(smk) -> None:
    split, models = smk.wildcards.split, list(smk.params.models)
    with rule_job(smk, params={"split": split, "models": models, "n_bins": smk.params.n_bins}) as (log, run):
        per_file = {BASELINE: read_per_file(smk.input.noisy)}
        per_file.update({m: read_per_file(p) for m, p in zip(models, smk.input.per_file, strict=True)})
        tables = []
        for metric, png in zip(smk.params.metrics, smk.output.plots, strict=True):
            assert Path(png).stem == metric, (png, metric)
            binned = plot_metric_vs_snr(per_file, metric, png, n_bins=smk.params.n_bins)
            tables.append(binned.assign(metric=metric))
            mlflow.log_artifact(png, artifact_path="report/snr")
        bins = pd.concat(tables, ignore_index=True)
        write_text_atomic(smk.output.bins, bins.to_csv(sep="\t", index=False, float_format="%.6g"))
        mlflow.log_artifact(smk.output.bins, artifact_path="report")


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
