"""Spectrogram examples for the report: noisy reference mic / every model / target of a few mixtures.

Mixtures are chosen from the noisy baseline's per-file scores, spread evenly over the input-SNR
range (:func:`se_lib.report.plots.select_examples`), so the report shows hard and easy cases. Each
panel title carries that system's SI-SDR and PESQ for the file when the per-file scores are given.
The folder is built beside its destination and renamed into place, so it is complete or absent; it
also holds ``examples.csv``, the figures' data (mixtures, input SNR, every system's scores).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from se_lib.data.audio import read_audio
from se_lib.data.naming import mixture_filename, parse_mixture_filename
from se_lib.io import atomic_dir, write_text_atomic
from se_lib.report.names import METRICS
from se_lib.report.plots import select_examples
from se_lib.report.spectrogram import plot_spectrograms
from se_lib.report.tables import read_per_file

__all__ = ["examples_table", "mixture_stem", "write_spectrogram_examples"]


def mixture_stem(row: Mapping) -> str:
    """File-name stem shared by a mixture's wavs (``sid_..._snr_5dB``)."""
    if row.get("mixture"):
        return str(row["mixture"])
    return mixture_filename(row, "noisy")[: -len("_noisy.wav")]


def _score_text(scores: pd.DataFrame | None, stem: str) -> str:
    if scores is None or "mixture" not in scores.columns:
        return ""
    hit = scores[scores["mixture"] == stem]
    if hit.empty:
        return ""
    r = hit.iloc[0]
    parts = []
    for col, fmt in (("si_sdr", "SI-SDR {:.1f} dB"), ("pesq_wb", "PESQ {:.2f}"), ("estoi", "ESTOI {:.2f}")):
        if col in r and isinstance(r[col], (int, float)) and math.isfinite(r[col]):
            parts.append(fmt.format(r[col]))
    return "  (" + ", ".join(parts) + ")" if parts else ""


def _candidates(references_dir: Path) -> pd.DataFrame:
    rows = []
    for p in sorted(references_dir.glob("*_noisy.wav")):
        parsed = parse_mixture_filename(p.name)
        parsed.pop("kind")
        parsed["mixture"] = p.name[: -len("_noisy.wav")]
        rows.append(parsed)
    if not rows:
        raise FileNotFoundError(f"{references_dir}: no *_noisy.wav files")
    return pd.DataFrame(rows)


def write_spectrogram_examples(
    references_dir: str | os.PathLike,
    predictions: Mapping[str, str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    n_examples: int = 3,
    noisy_scores: str | os.PathLike | None = None,
    model_scores: Mapping[str, str | os.PathLike] | None = None,
    ref_mic: int = 0,
    sample_rate: int = 16000,
) -> list[Path]:
    """Write ``<stem>.png`` per chosen mixture into ``out_dir`` (replaced atomically); return the paths.

    ``references_dir`` holds ``*_noisy.wav``/``*_target.wav``; ``predictions`` maps model names to
    folders with ``*_enhanced.wav``. Missing files raise FileNotFoundError naming the file.
    """
    refs = Path(references_dir)
    noisy_df = read_per_file(noisy_scores) if noisy_scores else _candidates(refs)
    scores = {name: read_per_file(p) for name, p in (model_scores or {}).items()}
    chosen = select_examples(noisy_df, n_examples)
    out = Path(out_dir)
    written = []
    with atomic_dir(out) as tmp:
        for _, row in chosen.iterrows():
            stem = mixture_stem(row)
            noisy, _ = read_audio(refs / f"{stem}_noisy.wav", sample_rate, mono=False, resample=False, min_peak=None)
            if ref_mic >= noisy.shape[0]:
                raise ValueError(f"{refs / f'{stem}_noisy.wav'}: ref_mic {ref_mic} but {noisy.shape[0]} channel(s)")
            panels = [(f"noisy (mic {ref_mic}){_score_text(noisy_df if noisy_scores else None, stem)}", noisy[ref_mic])]
            for name, folder in predictions.items():
                enhanced, _ = read_audio(
                    Path(folder) / f"{stem}_enhanced.wav", sample_rate, resample=False, min_peak=None
                )
                panels.append((f"{name}{_score_text(scores.get(name), stem)}", enhanced))
            target, _ = read_audio(refs / f"{stem}_target.wav", sample_rate, resample=False, min_peak=None)
            panels.append(("target (reference mic)", target))
            title = f"{stem}  -  input SNR {float(row['snr_db']):g} dB"
            plot_spectrograms(panels, sample_rate, tmp / f"{stem}.png", title=title)
            written.append(out / f"{stem}.png")
        # the figures' data: which mixtures, their input SNR and every system's scores (the audio is in
        # the references / predictions folders)
        write_text_atomic(tmp / "examples.csv", examples_table(chosen, scores).to_csv(index=False, float_format="%.6g"))
    return written


def examples_table(chosen: pd.DataFrame, scores: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per chosen mixture: its columns (noisy scores when scored) plus ``<model>:<metric>`` per model."""
    table = chosen.copy()
    table["mixture"] = [mixture_stem(row) for _, row in chosen.iterrows()]
    for name, df in scores.items():
        if "mixture" not in df.columns:
            continue
        metric_cols = [c for c in df.columns if c in METRICS]
        sub = df.set_index("mixture")[metric_cols].add_prefix(f"{name}:")
        table = table.join(sub, on="mixture")
    return table
