"""Recorded mixtures: what every corpus adapter produces, the checks they share, and the corpus stage's files.

An adapter (``voicebank_demand``, ``dns2020``, ``chime4``, ``paired``) scans a corpus root in its published layout
and returns :class:`Recording` items -- one noisy recording (one file per channel, or channels of one file), its
clean reference when the corpus has one, the split, the noise condition and the recording set -- plus the layout
problems it found (a noisy file without its clean partner, ...). :func:`check_recordings` then reads every file
once (sha256 and decode from the same bytes) and collects, in one pass and before anything is written:

* the recipe's expected counts per group (``counts:`` of ``config/corpora/<corpus>.yaml``, scaled by
  ``corpus.count_scale`` for tests' reduced stand-ins) against what the scan found;
* unreadable, empty, non-finite (NaN/Inf) or silent (peak < 1e-5) files;
* a partner at another sample rate, or longer/shorter than the noisy recording by more than
  ``MAX_LENGTH_MISMATCH_S`` (10 ms);
* a channel a recording names that its file does not have, and a recording whose channel count is not the one
  the corpus is configured for (``channels``: what the models take).

With ``on_bad_file: fail`` (default) one :class:`CorpusLayoutError` lists them all; with ``skip`` the recordings
with bad files are left out and listed (count mismatches and channel-count errors always fail: they mean the
wrong corpus or configuration, not a damaged file).

The corpus stage then writes (:func:`write_recorded_corpus`, atomically):

* ``recordings.tsv``: one row per recording (``RECORDING_COLUMNS``): ids, split, condition, set, count group,
  reference channel, the noisy channel files and the clean file as JSON ``[path, channel]`` (paths relative to the
  corpus root), the SNR (``snr_source``: ``published`` -- the corpus says it, e.g. a DNS file name -- or
  ``measured``: 10 log10 of clean energy over the energy of noisy minus clean at the reference channel;
  ``none`` without a reference or with an approximate one, then 0), the source sample rate, frames and channel
  count;
* ``manifest.tsv``: every file the recordings name, with its size and sha256 (the versioned output that stands
  for a corpus too large to copy into the DVC cache; the mixture DB's digest covers these checksums);
* ``stats.json``: counts per group, skipped files and their reasons, the corpus root.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from se_lib.data.splits import SPLITS
from se_lib.io import atomic_dir

__all__ = [
    "CorpusLayoutError",
    "Recording",
    "CheckedCorpus",
    "RECORDING_COLUMNS",
    "MANIFEST_COLUMNS",
    "MAX_LENGTH_MISMATCH_S",
    "check_recordings",
    "expected_counts",
    "write_recorded_corpus",
    "read_recordings",
    "read_manifest",
]

MAX_LENGTH_MISMATCH_S = 0.010
MIN_PEAK = 1e-5
RECORDING_COLUMNS = (
    "sid",
    "speaker",
    "split",
    "condition",
    "setup",
    "group",
    "ref",
    "noisy",
    "clean",
    "snr_db",
    "snr_source",
    "sr",
    "frames",
    "channels",
)
MANIFEST_COLUMNS = ("path", "size", "sha256")
Log = Callable[[str], None]


class CorpusLayoutError(ValueError):
    """A recorded corpus does not have the published layout, or has bad files; the message lists them all."""


@dataclass(frozen=True)
class Recording:
    """One noisy recording of a corpus and its clean reference (paths relative to the corpus root).

    ``noisy``: ``(path, channel)`` per input channel of the model, in the model's channel order;
    ``ref``: index in ``noisy`` of the reference channel (the one the clean file belongs to and the
    scores use); ``clean``: ``(path, channel)`` or None (real recordings); ``snr_db``: the SNR the publisher
    gives for this file (None: measured from the pair); ``group``: the recipe's count key it belongs to;
    ``approximate_reference``: ``clean`` is no clean reference but an approximation of it (CHiME-4's close-talk
    mic): no SNR is measured against it (``snr_source`` ``none``).
    """

    sid: str
    speaker: str
    split: str
    condition: str
    setup: str
    group: str
    noisy: tuple[tuple[str, int], ...]
    clean: tuple[str, int] | None = None
    ref: int = 0
    snr_db: float | None = None
    approximate_reference: bool = False

    def files(self) -> list[str]:
        return sorted({p for p, _ in self.noisy} | ({self.clean[0]} if self.clean else set()))


@dataclass
class _FileInfo:
    path: str
    size: int = 0
    sha256: str = ""
    sr: int = 0
    frames: int = 0
    channels: int = 0
    problem: str | None = None
    data: np.ndarray | None = field(default=None, repr=False)  # [C, T] float32, dropped after use


@dataclass
class CheckedCorpus:
    """The checked recordings as rows of ``recordings.tsv``, the manifest, and what was skipped."""

    rows: list[dict[str, Any]]
    manifest: dict[str, tuple[int, str]]  # path -> (size, sha256)
    skipped: list[tuple[str, str]]  # (path or sid, reason)
    counts: dict[str, int]
    root: Path
    seconds: float = 0.0


def expected_counts(counts: Mapping[str, int], scale: float = 1.0) -> dict[str, int]:
    """The recipe's counts, scaled by ``corpus.count_scale`` (tests' reduced stand-ins: at least 1 each)."""
    if scale == 1.0:
        return {k: int(v) for k, v in counts.items()}
    return {k: max(1, round(int(v) * float(scale))) for k, v in counts.items()}


def _inspect(root: Path, rel: str, keep: bool) -> _FileInfo:
    """Size, sha256 and header of one file from a single read; the samples too when ``keep``."""
    info = _FileInfo(rel)
    try:
        raw = (root / rel).read_bytes()
    except FileNotFoundError:
        info.problem = "file not found"
        return info
    except OSError as exc:
        info.problem = f"unreadable ({exc.strerror or exc})"
        return info
    info.size, info.sha256 = len(raw), hashlib.sha256(raw).hexdigest()
    try:
        data, sr = sf.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's own message
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        info.problem = f"unreadable audio ({reason.split('>: ', 1)[-1][:120]})"  # not the BytesIO's repr
        return info
    info.sr, info.frames, info.channels = int(sr), int(data.shape[0]), int(data.shape[1])
    if info.frames == 0:
        info.problem = "empty audio (0 samples)"
    elif not np.isfinite(data).all():
        info.problem = "non-finite samples (NaN/Inf)"
    elif float(np.abs(data).max()) < MIN_PEAK:
        info.problem = f"silent (peak < {MIN_PEAK:g})"
    if keep and info.problem is None:
        info.data = np.ascontiguousarray(data.T)
    return info


def _recording_problems(rec: Recording, files: Mapping[str, _FileInfo]) -> list[tuple[str, str]]:
    """Partner problems of one recording: rate, length, missing channels (files themselves are fine)."""
    problems = []
    noisy = [files[p] for p, _ in rec.noisy]
    first = noisy[0]
    for (path, ch), info in zip(rec.noisy, noisy, strict=True):
        if ch >= info.channels:
            problems.append((path, f"has {info.channels} channel(s), recording {rec.sid} uses channel {ch}"))
    partners = noisy[1:] + ([files[rec.clean[0]]] if rec.clean else [])
    for info in partners:
        if info.sr != first.sr:
            problems.append((info.path, f"sample rate {info.sr} Hz, its partner {first.path} has {first.sr} Hz"))
        elif abs(info.frames - first.frames) > MAX_LENGTH_MISMATCH_S * first.sr:
            diff_ms = 1000.0 * abs(info.frames - first.frames) / first.sr
            problems.append((info.path, f"length differs from its partner {first.path} by {diff_ms:.1f} ms (> 10 ms)"))
    if rec.clean and rec.clean[1] >= files[rec.clean[0]].channels:
        problems.append((rec.clean[0], f"has no channel {rec.clean[1]}"))
    return problems


def _measured_snr(rec: Recording, files: Mapping[str, _FileInfo]) -> float:
    """10 log10(clean energy / energy of noisy - clean) at the reference channel, over their common length."""
    path, ch = rec.noisy[rec.ref]
    noisy = files[path].data[ch]
    clean = files[rec.clean[0]].data[rec.clean[1]]
    n = min(len(noisy), len(clean))
    s = float(np.sum(clean[:n].astype(np.float64) ** 2))
    e = float(np.sum((noisy[:n].astype(np.float64) - clean[:n]) ** 2))
    if e <= 0.0 or s <= 0.0:
        return 99.9 if e <= 0.0 else -99.9
    return max(-99.9, min(99.9, 10.0 * math.log10(s / e)))


def check_recordings(
    root: str | os.PathLike,
    recordings: Sequence[Recording],
    *,
    layout_problems: Iterable[tuple[str, str]] = (),
    expected: Mapping[str, int] | None = None,
    found: Mapping[str, int] | None = None,
    channels: int | None = None,
    on_bad_file: str = "fail",
    threads: int = 1,
    log: Log = print,
    what: str = "corpus",
) -> CheckedCorpus:
    """Read and check every file of ``recordings`` (see the module docstring); returns the checked rows.

    ``layout_problems``: what the adapter found while pairing (missing partners, unparsable names); they count
    as bad files. ``expected``: group -> count (after scaling), compared with ``found`` (group -> items the
    adapter found, paired or not; default: the recordings per group); ``channels``: the channel count every
    recording must have. Raises :class:`CorpusLayoutError` naming every problem (``what`` names the corpus in it).
    """
    if on_bad_file not in ("fail", "skip"):
        raise ValueError(f"corpus.on_bad_file must be fail or skip, got {on_bad_file!r}")
    t0 = time.perf_counter()
    root = Path(root)
    fatal: list[str] = []
    found = Counter(found) if found is not None else Counter(r.group for r in recordings)
    for group, want in (expected or {}).items():
        if found.get(group, 0) != want:
            fatal.append(f"{group}: {found.get(group, 0)} recordings found, the recipe expects {want}")
    for group in sorted(set(found) - set(expected or {})) if expected is not None else []:
        fatal.append(f"{group}: {found[group]} recordings in a group the recipe does not list")
    if channels is not None:
        wrong = Counter(len(r.noisy) for r in recordings if len(r.noisy) != channels)
        for n, k in sorted(wrong.items()):
            example = next(r for r in recordings if len(r.noisy) == n)
            fatal.append(
                f"{k} recording(s) have {n} channel(s), the models take {channels} (e.g. {example.noisy[0][0]}); "
                "choose the channels in the corpus config"
            )
    bad: list[tuple[str, str]] = list(layout_problems)
    for r in recordings:
        if r.split not in SPLITS:
            fatal.append(f"recording {r.sid} ({r.noisy[0][0]}): split {r.split!r} is not one of {SPLITS}")

    # Pass 1: every recording's files once, in parallel (reading, hashing and decoding release the GIL); a
    # pair without a published SNR has it measured from the samples of that same read, which are then dropped.
    def inspect(r: Recording) -> tuple[dict[str, _FileInfo], float | None]:
        pair = r.clean is not None and r.snr_db is None and not r.approximate_reference
        measure = {r.noisy[r.ref][0], r.clean[0]} if pair else set()
        files = {p: _inspect(root, p, keep=p in measure) for p in r.files()}
        snr = None
        if measure and all(f.problem is None for f in files.values()) and not _recording_problems(r, files):
            snr = _measured_snr(r, files)
        for f in files.values():
            f.data = None
        return files, snr

    infos: dict[str, _FileInfo] = {}
    measured: dict[int, float] = {}
    with ThreadPoolExecutor(max_workers=max(1, int(threads))) as pool:
        for i, (files, snr) in enumerate(pool.map(inspect, recordings)):
            infos.update(files)
            if snr is not None:
                measured[i] = snr
    bad_files = {p: i.problem for p, i in infos.items() if i.problem}
    bad += sorted(bad_files.items())
    rec_problems: dict[str, list[tuple[str, str]]] = {}
    for r in recordings:
        if any(p in bad_files for p in r.files()):
            continue
        problems = _recording_problems(r, infos)
        if problems:
            rec_problems[f"{r.setup}/{r.sid}"] = problems
            bad += problems
    if fatal or (bad and on_bad_file == "fail"):
        lines = fatal + [f"{path}: {reason}" for path, reason in bad]
        shown = "\n  ".join(lines[:50]) + (f"\n  ... and {len(lines) - 50} more" if len(lines) > 50 else "")
        hint = "" if fatal else "\n(corpus.on_bad_file: skip leaves these recordings out and lists them)"
        raise CorpusLayoutError(f"{what} at {root}: {len(lines)} problem(s):\n  {shown}{hint}")

    # Pass 2: the kept recordings' rows (no more reading).
    bad_paths = {p for p, _ in bad}
    kept = [
        (r, measured.get(i))
        for i, r in enumerate(recordings)
        if not (set(r.files()) & bad_paths) and f"{r.setup}/{r.sid}" not in rec_problems
    ]
    skipped = [(p, reason) for p, reason in bad]
    if skipped:
        log(f"{what}: skipped {len(recordings) - len(kept)} recording(s) with {len(skipped)} bad file(s)")
        for p, reason in skipped:
            log(f"  skipped {p}: {reason}")

    def row(r: Recording, snr_measured: float | None) -> dict[str, Any]:
        if r.clean is not None and r.snr_db is None and not r.approximate_reference:
            snr, source = snr_measured, "measured"
        elif r.snr_db is not None:
            snr, source = float(r.snr_db), "published"
        else:
            snr, source = 0.0, "none"
        first = infos[r.noisy[0][0]]
        return {
            "sid": r.sid,
            "speaker": r.speaker,
            "split": r.split,
            "condition": r.condition,
            "setup": r.setup,
            "group": r.group,
            "ref": r.ref,
            "noisy": json.dumps([list(c) for c in r.noisy], separators=(",", ":")),
            "clean": json.dumps(list(r.clean), separators=(",", ":")) if r.clean else "",
            "snr_db": round(snr, 1) + 0.0,
            "snr_source": source,
            "sr": first.sr,
            "frames": first.frames,
            "channels": len(r.noisy),
        }

    rows = [row(r, snr) for r, snr in kept]
    manifest = {p: (infos[p].size, infos[p].sha256) for r, _ in kept for p in r.files()}
    return CheckedCorpus(
        rows=rows,
        manifest=dict(sorted(manifest.items())),
        skipped=skipped,
        counts=dict(sorted(found.items())),
        root=root.resolve(),
        seconds=time.perf_counter() - t0,
    )


def _write_tsv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), delimiter="\t", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: r[c] for c in columns})


def write_recorded_corpus(
    out_dir: str | os.PathLike, checked: CheckedCorpus, info: Mapping[str, Any], log: Log = print
) -> dict[str, Any]:
    """Write ``recordings.tsv``, ``manifest.tsv`` and ``stats.json`` into ``out_dir`` atomically; return the
    stats. ``info``: the corpus kind, recipe and settings, recorded in the stats."""
    out = Path(out_dir)
    stats = {
        **dict(info),
        "root": str(checked.root),
        "recordings": len(checked.rows),
        "per_split": dict(Counter(r["split"] for r in checked.rows)),
        "per_group": checked.counts,
        "files": len(checked.manifest),
        "bytes": sum(size for size, _ in checked.manifest.values()),
        "skipped": [{"path": p, "reason": reason} for p, reason in checked.skipped],
        "check_seconds": round(checked.seconds, 2),
    }
    with atomic_dir(out) as tmp:
        _write_tsv(tmp / "recordings.tsv", RECORDING_COLUMNS, checked.rows)
        _write_tsv(
            tmp / "manifest.tsv",
            MANIFEST_COLUMNS,
            ({"path": p, "size": s, "sha256": h} for p, (s, h) in checked.manifest.items()),
        )
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    log(
        f"{info.get('kind', 'corpus')}: {stats['recordings']} recordings {stats['per_split']}, "
        f"{stats['files']} files ({stats['bytes'] / 1e6:.1f} MB) checked in {checked.seconds:.1f} s -> {out}"
    )
    return stats


def read_recordings(corpus_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of ``recordings.tsv`` with their JSON and numeric fields decoded."""
    path = Path(corpus_dir) / "recordings.tsv"
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in RECORDING_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CorpusLayoutError(f"{path}: missing column(s) {missing}")
        rows = []
        for r in reader:
            r = dict(r)
            r["noisy"] = [tuple(c) for c in json.loads(r["noisy"])]
            r["clean"] = tuple(json.loads(r["clean"])) if r["clean"] else None
            r["ref"], r["sr"], r["frames"], r["channels"] = (int(r[k]) for k in ("ref", "sr", "frames", "channels"))
            r["snr_db"] = float(r["snr_db"])
            rows.append(r)
    return rows


def read_manifest(corpus_dir: str | os.PathLike) -> dict[str, tuple[int, str]]:
    """``manifest.tsv`` as path -> (size, sha256)."""
    path = Path(corpus_dir) / "manifest.tsv"
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["path"]: (int(r["size"]), r["sha256"]) for r in csv.DictReader(fh, delimiter="\t")}


def source_id(stem: str, suffix: str | None = None) -> str:
    """A speech id that keeps a source file's stem: characters outside ``[A-Za-z0-9_-]`` become ``-``, empty
    tokens are dropped, ``suffix`` (e.g. ``real``) is appended with ``-`` (see :func:`se_lib.data.naming.check_sid`)."""
    from se_lib.data.naming import check_sid

    tokens = [t.strip("-") for t in re.sub(r"[^A-Za-z0-9_-]+", "-", stem).split("_") if t.strip("-")]
    text = "_".join("nids-" if t == "nids" else t for t in tokens) + (f"-{suffix}" if suffix else "")
    return check_sid(text, f"speech id of {stem!r}")


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a posix string (the form recordings and manifests store)."""
    return path.relative_to(root).as_posix()


def wav_files(folder: Path) -> list[Path]:
    """The ``*.wav`` files directly in ``folder``, sorted (empty when it does not exist)."""
    return sorted(p for p in folder.glob("*.wav") if p.is_file()) if folder.is_dir() else []


def db_tables(corpus_dir: str | os.PathLike, sample_rate: int, seed: int, kind: str) -> dict[str, list[dict]]:
    """The mixture DB rows of a recorded corpus (``recordings.tsv`` + ``manifest.tsv`` of the corpus stage).

    Each recording is a ``mixture`` row like a simulated one, so every later stage treats both alike:

    * ``speech``: the clean reference (``sid`` keeps the source stem; ``path`` empty without a reference);
    * ``noise``: one row per noise condition (``kind`` = ``recorded``) and the row ``none`` (``nid2``: a recording
      has one noise field, not two): ``nids_<condition>_none`` in file names;
    * ``room``: one row per recording set (``rid``, origin ``recorded``): channels, reference mic, the CHiME
      tablet geometry for ``chime4`` (else ``[]``), no RIR;
    * ``mixture``: mid ``<split>-<n>`` in (split, set, sid) order, SNR as the corpus gives it or as measured,
      ``length`` = the recording's length at ``sample_rate`` (resampled when rendered), zero offsets;
    * ``recording``: the noisy channel files and clean file, their sha256 (from the manifest: the DB digest
      changes when a file does), the source rate and frames, where the SNR came from.

    Paths are relative to the corpus root (``meta.recordings_root``, not part of the digest), so the same corpus
    anywhere gives the same digest.
    """
    from se_lib.data.naming import check_id, round_snr, snr_tenths
    from se_lib.data.splits import derive_seed

    rows = read_recordings(corpus_dir)
    manifest = read_manifest(corpus_dir)
    if not rows:
        raise CorpusLayoutError(f"{corpus_dir}/recordings.tsv has no recordings")
    rows.sort(key=lambda r: (SPLITS.index(r["split"]), r["setup"], r["sid"]))
    speech: dict[str, dict] = {}
    noise: dict[str, dict] = {
        "none": {
            "nid": "none",
            "path": "",
            "kind": "none",
            "split": "all",
            "sr": sample_rate,
            "seconds": 0.0,
            "frames": 0,
        }
    }
    rooms: dict[str, dict] = {}
    mixtures, recs = [], []
    channel_counts = {r["channels"] for r in rows}
    if len(channel_counts) != 1:
        raise CorpusLayoutError(f"{corpus_dir}/recordings.tsv: recordings have channel counts {sorted(channel_counts)}")
    per_split: Counter = Counter()
    for r in rows:
        sid = r["sid"]
        if sid in speech:
            raise CorpusLayoutError(
                f"{corpus_dir}/recordings.tsv: speech id {sid} twice ({r['setup']}, {speech[sid]['_setup']})"
            )
        cond = check_id(r["condition"], f"{corpus_dir}/recordings.tsv: condition of {sid}")
        if cond == "none":
            raise CorpusLayoutError(f"{corpus_dir}/recordings.tsv: condition 'none' of {sid} is reserved")
        setup = check_id(r["setup"], f"{corpus_dir}/recordings.tsv: set of {sid}")
        sr, frames = r["sr"], r["frames"]
        speech[sid] = {
            "sid": sid,
            "path": r["clean"][0] if r["clean"] else "",
            "speaker": r["speaker"],
            "split": r["split"],
            "sr": sr,
            "seconds": frames / sr,
            "frames": frames,
            "text": "",
            "_setup": setup,
        }
        noise.setdefault(
            cond, {"nid": cond, "path": "", "kind": "recorded", "split": "all", "sr": sr, "seconds": 0.0, "frames": 0}
        )
        room = {
            "rid": setup,
            "split": r["split"],
            "dims": "null",
            "rt60": None,
            "mics": _mics(kind, r["noisy"]),
            "src_pos": "[]",
            "ref_mic": r["ref"],
            "target": "recorded" if r["clean"] else "none",
            "rir_path": "",
            "channels": r["channels"],
            "mic_array": kind,
            "origin": "recorded",
        }
        if rooms.setdefault(setup, room) != room:
            raise CorpusLayoutError(
                f"{corpus_dir}/recordings.tsv: recording set {setup} mixes splits, channels or references"
            )
        mid = f"{r['split']}-{per_split[r['split']]:07d}"
        per_split[r["split"]] += 1
        snr = round_snr(r["snr_db"])
        mixtures.append(
            {
                "mid": mid,
                "split": r["split"],
                "sid": sid,
                "nid1": cond,
                "nid2": "none",
                "rid": setup,
                "snr_db": snr,
                "snr_tenths": snr_tenths(snr),
                "seed": derive_seed(seed, "mixture", mid),
                "speech_offset": 0,
                "speech_start": 0,
                "noise1_offset": 0,
                "noise2_offset": 0,
                "length": math.ceil(frames * sample_rate / sr),
                "noise2_rel_db": 0.0,
            }
        )
        files = sorted({p for p, _ in r["noisy"]} | ({r["clean"][0]} if r["clean"] else set()))
        missing = [p for p in files if p not in manifest]
        if missing:
            raise CorpusLayoutError(f"{corpus_dir}/manifest.tsv lacks {missing[0]} (recording {sid})")
        recs.append(
            {
                "mid": mid,
                "corpus": kind,
                "noisy": json.dumps([list(c) for c in r["noisy"]], separators=(",", ":")),
                "clean": json.dumps(list(r["clean"]), separators=(",", ":")) if r["clean"] else "",
                "sha256": json.dumps({p: manifest[p][1] for p in files}, separators=(",", ":"), sort_keys=True),
                "sr": sr,
                "frames": frames,
                "snr_source": r["snr_source"],
            }
        )
    for s in speech.values():
        del s["_setup"]
    return {
        "speech": list(speech.values()),
        "noise": list(noise.values()),
        "room": list(rooms.values()),
        "mixture": mixtures,
        "recording": recs,
    }


def _mics(kind: str, noisy: Sequence[Sequence[Any]]) -> str:
    """Microphone positions (m, JSON) of a recording's channels where the corpus documents them: CHiME-4's
    tablet (``CH<n>`` = index n-1 of the ``chime3_tablet`` preset), else ``[]``."""
    if kind != "chime4":
        return "[]"
    from se_lib.data.rooms import CHIME3_TABLET_CM

    channels = [int(re.search(r"\.CH(\d)\.wav$", p)[1]) for p, _ in noisy]
    return json.dumps([[round(v / 100.0, 4) for v in CHIME3_TABLET_CM[c - 1]] for c in channels], separators=(",", ":"))
