"""What is added to the finished tiny workflow run after training, and the helpers to read the result.

The shared ``incremental_run`` fixture (tests/conftest.py) copies the tiny run (``workflow_run``) once and adds,
in one extra config file, public test sets (config ``test_sets:``; a VoiceBank-DEMAND-layout and two
CHiME-4-layout stand-ins from tests/corpus_standins.py, :func:`config_test_sets`) and recording sets (config
``recordings:``; recordings made here by :func:`make_recordings`, :func:`config_recordings`), then runs Snakemake
once for the targets and once for the report. tests/test_test_sets.py and tests/test_recordings.py check it.

:func:`make_recordings` also makes the recordings of the recordings unit tests. Real recorded speech: the
alsa-utils voice prompts (/usr/share/sounds/alsa, 48 kHz mono, ``make sysdeps``) mixed with its recorded
Noise.wav; without them (:data:`HAVE_ALSA_SOUNDS` false) no recording set is added, and the recordings tests
skip.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from corpus_standins import StandIn

EXPERIMENT = "tiny_smoke"  # the tiny config's MLflow experiment
VBD_SCALE, CHIME_SCALE = 0.002, 0.0031  # 2 test pairs; 4 et05_simu and 4 et05_real utterances (one per environment)
ALSA = Path("/usr/share/sounds/alsa")
VOICES = ("Front_Center.wav", "Rear_Left.wav", "Side_Right.wav")
HAVE_ALSA_SOUNDS = all((ALSA / name).exists() for name in ("Noise.wav", *VOICES))


class IncrementalRun(NamedTuple):
    """The tiny run with test sets and recording sets added (``incremental_run``): the workflow copy, the ids of
    its training runs before the additions, the two corpus stand-ins, the recordings (none without alsa-utils'
    sounds) and the folder of the recording sets."""

    workdir: Path
    trained: set[str]
    vbd: StandIn
    chime: StandIn
    recordings: list[Path]
    recordings_root: Path


def relocate_store(workdir: Path, old: Path) -> None:
    """Point a copied MLflow sqlite store's artifact locations at the copy (they are absolute paths)."""
    with sqlite3.connect(workdir / "mlflow.db") as db:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri")):
            db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (str(old), str(workdir)))


def rule_runs(workdir: Path, rule: str) -> list:
    """The MLflow runs of Snakemake rule ``rule`` in the sqlite store of the workflow copy in ``workdir``."""
    import mlflow  # here, not at the top: tests/conftest.py imports this module, and mlflow takes seconds

    client = mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    exp = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs([exp.experiment_id], f"tags.`snakemake.rule` = '{rule}'", max_results=1000)


def make_recordings(folder: Path, channels: int = 4, voices=VOICES, snr_db: float = 5.0) -> list[Path]:
    """Voice prompts + the recorded noise at ``snr_db``, as ``channels``-channel 48-kHz files (each mic a little
    delayed and attenuated), one in a sub-folder; returns the paths."""
    noise, sr = sf.read(ALSA / "Noise.wav", dtype="float64")
    out = []
    for i, name in enumerate(voices):
        speech, _ = sf.read(ALSA / name, dtype="float64")
        n = np.resize(np.roll(noise, 4801 * i), speech.shape[0])
        n *= np.sqrt(np.mean(speech**2) / np.mean(n**2) / 10 ** (snr_db / 10))
        mics = [np.roll(speech, 3 * c) * 0.95**c + np.roll(n, 211 * c) for c in range(channels)]
        path = folder / ("sub" if i == 2 else "") / f"{Path(name).stem.lower()}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.5 * np.stack(mics, 1) / np.abs(mics).max()).astype(np.float32), sr, subtype="PCM_16")
        out.append(path)
    return out


def config_test_sets(vbd_root: Path, chime_root: Path) -> dict:
    """Config ``test_sets:`` naming the stand-ins: ``vbd`` (VoiceBank-DEMAND, with its published rows), ``chime4``
    (simulated) and ``chime4-real`` (real recordings, scored against their close-talk mic CH0: approximate)."""
    chime4 = {"root": str(chime_root), "channels": [1, 3, 4, 5]}  # the tiny models' 4 microphones
    return {
        "vbd": {
            "corpus": {
                "kind": "voicebank_demand",
                "count_scale": VBD_SCALE,
                "voicebank_demand": {"root": str(vbd_root), "sets": ["test"]},
            },
            "published": "voicebank_demand",
        },
        "chime4": {
            "corpus": {
                "kind": "chime4",
                "count_scale": CHIME_SCALE,
                "chime4": {**chime4, "sets": ["et05_simu"], "reference_channel": 5},
            }
        },
        "chime4-real": {
            "corpus": {
                "kind": "chime4",
                "count_scale": CHIME_SCALE,
                "chime4": {**chime4, "sets": ["et05_real"], "close_talk_reference": True},
            }
        },
    }


def config_recordings(folder: Path) -> dict:
    """Config ``recordings:``: the recordings in ``folder`` as ``array`` (4 channels: every tiny model) and as
    ``mono`` (channel 1: the one-channel models only)."""
    return {"array": {"path": str(folder)}, "mono": {"path": str(folder), "channels": [1]}}
