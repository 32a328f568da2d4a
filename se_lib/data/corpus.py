"""Corpus stage: speech + noise files and their manifests (``results/corpus/``).

Sources, chosen by ``corpus.kind`` (a recorded public corpus -- ``voicebank_demand``, ``dns2020``, ``chime4``,
``paired`` -- is read where it lies by :mod:`se_lib.data.corpora.stage` instead: ``recordings.tsv``, ``manifest.tsv``):

* ``demo``  -- generated here: eSpeak NG speakers and synthetic/babble noises
  (:mod:`se_lib.data.demo_corpus`); needs no data and takes seconds.
* ``files`` -- bring your own: ``corpus.files.speech_glob`` / ``noise_glob`` (relative to the
  working directory, or absolute; ``**`` allowed). The speaker is the named group ``speaker`` of
  ``speaker_pattern`` searched in the (posix) path, the noise kind the group ``kind`` of
  ``noise_kind_pattern``. Whole speakers go to val/test by ``split_fractions`` (seeded, at least one
  speaker per split); noise files are split per kind by seed. Audio at other rates is resampled;
  of multichannel files **channel 0** is used (a warning lists them). An optional ``rir_glob``
  lists measured RIRs (validated, resampled, copied to ``rirs/`` as float WAV, all channels).
  A ``<stem>.txt`` or ``<stem>.lab`` beside a speech file becomes its ``text``.

Bad audio (unreadable, empty, NaN/Inf, silent: peak < 1e-5) is found in a validation pass
*before anything is written*: with ``corpus.on_bad_file: fail`` an :class:`AudioError` names every
bad path; with ``skip`` those files are left out, counted and listed in the stats and the log.

Output (contract in docs/contracts.md, "Corpus"):
``speech/<sid>.wav``, ``noise/<nid>.wav`` (mono PCM_16 at ``sample_rate``), ``speech.tsv``
(sid path speaker split sr seconds text), ``noise.tsv`` (nid path kind split sr seconds),
``rirs.tsv`` (ririd path channels sr; files corpus with ``rir_glob`` only), plus ``speakers.tsv``
(speaker split utterances source) and ``stats.json``. Paths in manifests are relative to the
working directory (the repo root) when ``out_dir`` lies inside it, absolute otherwise.
IDs match ``[A-Za-z0-9-]+``.

The build is atomic: everything is written to a temporary directory beside ``out_dir`` and renamed
into place at the end (replacing an existing ``out_dir``); on any error the temporary directory is
removed and a previous ``out_dir`` is left as it was.

CLI: ``python -m se_lib.data.corpus --config config/config.yaml --out results/corpus``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from se_lib.config import ConfigError
from se_lib.data.audio import (
    AudioError,
    AudioInfo,
    read_audio,
    resample_audio,
    write_wav_atomic,
)
from se_lib.data.splits import SPLITS, allocate_splits, derive_rng
from se_lib.io import atomic_dir

__all__ = [
    "CorpusError",
    "SPEECH_COLUMNS",
    "NOISE_COLUMNS",
    "RIR_COLUMNS",
    "build_corpus",
    "sanitize_id",
    "main",
]

SPEECH_COLUMNS = ("sid", "path", "speaker", "split", "sr", "seconds", "text")
NOISE_COLUMNS = ("nid", "path", "kind", "split", "sr", "seconds")
RIR_COLUMNS = ("ririd", "path", "channels", "sr")
SPEAKER_COLUMNS = ("speaker", "split", "utterances", "source")

_ID_BAD = re.compile(r"[^A-Za-z0-9-]+")
_PEAK_MAX = 0.999

Log = Callable[[str], Any]


class CorpusError(RuntimeError):
    """The corpus cannot be built from what was found (too few speakers, no noise for a split...)."""


# ------------------------------------------------------------------------------------ API ----


def build_corpus(config: dict, out_dir: str | os.PathLike = "results/corpus", log: Log = print) -> dict:
    """Build the corpus described by ``config['corpus']`` into ``out_dir`` (atomically).

    Args:
        config: validated workflow config (:func:`se_lib.config.load_config`).
        out_dir: output directory; replaced if it exists.
        log: called with one line per message (progress, warnings, skipped files).

    Returns:
        Stats: ``kind``, ``sample_rate``, ``speech``/``noise`` counts per split, ``speakers`` per
        split (IDs), ``noise_kinds`` per split, ``seconds`` totals, ``rirs``, ``skipped`` (list of
        ``{"path", "reason"}``), ``n_skipped``, ``multichannel`` (paths whose channel 0 was used),
        ``resampled`` (count) and ``elapsed_s``. The same dict minus ``elapsed_s`` is written
        to ``stats.json``.

    Raises:
        ConfigError: a missing/invalid ``corpus`` key (the message names it).
        AudioError: bad audio with ``on_bad_file: fail`` (names every bad path); nothing written.
        CorpusError: e.g. fewer than three speakers, or a split without noise.
    """
    t0 = time.perf_counter()
    kind = _cfg(config, "corpus.kind")
    from se_lib.data.corpora.stage import RECORDED_KINDS, build_recorded_corpus

    if kind in RECORDED_KINDS:  # a public corpus read where it lies: recordings.tsv + manifest.tsv
        return build_recorded_corpus(config, out_dir, log=log)
    sr = int(_cfg(config, "sample_rate"))
    _cfg(config, "seed")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CorpusError(f"output path {out} exists and is not a directory")
    if kind == "demo":
        _check_demo_config(config)
        build: Callable[[Path, Path], dict] = partial(_build_demo, config, log=log)
    elif kind == "files":
        plan = _plan_files(config, log)  # validates every file before anything is written
        build = partial(_build_files, plan, sr, log=log)
    else:
        raise ConfigError(
            f"config key 'corpus.kind': unknown kind {kind!r} (demo | files | {' | '.join(RECORDED_KINDS)})"
        )

    with atomic_dir(out) as tmp:
        stats = build(tmp, out)
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    stats["elapsed_s"] = round(time.perf_counter() - t0, 3)
    log(_summary(stats, out))
    return stats


def sanitize_id(raw: str) -> str:
    """Filename-safe ID token: runs of characters outside ``[A-Za-z0-9-]`` become ``-``."""
    token = _ID_BAD.sub("-", raw).strip("-")
    token = re.sub(r"-{2,}", "-", token)
    return token or "x"


# ---------------------------------------------------------------------------- demo corpus ----


def _check_demo_config(config: dict) -> None:
    for key in ("speakers", "utterances_per_speaker", "noise_kinds", "noises_per_kind", "noise_seconds"):
        _cfg(config, f"corpus.demo.{key}")
    for split in SPLITS:
        n = _cfg(config, f"corpus.demo.speakers.{split}")
        if int(n) < 1:
            raise ConfigError(f"config key 'corpus.demo.speakers.{split}': must be >= 1, got {n}")
    from se_lib.data.noises import NOISE_KINDS

    for i, kind in enumerate(config["corpus"]["demo"]["noise_kinds"]):
        if kind not in NOISE_KINDS:
            raise ConfigError(
                f"config key 'corpus.demo.noise_kinds.{i}': unknown kind {kind!r}; known: {list(NOISE_KINDS)}"
            )
    if float(config["corpus"]["demo"]["noise_seconds"]) <= 0:
        raise ConfigError("config key 'corpus.demo.noise_seconds': must be > 0")
    n_noise = len(config["corpus"]["demo"]["noise_kinds"]) * int(config["corpus"]["demo"]["noises_per_kind"])
    if n_noise < len(SPLITS):
        raise ConfigError(
            f"config key 'corpus.demo.noises_per_kind': {n_noise} noise file(s) in all cannot "
            f"give every split its own noise; need at least {len(SPLITS)}"
        )
    from se_lib.data.demo_corpus import plan_speakers

    try:
        plan_speakers(config["corpus"]["demo"]["speakers"], int(config["seed"]))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _build_demo(config: dict, tmp: Path, final: Path, log: Log) -> dict:
    from se_lib.data.demo_corpus import demo_noise, demo_speech, plan_speakers

    sr, seed = int(config["sample_rate"]), int(config["seed"])
    w = _Writer(tmp, final, sr)
    t = time.perf_counter()
    for row, audio in demo_speech(config):
        w.speech(row["sid"], audio, row["speaker"], row["split"], row["text"])
    log(f"corpus: synthesised {len(w.speech_rows)} utterances in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    for row, audio in demo_noise(config):
        w.noise(row["nid"], audio, row["kind"], row["split"])
    log(f"corpus: generated {len(w.noise_rows)} noise files in {time.perf_counter() - t:.1f} s")
    speakers = plan_speakers(config["corpus"]["demo"]["speakers"], seed)
    _check_noise_splits(w.noise_rows, "corpus.demo.noises_per_kind")
    return w.finish("demo", speakers={s.speaker: (s.split, s.description) for s in speakers})


# --------------------------------------------------------------------------- files corpus ----


@dataclass
class _Item:
    path: Path
    display: str
    info: AudioInfo
    label: str = ""  # speaker or noise kind (sanitised)
    ident: str = ""  # sid / nid / ririd
    split: str = ""
    text: str = ""


@dataclass
class _FilesPlan:
    speech: list[_Item]
    noise: list[_Item]
    rirs: list[_Item]
    speakers: dict[str, tuple[str, str]]  # token -> (split, raw name)
    skipped: list[dict] = field(default_factory=list)
    multichannel: list[str] = field(default_factory=list)


def _plan_files(config: dict, log: Log) -> _FilesPlan:
    files = _cfg(config, "corpus.files")
    on_bad = _cfg(config, "corpus.on_bad_file")
    if on_bad not in ("fail", "skip"):
        raise ConfigError(f"config key 'corpus.on_bad_file': {on_bad!r} is not one of fail | skip")
    seed = int(config["seed"])
    speech_glob = _required_str(files, "speech_glob")
    noise_glob = _required_str(files, "noise_glob")
    speaker_re = _compile(files, "speaker_pattern", "speaker")
    kind_re = _compile(files, "noise_kind_pattern", "kind")
    fractions = _cfg(config, "corpus.files.split_fractions")
    rir_glob = files.get("rir_glob")

    speech_paths = _glob(speech_glob, "corpus.files.speech_glob")
    noise_paths = _glob(noise_glob, "corpus.files.noise_glob")
    rir_paths = _glob(rir_glob, "corpus.files.rir_glob") if rir_glob else []
    for (ka, a), (kb, b) in (
        (("speech_glob", speech_paths), ("noise_glob", noise_paths)),
        (("speech_glob", speech_paths), ("rir_glob", rir_paths)),
        (("noise_glob", noise_paths), ("rir_glob", rir_paths)),
    ):
        both = sorted({p.resolve() for p in a} & {p.resolve() for p in b})
        if both:
            raise CorpusError(
                f"corpus.files.{ka} and corpus.files.{kb} both match {len(both)} file(s), "
                f"e.g. {both[0]}; speech, noise and RIR files must be distinct"
            )

    # labels first (cheap, and a pattern mismatch is a configuration problem, not a bad file)
    speech_labels = [_match(speaker_re, p, "speaker", "corpus.files.speaker_pattern") for p in speech_paths]
    noise_labels = [_match(kind_re, p, "kind", "corpus.files.noise_kind_pattern") for p in noise_paths]

    log(
        f"corpus: validating {len(speech_paths)} speech, {len(noise_paths)} noise"
        + (f", {len(rir_paths)} RIR" if rir_paths else "")
        + " files"
    )
    bad: list[tuple[str, str]] = []
    speech = _validate(speech_paths, bad)
    noise = _validate(noise_paths, bad)
    rirs = _validate(rir_paths, bad)
    if bad:
        if on_bad == "fail":
            first, reason = bad[0]
            more = "".join(f"\n  {p}: {r}" for p, r in bad[1:])
            raise AudioError(
                first,
                f"{reason}{more}\n({len(bad)} bad audio file(s); nothing was written; "
                "set corpus.on_bad_file: skip to leave them out)",
            )
        for p, r in bad:
            log(f"corpus: WARNING skipping bad audio file {p}: {r}")
        log(f"corpus: skipped {len(bad)} bad audio file(s)")
    skipped = [{"path": p, "reason": r} for p, r in bad]

    # speakers -> tokens -> splits
    speech_pairs = [(it, lab) for it, lab in zip(speech, speech_labels, strict=True) if it is not None]
    speaker_token = _unique_tokens(sorted({lab for _, lab in speech_pairs}))
    for it, lab in speech_pairs:
        it.label = speaker_token[lab]
    speech = [it for it, _ in speech_pairs]
    tokens = sorted(set(speaker_token.values()))
    if len(tokens) < 3:
        raise CorpusError(
            f"corpus.files: need at least 3 speakers (one per split) but found {len(tokens)} "
            f"({', '.join(tokens) or 'none'}) in speech_glob {speech_glob!r} with "
            f"speaker_pattern {files['speaker_pattern']!r}"
        )
    split_of_speaker = allocate_splits({"speakers": tokens}, fractions, derive_rng(seed, "files", "speaker-split"))
    for it in speech:
        it.split = split_of_speaker[it.label]
        it.text = _sidecar_text(it.path)
    _assign_ids(speech, lambda it: f"{it.label}-{it.path.stem}")

    noise_pairs = [(it, lab) for it, lab in zip(noise, noise_labels, strict=True) if it is not None]
    kind_token = _unique_tokens(sorted({lab for _, lab in noise_pairs}))
    for it, lab in noise_pairs:
        it.label = kind_token[lab]
    noise = [it for it, _ in noise_pairs]
    _assign_ids(noise, lambda it: f"{it.label}-{it.path.stem}")
    groups: dict[str, list[str]] = {}
    for it in noise:
        groups.setdefault(it.label, []).append(it.ident)
    split_of_noise = allocate_splits(groups, fractions, derive_rng(seed, "files", "noise-split"))
    for it in noise:
        it.split = split_of_noise[it.ident]
    _check_noise_splits([{"split": it.split} for it in noise], "corpus.files.noise_glob")

    rirs = [it for it in rirs if it is not None]
    _assign_ids(rirs, lambda it: it.path.stem)
    if rir_glob and not rirs:
        raise CorpusError(f"config key 'corpus.files.rir_glob': no usable RIR file among {len(rir_paths)} matched")
    channel_counts = sorted({it.info.channels for it in rirs})
    if len(channel_counts) > 1:
        listing = ", ".join(f"{it.display} ({it.info.channels} ch)" for it in rirs[:10])
        raise CorpusError(f"corpus.files.rir_glob: RIR files have different channel counts {channel_counts}: {listing}")

    multichannel = [it.display for it in speech + noise if it.info.channels > 1]
    for p in multichannel[:10]:
        log(f"corpus: WARNING {p} is multichannel; using channel 0")
    if len(multichannel) > 10:
        log(f"corpus: WARNING ... and {len(multichannel) - 10} more multichannel files (channel 0 used)")
    speakers = {tok: (split_of_speaker[tok], raw) for raw, tok in speaker_token.items()}
    return _FilesPlan(speech, noise, rirs, speakers, skipped, multichannel)


def _build_files(plan: _FilesPlan, sr: int, tmp: Path, final: Path, log: Log) -> dict:
    w = _Writer(tmp, final, sr)
    t = time.perf_counter()
    for it in plan.speech:
        w.speech(it.ident, _load_mono(it, sr, w), it.label, it.split, it.text)
    for it in plan.noise:
        w.noise(it.ident, _load_mono(it, sr, w), it.label, it.split)
    for it in plan.rirs:
        x, _ = read_audio(it.path, sample_rate=sr, mono=False)
        w.resampled += int(it.info.sample_rate != sr)
        w.rir(it.ident, x)
    log(
        f"corpus: wrote {len(plan.speech)} speech, {len(plan.noise)} noise, {len(plan.rirs)} RIR files "
        f"in {time.perf_counter() - t:.1f} s ({w.resampled} resampled)"
    )
    return w.finish("files", speakers=plan.speakers, skipped=plan.skipped, multichannel=plan.multichannel)


def _load_mono(it: _Item, sr: int, w: _Writer) -> np.ndarray:
    x, file_sr = read_audio(it.path, sample_rate=None, mono=False)
    x = x[0]
    if file_sr != sr:
        x = resample_audio(x, file_sr, sr)
        w.resampled += 1
    peak = float(np.max(np.abs(x)))
    if peak > _PEAK_MAX:  # resampling overshoot (Gibbs) or hot recordings: scale instead of clipping
        x = x * (_PEAK_MAX / peak)
    return x


def _validate(paths: list[Path], bad: list[tuple[str, str]]) -> list[_Item | None]:
    """Read every file once (full validation); ``None`` marks a bad one (reason appended to ``bad``)."""
    out: list[_Item | None] = []
    for p in paths:
        display = p.as_posix()
        try:
            info = _audio_info_checked(p)
        except AudioError as exc:
            bad.append((display, exc.reason))
            out.append(None)
            continue
        out.append(_Item(p, display, info))
    return out


def _audio_info_checked(p: Path) -> AudioInfo:
    from se_lib.data.audio import audio_info

    info = audio_info(p)
    read_audio(p, sample_rate=None, mono=False)  # raises AudioError: unreadable/empty/NaN/silent
    return info


def _sidecar_text(path: Path) -> str:
    for suffix in (".txt", ".lab"):
        side = path.with_suffix(suffix)
        if side.is_file():
            try:
                return " ".join(side.read_text(encoding="utf-8", errors="replace").split())
            except OSError:
                return ""
    return ""


def _assign_ids(items: list[_Item], raw: Callable[[_Item], str]) -> None:
    used: set[str] = set()
    for it in items:
        base = sanitize_id(raw(it))
        ident, k = base, 2
        while ident in used:
            ident, k = f"{base}-{k}", k + 1
        used.add(ident)
        it.ident = ident


def _unique_tokens(raw_names: list[str]) -> dict[str, str]:
    """Map raw names to distinct sanitised tokens (``a_b`` and ``a-b`` must not merge)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for raw in raw_names:
        base = sanitize_id(raw)
        tok, k = base, 2
        while tok in used:
            tok, k = f"{base}-{k}", k + 1
        used.add(tok)
        out[raw] = tok
    return out


def _glob(pattern: str, key: str) -> list[Path]:
    paths = sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p))
    if not paths:
        raise CorpusError(f"config key '{key}': pattern {pattern!r} matched no files (relative to {Path.cwd()})")
    return paths


def _match(regex: re.Pattern, path: Path, group: str, key: str) -> str:
    m = regex.search(path.as_posix())
    if m is None or not m.group(group):
        raise CorpusError(
            f"config key '{key}': {regex.pattern!r} does not match {path.as_posix()} "
            f"(its named group '{group}' must capture a non-empty string)"
        )
    return m.group(group)


def _compile(files: dict, key: str, group: str) -> re.Pattern:
    pattern = _required_str(files, key)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"config key 'corpus.files.{key}': invalid regex {pattern!r} ({exc})") from exc
    if group not in regex.groupindex:
        raise ConfigError(f"config key 'corpus.files.{key}': regex {pattern!r} has no named group (?P<{group}>...)")
    return regex


def _required_str(files: dict, key: str) -> str:
    value = files.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config key 'corpus.files.{key}': required (non-empty string) when corpus.kind is 'files'")
    return value


# --------------------------------------------------------------------------------- writing ----


class _Writer:
    """Writes wavs into the temporary directory and collects manifest rows (final paths)."""

    def __init__(self, tmp: Path, final: Path, sr: int):
        self.tmp, self.final, self.sr = tmp, final, sr
        self.speech_rows: list[dict] = []
        self.noise_rows: list[dict] = []
        self.rir_rows: list[dict] = []
        self.resampled = 0
        for sub in ("speech", "noise"):
            (tmp / sub).mkdir()

    def _write(self, sub: str, ident: str, audio: np.ndarray, subtype: str = "PCM_16") -> tuple[str, float]:
        write_wav_atomic(self.tmp / sub / f"{ident}.wav", audio, self.sr, subtype=subtype)
        return _manifest_path(self.final / sub / f"{ident}.wav"), audio.shape[-1] / self.sr

    def speech(self, sid: str, audio: np.ndarray, speaker: str, split: str, text: str) -> None:
        path, sec = self._write("speech", sid, audio)
        self.speech_rows.append(
            {
                "sid": sid,
                "path": path,
                "speaker": speaker,
                "split": split,
                "sr": self.sr,
                "seconds": f"{sec:.4f}",
                "text": " ".join(text.split()),
            }
        )

    def noise(self, nid: str, audio: np.ndarray, kind: str, split: str) -> None:
        path, sec = self._write("noise", nid, audio)
        self.noise_rows.append(
            {"nid": nid, "path": path, "kind": kind, "split": split, "sr": self.sr, "seconds": f"{sec:.4f}"}
        )

    def rir(self, ririd: str, audio: np.ndarray) -> None:
        (self.tmp / "rirs").mkdir(exist_ok=True)
        path, _ = self._write("rirs", ririd, audio, subtype="FLOAT")
        self.rir_rows.append({"ririd": ririd, "path": path, "channels": int(audio.shape[0]), "sr": self.sr})

    def finish(
        self,
        kind: str,
        speakers: dict[str, tuple[str, str]],
        skipped: list | None = None,
        multichannel: list | None = None,
    ) -> dict:
        _write_tsv(self.tmp / "speech.tsv", SPEECH_COLUMNS, self.speech_rows)
        _write_tsv(self.tmp / "noise.tsv", NOISE_COLUMNS, self.noise_rows)
        if self.rir_rows:
            _write_tsv(self.tmp / "rirs.tsv", RIR_COLUMNS, self.rir_rows)
        n_utt: dict[str, int] = {}
        for r in self.speech_rows:
            n_utt[r["speaker"]] = n_utt.get(r["speaker"], 0) + 1
        spk_rows = [
            {"speaker": s, "split": split, "utterances": n_utt.get(s, 0), "source": src}
            for s, (split, src) in sorted(speakers.items())
            if n_utt.get(s, 0)
        ]
        _write_tsv(self.tmp / "speakers.tsv", SPEAKER_COLUMNS, spk_rows)
        skipped = skipped or []
        return {
            "kind": kind,
            "sample_rate": self.sr,
            "speech": {s: sum(r["split"] == s for r in self.speech_rows) for s in SPLITS},
            "speakers": {s: sorted({r["speaker"] for r in self.speech_rows if r["split"] == s}) for s in SPLITS},
            "noise": {s: sum(r["split"] == s for r in self.noise_rows) for s in SPLITS},
            "noise_kinds": {s: _count(r["kind"] for r in self.noise_rows if r["split"] == s) for s in SPLITS},
            "seconds": {
                "speech": round(sum(float(r["seconds"]) for r in self.speech_rows), 3),
                "noise": round(sum(float(r["seconds"]) for r in self.noise_rows), 3),
            },
            "rirs": len(self.rir_rows),
            "skipped": skipped,
            "n_skipped": len(skipped),
            "multichannel": multichannel or [],
            "resampled": self.resampled,
        }


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _check_noise_splits(rows: list[dict], key: str) -> None:
    missing = [s for s in SPLITS if not any(r["split"] == s for r in rows)]
    if missing:
        raise CorpusError(
            f"{key}: {len(rows)} noise file(s) cannot cover every split (none for "
            f"{', '.join(missing)}); provide at least 3 noise files"
        )


def _write_tsv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([r[c] for c in columns])


def _manifest_path(final: Path) -> str:
    """Path as written to manifests: relative to cwd when inside it, else absolute (posix)."""
    if not final.is_absolute():
        return Path(os.path.normpath(final)).as_posix()
    try:
        return final.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return final.as_posix()


def _summary(stats: dict, out: Path) -> str:
    per = lambda d: ", ".join(f"{s} {d[s]}" for s in SPLITS)  # noqa: E731
    return (
        f"corpus ({stats['kind']}) -> {out}: speech {per(stats['speech'])}; "
        f"speakers {per({s: len(v) for s, v in stats['speakers'].items()})}; noise {per(stats['noise'])}; "
        f"{stats['seconds']['speech']:.1f} s speech, {stats['seconds']['noise']:.1f} s noise; "
        f"rirs {stats['rirs']}; skipped {stats['n_skipped']}; {stats['elapsed_s']:.2f} s"
    )


def _cfg(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(
                f"config key '{dotted}': missing (load the config with se_lib.config.load_config, which fills defaults)"
            )
        node = node[part]
    return node


# ------------------------------------------------------------------------------------- CLI ----


def main(argv: list[str] | None = None) -> int:
    from se_lib.config import DEFAULT_CONFIG, load_config

    ap = argparse.ArgumentParser(prog="python -m se_lib.data.corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="workflow config YAML")
    ap.add_argument("--out", default="results/corpus", help="output directory (replaced atomically)")
    args = ap.parse_args(argv)
    try:
        stats = build_corpus(load_config(args.config), args.out)
    except (ConfigError, AudioError, CorpusError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: stats[k] for k in ("speech", "noise", "n_skipped", "elapsed_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
