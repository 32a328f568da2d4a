"""Recording sets of the workflow (config ``recordings:``): named folders of real recordings that every trained
model taking their channels enhances with ``se enhance``'s code (rule ``enhance``, rules/enhance.smk).

* :func:`recording_sets` -- when the workflow is parsed: each set's folder, its recordings (the files
  ``se enhance`` finds there, :func:`se_lib.inference.audio_io.find_inputs`) and the channels fed to the
  models (config ``channels``, 1-based as ``se enhance --channels``, else all of the files'), checked from the
  file headers. A missing folder, a folder without audio, an unreadable header, channels beyond a file's or
  files with different channel counts and no ``channels`` are a :class:`~se_lib.config.ConfigError` naming
  ``recordings.<name>.<key>``, before any job starts.
* Which models enhance a set: those whose network takes its channel count, or one channel (the reference
  microphone) -- :func:`se_lib.data.corpora.stage.network_takes`, the rule of the public test sets too.
* :func:`enhance_set` -- the job: :func:`se_lib.inference.enhance.main` over the set into a folder that
  replaces the output folder only when complete (:func:`se_lib.io.atomic_dir`); :func:`summary` of its table.

Imports only the standard library at module level (rules/enhance.smk imports it while Snakemake parses).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RecordingSet", "enhance_device", "enhance_set", "read_scores", "recording_sets", "summary"]

#: Columns of ``se enhance``'s table that a set's summary averages (DNSMOS of input and output, real-time factor).
SUMMARY_COLUMNS = (
    "rtf",
    "input_dnsmos_sig",
    "input_dnsmos_bak",
    "input_dnsmos_ovrl",
    "dnsmos_sig",
    "dnsmos_bak",
    "dnsmos_ovrl",
)


@dataclass(frozen=True)
class RecordingSet:
    """A checked recording set: its ``name``, ``folder``, the recordings (``files``), what is passed to
    ``se enhance`` (``inputs``: the folder when searched recursively, else the files), the 1-based ``channels``
    picked (None: all) and ``n_channels``, the channel count the models see."""

    name: str
    folder: str
    files: tuple[str, ...]
    inputs: tuple[str, ...]
    channels: tuple[int, ...] | None
    n_channels: int


def recording_sets(config: Mapping[str, Any]) -> dict[str, RecordingSet]:
    """The config's ``recordings`` (validated: defaults filled), checked against the files; see the module."""
    import soundfile as sf

    from se_lib.config import ConfigError
    from se_lib.inference.audio_io import find_inputs

    sets = {}
    for name, spec in (config.get("recordings") or {}).items():
        key = f"recordings.{name}"
        folder = Path(spec["path"])
        if not folder.is_dir():
            what = "not found" if not folder.exists() else "not a folder"
            raise ConfigError(f"config key '{key}.path': {folder} {what}")
        found, _ = find_inputs([folder])
        if not spec["recursive"]:
            found = [f for f in found if len(f.rel.parts) == 1]
        if not found:
            raise ConfigError(
                f"config key '{key}.path': {folder} holds no .wav/.flac/.ogg files"
                + ("" if spec["recursive"] else " at its top level (recursive: false)")
            )
        counts: dict[int, list[str]] = {}
        for f in found:
            try:
                counts.setdefault(sf.info(str(f.path)).channels, []).append(str(f.path))
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise ConfigError(f"config key '{key}': {f.path}: unreadable audio ({exc})") from None
        channels = tuple(spec["channels"]) if spec.get("channels") else None
        if channels is not None:
            fewest = min(counts)
            if max(channels) > fewest:
                raise ConfigError(
                    f"config key '{key}.channels': names channel {max(channels)} but {counts[fewest][0]} has "
                    f"{fewest} channel(s)"
                )
            n_channels = len(channels)
        elif len(counts) > 1:
            detail = ", ".join(f"{n} channel(s): {paths[0]}" for n, paths in sorted(counts.items()))
            raise ConfigError(
                f"config key '{key}': the recordings have different channel counts ({detail}); pick the same "
                f"channels of every file with '{key}.channels' (1-based, e.g. [1])"
            )
        else:
            (n_channels,) = counts
        files = tuple(str(f.path) for f in found)
        inputs = (str(folder),) if spec["recursive"] else files
        sets[name] = RecordingSet(name, str(folder), files, inputs, channels, n_channels)
    return sets


def enhance_device(accelerator: str) -> str:
    """``se enhance --device`` for a workflow accelerator (``predict.accelerator`` / ``train.accelerator``)."""
    return {"gpu": "cuda", "cuda": "cuda", "cpu": "cpu"}.get(accelerator, "auto")


def enhance_set(
    model: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    channels: Sequence[int] | None = None,
    device: str = "auto",
    threads: int | None = None,
) -> list[dict[str, str]]:
    """Enhance the recordings ``inputs`` (a set's :attr:`RecordingSet.inputs`: its folder, or files) with
    ``model`` (a checkpoint or MLflow model URI), feeding it the 1-based ``channels`` (None: all), into
    ``out_dir``: ``<name>_enhanced.wav`` per recording (its rate and length) and ``enhance_scores.tsv`` with DNSMOS
    of input and output and the real-time factor, exactly as ``se enhance`` writes them. ``out_dir`` is replaced
    only when every file is done; a bad input or any other failure raises
    :class:`~se_lib.inference.enhance.EnhanceError` (``se enhance`` has named the files on stderr) and leaves
    ``out_dir`` as it was. Returns the table's rows."""
    from se_lib.inference.enhance import SCORES_FILE, EnhanceError, main
    from se_lib.io import atomic_dir

    with atomic_dir(out_dir) as tmp:
        argv = [*map(str, inputs), "--model", str(model), "--output-dir", str(tmp), "--device", device]
        if channels:
            argv += ["--channels", ",".join(str(int(c)) for c in channels)]
        if threads:
            argv += ["--threads", str(int(threads))]
        status = main(argv)
        if status != 0:
            raise EnhanceError(
                f"se enhance {' '.join(argv)} exited with status {status} (its messages above name the cause); "
                f"nothing was written to {out_dir}"
            )
        rows = read_scores(tmp / SCORES_FILE)
    return rows


def read_scores(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of an ``enhance_scores.tsv`` (strings, as written)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``n_files`` and the mean of every :data:`SUMMARY_COLUMNS` column over the files (finite values only;
    a column without any is left out)."""
    out: dict[str, float] = {"n_files": float(len(rows))}
    for col in SUMMARY_COLUMNS:
        values = [float(r[col]) for r in rows if r.get(col) not in (None, "")]
        values = [v for v in values if math.isfinite(v)]
        if values:
            out[f"mean_{col}"] = sum(values) / len(values)
    return out
