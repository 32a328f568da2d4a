"""The report's section on real recordings (config ``recordings:``, rule ``report_recordings``): per set, a table of
mean DNSMOS SIG/BAK/OVRL of the input and of every model that enhanced it, spectrograms of a few recordings
(input vs each model) and a page where they can be heard.

Inputs are the folders rule ``enhance`` writes, one per model (``se enhance``'s ``<name>_enhanced.wav`` and
``enhance_scores.tsv``). The table is the comparison table of the test splits (:func:`se_lib.report.tables.
comparison_table`, :func:`~se_lib.report.tables.table_html`) with the unprocessed input as its ``noisy`` row and the
models' mean real-time factor; models that do not take the set's channel count are named under it. The
recordings shown are spread over the input's DNSMOS OVRL (:func:`se_lib.report.plots.select_examples`), drawn
by the report's one spectrogram plotter (:func:`se_lib.report.spectrogram.plot_spectrograms`), over their first
:data:`EXCERPT_SECONDS` seconds; the listening page embeds those excerpts as 16-bit WAV data (``<audio>``), so it
plays inside the self-contained ``snakemake --report`` file. Every output is written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from se_lib.inference.audio_io import SCORES_FILE
from se_lib.io import atomic_dir, write_text_atomic
from se_lib.report.names import BASELINE
from se_lib.report.tables import _read_tsv, comparison_table, mean_ci95, table_html

__all__ = ["EXCERPT_SECONDS", "METRICS", "recordings_table", "write_recordings_report"]

#: The DNSMOS scores of the table (P.835; P.808 stays in the per-file TSVs).
METRICS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
#: Seconds of each chosen recording drawn and embedded for listening (from its start).
EXCERPT_SECONDS = 10.0
INPUT_LABEL = "input"


def read_scores(folder: str | os.PathLike) -> pd.DataFrame:
    """``enhance_scores.tsv`` of an enhanced folder, checked for the columns the section uses."""
    df = _read_tsv(
        Path(folder) / SCORES_FILE, ("input", "output", "rtf", "reference_channel", *METRICS), "se enhance table"
    )
    if df.empty:
        raise ValueError(f"{Path(folder) / SCORES_FILE}: no rows")
    return df


def _summary(values: Mapping[str, pd.Series]) -> pd.DataFrame:
    rows = []
    for metric, col in values.items():
        mean, ci, n = mean_ci95(col)
        rows.append({"metric": metric, "mean": mean, "ci95": ci, "count": n})
    return pd.DataFrame(rows).set_index("metric")


def recordings_table(scores: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The comparison table of a set: the input (row ``noisy``, from the first model's ``input_dnsmos_*``: every
    model reads the same recordings) and each model: ``n_files``, mean and 95 % CI of :data:`METRICS`, mean
    real-time factor."""
    if not scores:
        return pd.DataFrame(columns=["system", "n_files", "real_time_factor"])
    first = next(iter(scores.values()))
    summaries = {BASELINE: _summary({m: first[f"input_{m}"] for m in METRICS if f"input_{m}" in first})}
    stats: dict[str, dict] = {BASELINE: {}}
    for name, df in scores.items():
        summaries[name] = _summary({m: df[m] for m in METRICS})
        stats[name] = {"real_time_factor": float(np.nanmean(df["rtf"].to_numpy(dtype=float)))}
    return comparison_table(summaries, stats, METRICS)


def _excerpt(path: str | os.PathLike, channel: int = 0) -> tuple[np.ndarray, int]:
    """The first :data:`EXCERPT_SECONDS` of channel ``channel`` (0-based) of an audio file, float32."""
    import soundfile as sf

    info = sf.info(str(path))
    frames = min(info.frames, int(round(EXCERPT_SECONDS * info.samplerate)))
    x, sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    if channel >= x.shape[1]:
        raise ValueError(f"{path}: channel {channel + 1} asked for, the file has {x.shape[1]}")
    return np.ascontiguousarray(x[:, channel]), int(sr)


def _wav_data_uri(x: np.ndarray, sr: int) -> str:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _stem(output: str) -> str:
    """A recording's name for files and titles: its output path without ``_enhanced.wav``, ``/`` -> ``__``."""
    return output.removesuffix("_enhanced.wav").replace("/", "__").replace("\\", "__")


def write_recordings_report(
    name: str,
    enhanced: Mapping[str, str | os.PathLike],
    *,
    table_html_path: str | os.PathLike,
    table_tsv_path: str | os.PathLike,
    spectrograms_dir: str | os.PathLike,
    listen_html_path: str | os.PathLike,
    n_examples: int = 3,
    skipped: Mapping[str, int] | None = None,
    n_channels: int | None = None,
) -> pd.DataFrame:
    """Write the section of recording set ``name``: its table (HTML + TSV), ``<recording>.png`` spectrograms
    (input reference microphone, then each model) with ``examples.csv``, and the listening page. ``enhanced``
    maps model -> its folder from rule ``enhance``; ``skipped`` model -> its channel count, for models that do
    not take the set's ``n_channels``. Returns the table."""
    from se_lib.report.plots import select_examples
    from se_lib.report.spectrogram import plot_spectrograms

    scores = {model: read_scores(folder) for model, folder in enhanced.items()}
    table = recordings_table(scores)
    notes = [
        f"Recording set {name!r}: DNSMOS P.835 (non-intrusive) of the unprocessed input's reference microphone "
        "(row noisy) and of each model's output, mean ± 95 % CI over its recordings; RTF: seconds of enhancement "
        "per second of audio (se enhance)."
    ]
    if skipped:
        listed = ", ".join(f"{m} ({c} channels)" for m, c in skipped.items())
        notes.append(f"Not run on this set, whose recordings give {n_channels} channel(s): {listed}.")
    if not scores:
        notes.append("No model takes this set's channel count: nothing was enhanced.")
    note = " ".join(notes)
    write_text_atomic(table_tsv_path, table.to_csv(sep="\t", index=False, float_format="%.6g"))
    write_text_atomic(table_html_path, table_html(table, f"Recordings '{name}': DNSMOS", note))

    sections = []
    with atomic_dir(spectrograms_dir) as tmp:
        chosen = pd.DataFrame()
        if scores:
            first = next(iter(scores.values()))
            chosen = select_examples(first, n_examples, by=("input_dnsmos_ovrl", "output"))
        rows = []
        for _, row in chosen.iterrows():
            stem = _stem(str(row["output"]))
            x, sr = _excerpt(row["input"], int(row["reference_channel"]) - 1)
            players = [(INPUT_LABEL, x, sr, row.get("input_dnsmos_ovrl"))]
            panels = [(f"input (channel {int(row['reference_channel'])})", x)]
            record = {"recording": str(row["input"]), "input:dnsmos_ovrl": row.get("input_dnsmos_ovrl")}
            for model, df in scores.items():
                hit = df[df["output"] == row["output"]]
                if hit.empty:
                    raise ValueError(f"{Path(enhanced[model]) / SCORES_FILE}: no row for {row['output']}")
                y, ysr = _excerpt(Path(enhanced[model]) / str(row["output"]))
                ovrl = hit.iloc[0]["dnsmos_ovrl"]
                panels.append((f"{model}  (DNSMOS OVRL {ovrl:.2f})", y))
                players.append((model, y, ysr, ovrl))
                record[f"{model}:dnsmos_ovrl"] = ovrl
            seconds = len(x) / sr
            title = f"{row['input']}  -  first {seconds:.1f} s"
            png = plot_spectrograms(panels, sr, tmp / f"{stem}.png", title=title)
            sections.append((str(row["input"]), _png_data_uri(png), players, seconds))
            rows.append(record)
        write_text_atomic(tmp / "examples.csv", pd.DataFrame(rows).to_csv(index=False, float_format="%.6g"))
    write_text_atomic(listen_html_path, listen_page(name, sections, note))
    return table


def listen_page(name: str, sections: Sequence[tuple], note: str = "") -> str:
    """A self-contained HTML page: per recording its spectrogram and an ``<audio>`` player per system."""
    parts = []
    for title, png_uri, players, seconds in sections:
        rows = []
        for label, x, sr, ovrl in players:
            score = "" if ovrl is None or not np.isfinite(float(ovrl)) else f"{float(ovrl):.2f}"
            rows.append(
                f'<tr><th scope="row">{html.escape(label)}</th><td>{score}</td>'
                f'<td><audio controls preload="none" src="{_wav_data_uri(x, sr)}"></audio></td></tr>'
            )
        parts.append(
            f"<section><h2>{html.escape(title)}</h2>"
            f"<p>First {seconds:.1f} s, at the recording's rate ({players[0][2]} Hz).</p>"
            f'<img alt="spectrograms of {html.escape(title)}" src="{png_uri}">'
            "<table><thead><tr><th>system</th><th>DNSMOS OVRL</th><th>listen</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></section>"
        )
    body = "\n".join(parts) or "<p>No recording was enhanced in this set.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Recordings '{html.escape(name)}': listen</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #1e293b; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #cbd5e1; padding: 0.3em 0.6em; text-align: left; }}
h2 {{ font-size: 1em; }}
p {{ font-size: 0.85em; color: #475569; max-width: 60em; }}
</style></head>
<body>
<h1>Recordings '{html.escape(name)}'</h1>
<p>{html.escape(note)}</p>
{body}
</body></html>
"""
