"""Tables and figures of the workflow report (``snakemake --report``).

* :mod:`se_lib.report.tables` - the model comparison (every metric with its 95 % confidence
  interval, parameter count, inference real-time factor) as TSV and standalone HTML;
* :mod:`se_lib.report.plots` - metric versus input SNR, learning curves, parallel coordinates of
  hyper-parameters against the best validation metric;
* :mod:`se_lib.report.spectrogram` - the one spectrogram plotter (kHz axis), also used for the
  training runs' audio samples;
* :mod:`se_lib.report.figures` - a pyplot-free ``Figure`` and its atomic PNG write;
* :mod:`se_lib.report.examples` - spectrogram panels (noisy / each model / target) of a few mixtures
  spread over the input-SNR range;
* :mod:`se_lib.report.recordings` - the section of each recording set (config ``recordings``): DNSMOS
  table, spectrograms and a page to listen to them;
* :mod:`se_lib.report.names` - metric names and labels (light; imported by ``rules/report.smk``).

The MLflow data behind the figures (learning curves, the experiment's runs) is read by
:mod:`se_lib.tracking.history`.

Plots use matplotlib's object API (``Figure`` + Agg canvas), never pyplot's global state, so they
are safe in worker processes and tests.
"""

from __future__ import annotations

from se_lib.report.names import BASELINE, METRIC_LABELS, METRICS

__all__ = ["BASELINE", "METRICS", "METRIC_LABELS"]
