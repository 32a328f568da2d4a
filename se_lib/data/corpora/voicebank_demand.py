"""VoiceBank-DEMAND (Valentini-Botinhao et al., 2016/2017): paired noisy/clean speech, 48 kHz mono.

Published layout (https://datashare.ed.ac.uk/handle/10283/2791; recipe ``config/corpora/voicebank_demand.yaml``)::

    ROOT/clean_trainset_28spk_wav/p226_001.wav    ROOT/noisy_trainset_28spk_wav/p226_001.wav
    ROOT/clean_trainset_56spk_wav/...             ROOT/noisy_trainset_56spk_wav/...
    ROOT/clean_testset_wav/p232_001.wav           ROOT/noisy_testset_wav/p232_001.wav
    ROOT/logfiles/log_testset.txt ...             (optional: "<file> <noise type> <SNR>" per line)

Noisy and clean pair by identical basename. Splits (the ESPnet/SpeechBrain convention): the chosen training set
(``trainset: 28spk`` or ``56spk``) without the validation speakers (``val_speakers``, default p226 and p287) is
train, those speakers are val, the test set is test. The speaker is the stem's part before ``_``. Where a log
file names a file's noise type and SNR, they become the row's condition and published SNR; otherwise the
condition is ``demand`` and the SNR is measured from the pair. The mixture DB resamples 48 kHz to the workflow's
rate when it renders (:mod:`se_lib.data.render`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from se_lib.data.corpora.recordings import Recording, relative, source_id, wav_files

TRAINSETS = ("28spk", "56spk")
DEFAULTS = {"trainset": "28spk", "val_speakers": ["p226", "p287"], "sets": ["train", "test"]}
_LOG_LINE = re.compile(
    r"^\s*(?P<stem>[A-Za-z0-9_]+?)(?:\.wav)?\s+(?P<noise>[A-Za-z0-9_-]+)\s+(?P<snr>-?\d+(?:\.\d+)?)\s*$"
)


def _log_entries(root: Path, name: str) -> dict[str, tuple[str, float]]:
    """``stem -> (noise type, SNR)`` from ``logfiles/<name>`` when the corpus has it (lines that do not parse
    are left out; those files get the measured SNR)."""
    path = root / "logfiles" / name
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _LOG_LINE.match(line)
        if m:
            noise = re.sub(r"[^A-Za-z0-9-]+", "-", m["noise"]).strip("-").lower() or "demand"
            out[m["stem"]] = (noise, float(m["snr"]))
    return out


def scan(root: Path, options: Mapping[str, Any]) -> tuple[list[Recording], list[tuple[str, str]], dict[str, int]]:
    """Recordings of the chosen sets, the pairing problems, and the noisy files found per recipe count key."""
    opts = {**DEFAULTS, **dict(options or {})}
    if opts["trainset"] not in TRAINSETS:
        raise ValueError(f"corpus.voicebank_demand.trainset must be one of {TRAINSETS}, got {opts['trainset']!r}")
    sets = list(opts["sets"])
    if not set(sets) <= {"train", "test"}:
        raise ValueError(f"corpus.voicebank_demand.sets must list train and/or test, got {sets}")
    val_speakers = set(opts["val_speakers"])
    folders = []
    if "train" in sets:
        folders.append((f"trainset_{opts['trainset']}", f"log_trainset_{opts['trainset']}.txt"))
    if "test" in sets:
        folders.append(("testset", "log_testset.txt"))
    recordings: list[Recording] = []
    problems: list[tuple[str, str]] = []
    found: dict[str, int] = {}
    for name, log_name in folders:
        clean_dir, noisy_dir = root / f"clean_{name}_wav", root / f"noisy_{name}_wav"
        for folder in (clean_dir, noisy_dir):
            if not folder.is_dir():
                problems.append((relative(folder, root), "folder missing"))
        clean = {p.name: p for p in wav_files(clean_dir)}
        noisy = {p.name: p for p in wav_files(noisy_dir)}
        found[noisy_dir.name] = len(noisy)
        for base in sorted(set(clean) - set(noisy)):
            problems.append((relative(clean[base], root), f"no noisy partner in {noisy_dir.name}/"))
        logged = _log_entries(root, log_name)
        train_setup = f"vbd{opts['trainset']}"
        for base in sorted(noisy):
            if base not in clean:
                problems.append((relative(noisy[base], root), f"no clean partner in {clean_dir.name}/"))
                continue
            stem = Path(base).stem
            speaker = stem.split("_")[0]
            split = "test" if name == "testset" else ("val" if speaker in val_speakers else "train")
            noise, snr = logged.get(stem, ("demand", None))
            recordings.append(
                Recording(
                    sid=source_id(stem),
                    speaker=speaker,
                    split=split,
                    condition=noise,
                    setup="vbd-test" if split == "test" else f"{train_setup}-{split}",
                    group=noisy_dir.name,
                    noisy=((relative(noisy[base], root), 0),),
                    clean=(relative(clean[base], root), 0),
                    snr_db=snr,
                )
            )
    if "train" in sets and not any(r.split == "val" for r in recordings) and recordings:
        folder = f"noisy_trainset_{opts['trainset']}_wav"
        problems.append((folder, f"no file of the val speakers {sorted(val_speakers)}"))
    return recordings, problems, found
