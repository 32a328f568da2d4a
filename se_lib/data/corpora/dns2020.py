"""DNS Challenge (Interspeech 2020) test sets: synthetic pairs with and without reverberation, and real recordings.

Published layout (github.com/microsoft/DNS-Challenge, branch ``interspeech2020/master``; recipe
``config/corpora/dns2020.yaml``), ROOT being the repository's root::

    ROOT/datasets/test_set/synthetic/no_reverb/clean/clean_fileid_0.wav
    ROOT/datasets/test_set/synthetic/no_reverb/noisy/<...>_fileid_0.wav
    ROOT/datasets/test_set/synthetic/with_reverb/{clean,noisy}/...
    ROOT/datasets/test_set/real_recordings/<...>.wav          (no clean reference: DNSMOS only)

``clean_fileid_N.wav`` pairs with the one noisy file whose name ends ``_fileid_N.wav``; an ``snr<N>`` token in
the noisy name is the published SNR (else it is measured). 16 kHz mono. Everything is test data (``sets``:
``no_reverb``, ``with_reverb``, ``real_recordings``); DNS *training* data goes through the ``files`` corpus and
simulated mixtures (``config/recipes/dns2020.yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from se_lib.data.corpora.recordings import Recording, relative, source_id, wav_files

SETS = ("no_reverb", "with_reverb", "real_recordings")
DEFAULTS = {"sets": ["no_reverb", "with_reverb"]}
TEST_SET = Path("datasets/test_set")
_FILEID = re.compile(r"(?:^|_)fileid_(?P<n>\d+)\.wav$")
_SNR = re.compile(r"(?:^|_)snr(?P<snr>-?\d+(?:\.\d+)?)(?:_|$)")


def group_of(name: str) -> str:
    """The recipe's count key of a set: ``synthetic/no_reverb``, ``synthetic/with_reverb``, ``real_recordings``."""
    return name if name == "real_recordings" else f"synthetic/{name}"


def scan(root: Path, options: Mapping[str, Any]) -> tuple[list[Recording], list[tuple[str, str]], dict[str, int]]:
    """Recordings of the chosen sets, the pairing problems, and the noisy files found per recipe count key."""
    sets = list({**DEFAULTS, **dict(options or {})}["sets"])
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        raise ValueError(f"corpus.dns2020.sets: unknown set(s) {unknown}; choose from {SETS}")
    recordings: list[Recording] = []
    problems: list[tuple[str, str]] = []
    found: dict[str, int] = {}
    for name in sets:
        tag = name.replace("_", "")  # noreverb, withreverb, realrecordings: a token for ids
        if name == "real_recordings":
            folder = root / TEST_SET / "real_recordings"
            if not folder.is_dir():
                problems.append((relative(folder, root), "folder missing"))
            found[group_of(name)] = len(wav_files(folder))
            for path in wav_files(folder):
                recordings.append(
                    Recording(
                        sid=source_id(path.stem, tag),
                        speaker="dns",
                        split="test",
                        condition="real",
                        setup="dns2020-real",
                        group=group_of(name),
                        noisy=((relative(path, root), 0),),
                    )
                )
            continue
        base = root / TEST_SET / "synthetic" / name
        for folder in (base / "clean", base / "noisy"):
            if not folder.is_dir():
                problems.append((relative(folder, root), "folder missing"))
        clean: dict[str, Path] = {}
        for path in wav_files(base / "clean"):
            m = _FILEID.search(path.name)
            if m is None or not path.name.startswith("clean_"):
                problems.append((relative(path, root), "not named clean_fileid_<N>.wav"))
            else:
                clean[m["n"]] = path
        noisy: dict[str, Path] = {}
        found[group_of(name)] = len(wav_files(base / "noisy"))
        for path in wav_files(base / "noisy"):
            m = _FILEID.search(path.name)
            if m is None:
                problems.append((relative(path, root), "no _fileid_<N> at the end of the name"))
            elif m["n"] in noisy:
                problems.append(
                    (relative(path, root), f"a second noisy file for fileid {m['n']} ({noisy[m['n']].name})")
                )
            else:
                noisy[m["n"]] = path
        for n in sorted(set(clean) - set(noisy), key=int):
            problems.append((relative(clean[n], root), "no noisy partner (…_fileid_N.wav)"))
        for n in sorted(noisy, key=int):
            if n not in clean:
                problems.append((relative(noisy[n], root), f"no clean partner clean_fileid_{n}.wav"))
                continue
            snr = _SNR.search(noisy[n].stem)
            recordings.append(
                Recording(
                    sid=source_id(f"fileid_{n}", tag),
                    speaker="dns",
                    split="test",
                    condition="dns",
                    setup=f"dns2020-{name.replace('_', '-')}",
                    group=group_of(name),
                    noisy=((relative(noisy[n], root), 0),),
                    clean=(relative(clean[n], root), 0),
                    snr_db=float(snr["snr"]) if snr else None,
                )
            )
    return recordings, problems, found
