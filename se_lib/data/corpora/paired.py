"""Any paired corpus: a noisy glob, a clean glob and a regex that pairs them (WHAMR!, LibriMix, your own).

Options (``corpus.paired``), paths relative to ROOT::

    noisy: "wav16k/min/*/mix_single/*.wav"        # glob of the noisy recordings (``**`` allowed)
    clean: "wav16k/min/*/s1/*.wav"                # glob of the clean references
    key: "(?P<split>[^/]+)/(?:mix_single|s1)/(?P<key>[^/]+)\\.wav$"
                                                  # searched in each relative path; equal ``key`` (and
                                                  # ``split`` group, if any) = a pair
    splits: {train: "/train-(100|360)/", val: "/dev/", test: "/test/"}
                                                  # regex per split, searched in the noisy path; or one
                                                  # split name for all, e.g. ``splits: test``
    channels: null                                # channels of multichannel noisy files (0-based; null: all)
    condition: recorded                           # the rows' noise token (``nid1``)
    name: paired                                  # the recording set's token (``rid``: ``<name>-<split>``)
    counts: {test: 3000}                          # optional expected recordings per split

Examples: WHAMR! ``mix_single_reverb/`` -> ``s1_anechoic/``; LibriMix ``mix_single/`` -> ``s1/``. The SNR of
each pair is measured (clean energy over the energy of noisy minus clean at channel 0 of the chosen ones).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import soundfile as sf

from se_lib.data.corpora.recordings import Recording, relative, source_id
from se_lib.data.naming import check_id
from se_lib.data.splits import SPLITS


def _files(root: Path, pattern: str, key: str) -> list[Path]:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"corpus.paired.{key} must be a glob relative to the corpus root")
    return sorted(Path(p) for p in glob.glob(str(root / pattern), recursive=True) if Path(p).is_file())


def groups_of(options: Mapping[str, Any]) -> dict[str, int]:
    """Expected recordings per split (``counts``), keyed ``paired-<split>``."""
    return {f"paired-{s}": int(n) for s, n in dict(options.get("counts") or {}).items()}


def scan(root: Path, options: Mapping[str, Any]) -> tuple[list[Recording], list[tuple[str, str]], dict[str, int]]:
    """Pairs found by the options (see the module docstring), the pairing problems, and the pairs per split's
    group (``paired-<split>``)."""
    opts = dict(options or {})
    for k in ("noisy", "clean", "key", "splits"):
        if k not in opts:
            raise ValueError(f"corpus.paired.{k} is required (see se_lib/data/corpora/paired.py)")
    try:
        key_re = re.compile(opts["key"])
    except re.error as exc:
        raise ValueError(f"corpus.paired.key: not a regex ({exc})") from exc
    if "key" not in key_re.groupindex:
        raise ValueError("corpus.paired.key needs a named group (?P<key>...)")
    splits = opts["splits"]
    if isinstance(splits, str):
        if splits not in SPLITS:
            raise ValueError(f"corpus.paired.splits: {splits!r} is not one of {SPLITS}")
        split_res = {splits: re.compile("")}
    else:
        split_res = {s: re.compile(rx) for s, rx in dict(splits).items()}
        if not set(split_res) <= set(SPLITS):
            raise ValueError(f"corpus.paired.splits: keys must be among {SPLITS}, got {sorted(split_res)}")
    condition = check_id(opts.get("condition", "recorded"), "corpus.paired.condition")
    name = check_id(opts.get("name", "paired"), "corpus.paired.name")
    channels = opts.get("channels")
    problems: list[tuple[str, str]] = []

    def pair_key(path: Path) -> tuple[str, ...] | None:
        m = key_re.search(relative(path, root))
        if m is None:
            return None
        return tuple(m.group(g) or "" for g in sorted(key_re.groupindex))

    clean: dict[tuple[str, ...], Path] = {}
    for path in _files(root, opts["clean"], "clean"):
        k = pair_key(path)
        if k is None:
            problems.append((relative(path, root), "corpus.paired.key does not match this clean file"))
        elif k in clean:
            problems.append((relative(path, root), f"same key as {relative(clean[k], root)}"))
        else:
            clean[k] = path
    recordings: list[Recording] = []
    seen: dict[tuple[str, ...], Path] = {}
    for path in _files(root, opts["noisy"], "noisy"):
        rel = relative(path, root)
        k = pair_key(path)
        if k is None:
            problems.append((rel, "corpus.paired.key does not match this noisy file"))
            continue
        if k in seen:
            problems.append((rel, f"same key as {relative(seen[k], root)}"))
            continue
        seen[k] = path
        if k not in clean:
            problems.append((rel, "no clean partner"))
            continue
        split = [s for s, rx in split_res.items() if rx.search(rel)]
        if len(split) != 1:
            problems.append((rel, f"corpus.paired.splits matches {len(split)} splits ({split})"))
            continue
        try:
            width = sf.info(str(path)).channels
        except Exception as exc:
            problems.append((rel, f"unreadable audio ({str(exc).splitlines()[0][:120]})"))
            continue
        chosen = list(range(width)) if channels is None else [int(c) for c in channels]
        stem = key_re.search(rel)["key"]
        recordings.append(
            Recording(
                sid=source_id(Path(stem).stem),
                speaker=source_id(Path(stem).stem).split("_")[0],
                split=split[0],
                condition=condition,
                setup=f"{name}-{split[0]}",
                group=f"paired-{split[0]}",
                noisy=tuple((rel, c) for c in chosen),
                clean=(relative(clean[k], root), 0),
            )
        )
    for k in sorted(set(clean) - set(seen)):
        problems.append((relative(clean[k], root), "no noisy partner"))
    found = dict.fromkeys(groups_of(opts), 0)
    for r in recordings:
        found[r.group] = found.get(r.group, 0) + 1
    return recordings, problems, found
