"""Metric names and display labels shared by the report rules and the report library.

Kept free of heavy imports: ``rules/report.smk`` imports it while Snakemake parses the workflow.
The names are the scorer's per-file TSV columns (:mod:`se_lib.metrics.scorer`).
"""

from __future__ import annotations

__all__ = ["APPROX_METRICS", "APPROX_NOTE", "BASELINE", "METRICS", "METRIC_LABELS", "TABLE_METRICS"]

#: Report order of the metrics (all "higher is better").
METRICS: tuple[str, ...] = (
    "si_sdr",
    "si_sdri",
    "pesq_wb",
    "stoi",
    "estoi",
    "dnsmos_sig",
    "dnsmos_bak",
    "dnsmos_ovrl",
    "dnsmos_p808",
)
METRIC_LABELS: dict[str, str] = {
    "si_sdr": "SI-SDR [dB]",
    "si_sdri": "SI-SDRi [dB]",
    "pesq_wb": "PESQ (WB)",
    "stoi": "STOI",
    "estoi": "ESTOI",
    "dnsmos_sig": "DNSMOS SIG",
    "dnsmos_bak": "DNSMOS BAK",
    "dnsmos_ovrl": "DNSMOS OVRL",
    "dnsmos_p808": "DNSMOS P.808",
}
#: The intrusive metrics scored against an approximate reference (CHiME-4 real recordings against the close-talk
#: mic, ``corpus.chime4.close_talk_reference``): their own columns, never mixed with the true-reference ones.
APPROX_METRICS: tuple[str, ...] = tuple(f"{m}_approx" for m in ("si_sdr", "si_sdri", "pesq_wb", "stoi", "estoi"))
METRIC_LABELS.update({m: f"{METRIC_LABELS[m[: -len('_approx')]]} approx.†" for m in APPROX_METRICS})
#: Columns of a comparison table, in order (the approximate ones only where a split has them).
TABLE_METRICS: tuple[str, ...] = METRICS + APPROX_METRICS
APPROX_NOTE = (
    "† Approximate: scored against the speaker's close-talk microphone (CHiME-4 CH0), aligned to the reference "
    "mic by cross-correlation within ±50 ms; CH0 is no clean reference (it picks up noise and other talkers and is "
    "recorded apart from the array), so these numbers compare systems on this test set only, never with "
    "true-reference scores."
)
#: Name of the unprocessed-input row (results/scores/noisy/); no model may use it.
BASELINE = "noisy"
