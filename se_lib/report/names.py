"""Metric names and display labels shared by the report rules and the report library.

Kept free of heavy imports: ``rules/report.smk`` imports it while Snakemake parses the workflow.
The names are the scorer's per-file TSV columns (:mod:`se_lib.metrics.scorer`).
"""

from __future__ import annotations

__all__ = ["BASELINE", "METRICS", "METRIC_LABELS"]

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
#: Name of the unprocessed-input row (results/scores/noisy/); no model may use it.
BASELINE = "noisy"
