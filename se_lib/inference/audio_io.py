"""Streaming audio I/O of ``se enhance``: finding recordings, checking them, reading and writing in blocks.

Recordings can be an hour long, so nothing here holds a whole file:

* :func:`find_inputs` -- the files named on the command line and the ``.wav``/``.flac``/``.ogg`` files
  under the folders named there (recursive, sorted, hidden files and the output folder left out), each
  with the path relative to the folder it was found in (the output keeps that structure);
* :func:`probe_audio` -- the check pass: the header (readable, not empty, not truncated: a WAV whose
  data chunk claims more bytes than the file holds, an Ogg stream without its end-of-stream page), then
  a streaming decode of every sample (decoding errors, NaN/Inf, fewer frames than the header says).
  Integer PCM in a WAV/AIFF/RF64 container cannot hold NaN nor fail to decode once its header is
  consistent, so those files are not decoded twice;
* :class:`BlockReader` -- sequential reads of ``[start, stop)`` frame ranges with increasing starts
  (overlapping chunks are served from a small buffer, never by seeking), the chosen channels only,
  ``[C, T]`` float32, NaN/Inf checked as it goes;
* :func:`open_wav_writer` -- a mono/multichannel WAV written block by block into a temporary file beside
  the destination and renamed into place when complete (:func:`se_lib.io.atomic_file`): an error or an
  interrupt leaves no partial output.

Every problem with a file raises :class:`se_lib.data.audio.AudioError` naming the path.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from se_lib.data.audio import _SFC_SET_ADD_PEAK_CHUNK, AudioError, AudioInfo, audio_info
from se_lib.io import atomic_file

__all__ = [
    "AUDIO_SUFFIXES",
    "BlockReader",
    "InputFile",
    "SCORES_FILE",
    "find_inputs",
    "open_wav_writer",
    "probe_audio",
    "scan_audio",
]

#: The per-file table ``se enhance`` writes into its output folder (the report's recordings section reads it).
SCORES_FILE = "enhance_scores.tsv"
#: Suffixes collected from input folders (files named directly may be anything libsndfile reads).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
#: Containers of uncompressed PCM: an integer subtype there cannot fail to decode or hold NaN.
_PCM_CONTAINERS = ("WAV", "WAVEX", "RF64", "AIFF", "W64")
_SCAN_BLOCK = 1 << 16  # frames per read of the check pass


@dataclass(frozen=True)
class InputFile:
    """A recording to enhance: ``path`` and ``rel``, its path relative to the folder it was found in
    (its name alone for a file named on the command line)."""

    path: Path
    rel: Path


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def find_inputs(
    paths: Sequence[str | os.PathLike], exclude: str | os.PathLike | None = None
) -> tuple[list[InputFile], list[AudioError]]:
    """The recordings named by ``paths`` (files, or folders searched recursively for :data:`AUDIO_SUFFIXES`).

    Returns ``(inputs, problems)``: a path that does not exist, or a folder without audio, is a problem
    (an :class:`AudioError` naming it), not an exception, so that the check pass can report every bad
    input at once. Files under ``exclude`` (the output folder, when it lies inside an input folder) and
    hidden files/folders are left out; a file named twice is listed once.
    """
    excluded = Path(exclude).resolve() if exclude is not None else None
    inputs: list[InputFile] = []
    problems: list[AudioError] = []
    seen: set[Path] = set()

    def add(path: Path, rel: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            inputs.append(InputFile(path, rel))

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = []
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.suffix.lower() not in AUDIO_SUFFIXES or _is_hidden(rel) or not f.is_file():
                    continue
                if excluded is not None and f.resolve().is_relative_to(excluded):
                    continue
                found.append((f, rel))
            if not found:
                problems.append(AudioError(p, f"folder holds no {'/'.join(s[1:] for s in AUDIO_SUFFIXES)} files"))
            for f, rel in found:
                add(f, rel)
        elif p.is_file():
            add(p, Path(p.name))
        else:
            problems.append(AudioError(p, "not found" if not p.exists() else "not a regular file or folder"))
    return inputs, problems


_SHOULD_BE = re.compile(r"^\s*(data|RIFF)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _truncation(extra_info: str) -> str | None:
    """Why libsndfile's header log says the file was cut short, or None."""
    for chunk, declared, actual in _SHOULD_BE.findall(extra_info):
        if chunk == "data" and int(declared) > int(actual):
            return f"truncated: the header declares {declared} data bytes, the file holds {actual}"
    if "lacks an end-of-stream bit" in extra_info:
        return "truncated: the Ogg stream ends without its end-of-stream page"
    return None


def probe_audio(path: str | os.PathLike, *, scan: bool = True) -> AudioInfo:
    """The header of ``path`` after the check pass (see the module docstring); :class:`AudioError` if bad.

    ``scan=False`` checks the header only (no decode of the samples)."""
    info = audio_info(path)
    if info.frames == 0:
        raise AudioError(path, "empty audio (0 samples)")
    try:
        details = sf.info(str(path))
        extra = details.extra_info
        container = details.format
    except Exception:  # pragma: no cover - audio_info just read it
        extra, container = "", ""
    if why := _truncation(extra):
        raise AudioError(path, why)
    integer_pcm = info.subtype.startswith("PCM") and container in _PCM_CONTAINERS
    if scan and not integer_pcm:
        scan_audio(path, info.frames)
    return info


def scan_audio(path: str | os.PathLike, frames: int, block: int = _SCAN_BLOCK) -> None:
    """Decode all of ``path`` in blocks: :class:`AudioError` on a decoding error, a NaN/Inf sample (the
    first one's time is named) or fewer than ``frames`` frames."""
    done = 0
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                if not len(data):
                    break
                _check_finite(data, path, done, sr)
                done += len(data)
    except AudioError:
        raise
    except Exception as exc:  # libsndfile raises LibsndfileError, RuntimeError, ...
        raise AudioError(
            path, f"cannot be decoded after {done} of {frames} frames, truncated or corrupt ({_short(exc)})"
        ) from exc
    if done < frames:
        raise AudioError(path, f"truncated: {done} of the {frames} frames the header declares could be decoded")


def _check_finite(data: np.ndarray, path: str | os.PathLike, offset: int, sr: int) -> None:
    finite = np.isfinite(data)
    if not finite.all():
        first = int(np.argmin(finite.all(axis=1)))
        count = int(finite.size - np.count_nonzero(finite))
        at = (offset + first) / sr if sr else 0.0
        raise AudioError(path, f"non-finite samples (NaN/Inf): {count} in a block, the first at {at:.3f} s")


class BlockReader:
    """Frames ``[start, stop)`` of an open file, ``[len(channels), stop - start]`` float32, for ranges
    whose starts never decrease (overlapping ranges are served from a buffer; the file is only read
    forward). NaN/Inf samples raise :class:`AudioError` as soon as they are read.

    Use as a context manager; ``frames`` and ``sample_rate`` come from the file.
    """

    def __init__(self, path: str | os.PathLike, channels: Sequence[int]) -> None:
        self.path = Path(path)
        self.channels = list(channels)
        try:
            self._file = sf.SoundFile(str(self.path))
        except Exception as exc:
            raise AudioError(self.path, f"unreadable audio ({_short(exc)})") from exc
        self.frames = int(self._file.frames)
        self.sample_rate = int(self._file.samplerate)
        self._buf = np.zeros((len(self.channels), 0), dtype=np.float32)
        self._buf_start = 0  # frame index of _buf[:, 0]
        self._read_to = 0  # frames read from the file so far

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def read(self, start: int, stop: int) -> np.ndarray:
        if start < self._buf_start:
            raise ValueError(f"{self.path}: BlockReader reads forward only ({start} < {self._buf_start})")
        stop = min(stop, self.frames)
        if stop > self._read_to:
            want = stop - self._read_to
            try:
                data = self._file.read(want, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(self.path, f"unreadable at frame {self._read_to} ({_short(exc)})") from exc
            _check_finite(data, self.path, self._read_to, self.sample_rate)
            if len(data) < want:
                raise AudioError(
                    self.path, f"truncated: {self._read_to + len(data)} of the {self.frames} declared frames"
                )
            self._read_to += len(data)
            new = np.ascontiguousarray(data[:, self.channels].T)  # [C, want]
            self._buf = np.concatenate([self._buf, new], axis=1) if self._buf.shape[1] else new
        if start > self._buf_start:  # drop what no later read can ask for
            self._buf = self._buf[:, start - self._buf_start :]
            self._buf_start = start
        return self._buf[:, : stop - start]


@contextlib.contextmanager
def open_wav_writer(
    path: str | os.PathLike, sample_rate: int, channels: int = 1, subtype: str = "FLOAT"
) -> Iterator[sf.SoundFile]:
    """A WAV ``SoundFile`` open for writing at a temporary name beside ``path``; renamed to ``path`` when the
    block succeeds, removed when it fails (no partial output). Write ``[T, C]`` (or ``[T]``) blocks.

    Float WAVs get no PEAK chunk (it holds a timestamp): the same samples always give the same bytes.
    Integer subtypes should be given samples in [-1, 1] (libsndfile does not clip)."""
    with atomic_file(path) as tmp:
        with sf.SoundFile(str(tmp), "w", int(sample_rate), int(channels), subtype=subtype, format="WAV") as out:
            sf._snd.sf_command(out._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
            yield out


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return (msg[0] if msg else type(exc).__name__)[:200]
