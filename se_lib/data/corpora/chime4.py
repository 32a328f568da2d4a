"""CHiME-4 isolated 6-channel track (Vincent, Watanabe, Nugraha, Barker & Marxer, 2017): tablet recordings.

Published layout (https://www.chimechallenge.org/challenges/chime4/data; recipe ``config/corpora/chime4.yaml``),
ROOT being the folder that holds ``isolated/`` (``CHiME3/data/audio/16kHz`` in the distribution)::

    ROOT/isolated/<set>_<env>_<simu|real>/<spk>_<utt>_<ENV>.CH<n>.wav       n = 1..6 tablet mics (CH0: close talk)
    ROOT/isolated_ext/<set>_<env>_simu/<spk>_<utt>_<ENV>.CH<n>.Clean.wav    simulated data's clean speech per mic

``set`` is tr05 / dt05 / et05 (train / val / test), ``env`` bus / caf / ped / str. 16 kHz. CH1-CH6 are the tablet
array, CH2 on the back (facing away from the speaker); CH0 is the close-talking microphone of real recordings,
which is not an array channel and is not a clean reference. ``channels`` picks and orders the array channels
(default ``[1, 3, 4, 5, 6]``: ESPnet's recipe drops CH2); ``reference_channel`` (default 5, one of ``channels``) is
where the target is: a simulated recording's clean file of that channel, which its scores use. Real recordings
have no clean reference (DNSMOS only) and can only be test data; with ``close_talk_reference: true`` (real sets
only) their target is the close-talk mic CH0, an approximate reference: the recording says so
(``approximate_reference``), no SNR is measured against it, and the scorer labels its scores ``*_approx``.
The ``chime3_tablet`` room preset numbers its mics in the same order (index i = CH(i+1)), so a model trained on
simulated tablet rooms with the same channel choice takes these recordings as they are.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from se_lib.data.corpora.recordings import Recording, relative, source_id

SETS = ("tr05_simu", "tr05_real", "dt05_simu", "dt05_real", "et05_simu", "et05_real")
ENVS = ("bus", "caf", "ped", "str")
SPLIT_OF = {"tr05": "train", "dt05": "val", "et05": "test"}
ARRAY_CHANNELS = (1, 2, 3, 4, 5, 6)
DEFAULTS = {
    "sets": ["tr05_simu", "dt05_simu", "et05_simu", "et05_real"],
    "channels": [1, 3, 4, 5, 6],
    "reference_channel": 5,
    "close_talk_reference": False,
}
CLOSE_TALK = 0  # CH0: the speaker's headset microphone, real recordings only
_NAME = re.compile(r"^(?P<stem>(?P<spk>[A-Za-z0-9]+)_[A-Za-z0-9]+_[A-Za-z]+)\.CH(?P<ch>\d)\.wav$")


def options_of(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The adapter's options with defaults, checked (errors name the config key)."""
    opts = {**DEFAULTS, **dict(options or {})}
    unknown = [s for s in opts["sets"] if s not in SETS]
    if unknown:
        raise ValueError(f"corpus.chime4.sets: unknown set(s) {unknown}; choose from {SETS}")
    channels = [int(c) for c in opts["channels"]]
    if not channels or any(c not in ARRAY_CHANNELS for c in channels) or len(set(channels)) != len(channels):
        raise ValueError(f"corpus.chime4.channels must be distinct tablet channels 1-6, got {opts['channels']}")
    if int(opts["reference_channel"]) not in channels:
        raise ValueError(
            f"corpus.chime4.reference_channel {opts['reference_channel']} "
            f"is not one of corpus.chime4.channels {channels}"
        )
    for s in opts["sets"]:
        if s.endswith("_real") and SPLIT_OF[s[:4]] != "test":
            raise ValueError(f"corpus.chime4.sets: {s} has no clean reference, so it can only be test data (et05_real)")
    close_talk = opts["close_talk_reference"]
    if not isinstance(close_talk, bool):
        raise ValueError(f"corpus.chime4.close_talk_reference must be true or false, got {close_talk!r}")
    if close_talk and any(not s.endswith("_real") for s in opts["sets"]):
        raise ValueError(
            "corpus.chime4.close_talk_reference scores real recordings against their close-talk mic (CH0), an "
            "approximate reference that must not be mixed with the simulated sets' true ones: list only real sets "
            f"(et05_real) in corpus.chime4.sets, got {opts['sets']} (put et05_simu in a test set of its own)"
        )
    return {
        "sets": list(opts["sets"]),
        "channels": channels,
        "reference_channel": int(opts["reference_channel"]),
        "close_talk_reference": close_talk,
    }


def scan(root: Path, options: Mapping[str, Any]) -> tuple[list[Recording], list[tuple[str, str]], dict[str, int]]:
    """Recordings of the chosen sets (counted in utterances per ``<set>_<simu|real>``), the layout problems
    (a missing channel file or clean file names the file), and the utterances found per ``<set>_<simu|real>``."""
    opts = options_of(options)
    channels, ref = opts["channels"], opts["reference_channel"]
    recordings: list[Recording] = []
    problems: list[tuple[str, str]] = []
    found = dict.fromkeys(opts["sets"], 0)
    if not (root / "isolated").is_dir():
        problems.append(
            ("isolated", "folder missing (ROOT must hold isolated/ and isolated_ext/, e.g. CHiME3/data/audio/16kHz)")
        )
    for name in opts["sets"]:
        set_id, kind = name.split("_")
        for env in ENVS:
            folder = root / "isolated" / f"{set_id}_{env}_{kind}"
            if not folder.is_dir():
                problems.append((relative(folder, root), "folder missing"))
                continue
            by_stem: dict[str, dict[int, Path]] = defaultdict(dict)
            for path in sorted(folder.glob("*.wav")):
                m = _NAME.match(path.name)
                if m is None:
                    problems.append((relative(path, root), "not named <spk>_<utt>_<ENV>.CH<n>.wav"))
                    continue
                by_stem[m["stem"]][int(m["ch"])] = path
            found[name] += len(by_stem)
            for stem, by_channel in sorted(by_stem.items()):
                missing = [c for c in channels if c not in by_channel]
                if missing:
                    for c in missing:
                        problems.append((f"{relative(folder, root)}/{stem}.CH{c}.wav", "channel file missing"))
                    continue
                clean = None
                if kind == "real" and opts["close_talk_reference"]:
                    if CLOSE_TALK not in by_channel:
                        problems.append((f"{relative(folder, root)}/{stem}.CH0.wav", "close-talk file missing"))
                        continue
                    clean = (relative(by_channel[CLOSE_TALK], root), 0)
                if kind == "simu":
                    clean_path = root / "isolated_ext" / folder.name / f"{stem}.CH{ref}.Clean.wav"
                    if not clean_path.is_file():
                        problems.append((relative(clean_path, root), "clean reference missing"))
                        continue
                    clean = (relative(clean_path, root), 0)
                recordings.append(
                    Recording(
                        sid=source_id(stem, kind),
                        speaker=stem.split("_")[0],
                        split=SPLIT_OF[set_id],
                        condition=env,
                        setup=f"chime4-{set_id}-{env}-{kind}",
                        group=name,
                        noisy=tuple((relative(by_channel[c], root), 0) for c in channels),
                        clean=clean,
                        ref=channels.index(ref),
                        approximate_reference=kind == "real" and clean is not None,
                    )
                )
    return recordings, problems, found
