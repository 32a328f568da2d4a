"""Snakemake glue for rule `report_recordings`: the report section of one recording set (se_lib.report.recordings)."""

import mlflow

from se_lib.report.recordings import write_recordings_report
from se_lib.workflow import rule_job


def main(smk) -> None:
    name, models = smk.wildcards.recordings, list(smk.params.models)
    with rule_job(smk, params={"recordings": name, "models": models, "skipped": smk.params.skipped}) as (log, run):
        table = write_recordings_report(
            name,
            dict(zip(models, smk.input.enhanced, strict=True)),
            table_html_path=smk.output.html,
            table_tsv_path=smk.output.tsv,
            spectrograms_dir=smk.output.spectrograms,
            listen_html_path=smk.output.listen,
            n_examples=smk.params.n_examples,
            skipped=smk.params.skipped,
            n_channels=smk.params.n_channels,
        )
        for path in (smk.output.html, smk.output.tsv):
            mlflow.log_artifact(path, artifact_path=f"report/recordings/{name}")
        log.info("recordings %s:\n%s", name, table.to_string())


# Guarded: worker processes started with multiprocessing's `spawn` re-import this file as __mp_main__.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
