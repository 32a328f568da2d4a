"""Snakemake glue for rule `report_spectrograms`: spectrogram panels of a few mixtures of one split."""

import mlflow

from se_lib.report.examples import write_spectrogram_examples
from se_lib.workflow import rule_job


def main(smk) -> None:
    split, models = smk.wildcards.split, list(smk.params.models)
    with rule_job(smk, params={"split": split, "models": models, "n_examples": smk.params.n_examples}) as (log, run):
        written = write_spectrogram_examples(
            smk.input.references,
            dict(zip(models, smk.input.predictions, strict=True)),
            smk.output[0],
            n_examples=smk.params.n_examples,
            noisy_scores=smk.input.noisy,
            model_scores=dict(zip(models, smk.input.scores, strict=True)),
            ref_mic=smk.params.ref_mic,
            sample_rate=smk.params.sample_rate,
        )
        for png in written:
            mlflow.log_artifact(str(png), artifact_path="report/spectrograms")
        log.info("wrote %d spectrogram panels to %s", len(written), smk.output[0])


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
