"""Public-corpus recipes (``config/corpora/<corpus>.yaml``) and the downloader behind ``make corpus``.

A recipe says, with the publisher's page for every fact, where a published corpus comes from and what a
complete copy holds::

    corpus: voicebank_demand     # = the file's stem; the adapter module se_lib/data/corpora/<corpus>.py
    title: "..."
    publisher: https://...       # the page the URLs, checksums and licence were read from
    citation: "..."
    licence: "CC BY 4.0"
    requires: null               # or text: what must be obtained by hand (e.g. a licensed LDC corpus)
    sample_rate: 48000
    archives:                    # [] when nothing can be downloaded (then only ROOT is verified)
      - file: clean_testset_wav.zip
        url: https://...
        md5: null                # and/or sha256: the publisher's checksum; null when none is published
        size: null               # bytes, when published
        unpacks_to: clean_testset_wav   # the folder (relative to ROOT) the archive creates
    counts:                      # expected items per folder (relative to ROOT, or to counts_in)
      clean_testset_wav: 824
    counts_in: null              # optional: the folder (relative to ROOT) the counts keys are in
    count_unit: files            # optional: files (default) or utterances (counted by the adapter only)
    folders: []                  # optional: further folders (relative to ROOT) a complete copy has
    source: ...                  # optional, also per archive: where a fact was read (ignored here)

:func:`load_recipe` validates one (a :class:`RecipeError` names the file and the key) and returns a
:class:`Recipe`.

Download (:func:`fetch_archive`), per archive, under ``ROOT/.download/`` (one run per ROOT at a time: a lock
file):

1. ``<file>.done`` (it holds the checksum) and the ``unpacks_to`` folder present: skipped.
2. ``<file>`` present (kept from an earlier run, or put there by hand): verified, then unpacked.
3. Otherwise downloaded with urllib to ``<file>.part`` (tqdm bar). A part left by an interrupted run is
   resumed with an HTTP ``Range`` request; a server that answers 200 instead of 206 sends the whole file,
   and the part restarts from byte 0. A dropped connection keeps the part (``retries`` more tries in this
   run, then the next run resumes). An HTML page where an archive was expected is an error, not an archive.
4. Size and checksum (md5 and/or sha256, as the recipe gives) are checked; a mismatch removes the file and
   names archive, expected and got. Without a published checksum the sha256 is printed so it can be pinned.
5. The file is renamed into place (atomic), unpacked into a scratch folder inside ROOT -- every member
   checked first: no absolute path, no ``..``, for tar no link leaving the archive and no device -- and the
   ``unpacks_to`` folder is renamed into ROOT (replacing a previous one whole). ``<file>.done`` is written
   last, so an interrupted unpack is redone; the archive is then deleted unless ``keep_archives``.

Verify (:func:`verify_root`, after every download and alone with ``--verify-only``): each archive's
``unpacks_to`` folder and each of ``folders`` exists, and -- when ``count_unit`` is ``files`` -- each
``counts`` key is a folder (under ``counts_in``) holding that many ``*.wav`` files, or, when it holds none
itself, each of its subfolders with ``*.wav`` files holds that many (DNS: ``synthetic/no_reverb`` =
``clean/`` + ``noisy/``, 150 each). Utterance counts (CHiME-4: several channel files per utterance) are the
adapter's to check.

A recipe with ``archives: []`` or ``requires:`` set downloads nothing: its licence and requirement are
printed and ROOT is verified.

CLI (``make corpus CORPUS=voicebank_demand ROOT=/data/vbd [VERIFY=1]``)::

    python -m se_lib.data.corpora.download --recipe config/corpora/voicebank_demand.yaml --root /data/vbd \\
        [--verify-only] [--only clean_testset_wav.zip ...] [--keep-archives] [--retries 3]

Exit status: 0 complete and verified, 1 download/checksum/unpack/verification error (the message names the
archive or folder), 2 invalid recipe or arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import http.client
import os
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from se_lib.io import atomic_dir, write_text_atomic

__all__ = [
    "Archive",
    "ChecksumError",
    "DownloadError",
    "Recipe",
    "RecipeError",
    "UnpackError",
    "VerifyError",
    "fetch_archive",
    "fetch_corpus",
    "load_recipe",
    "main",
    "verify_root",
]

RECIPES_DIR = Path(__file__).resolve().parents[3] / "config" / "corpora"
DOWNLOAD_DIR = ".download"  # under ROOT: parts, finished archives, .done marks, the lock
CHUNK = 1 << 20
COUNT_UNITS = ("files", "utterances")
ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
HASH_LENGTHS = {"md5": 32, "sha256": 64}

_TOP_KEYS = {
    "corpus": True,
    "title": True,
    "publisher": True,
    "citation": True,
    "licence": True,
    "requires": True,
    "sample_rate": True,
    "archives": True,
    "counts": True,
    "count_unit": False,
    "counts_in": False,
    "folders": False,
    "source": False,
}
_ARCHIVE_KEYS = {
    "file": True,
    "url": True,
    "md5": False,
    "sha256": False,
    "size": False,
    "unpacks_to": True,
    "source": False,
}
_CORPUS_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Log = Callable[[str], Any]


class RecipeError(ValueError):
    """An invalid corpus recipe; the message names the file and the key."""


class DownloadError(RuntimeError):
    """An archive could not be downloaded (HTTP error, interrupted, a web page instead of the archive...)."""


class ChecksumError(DownloadError):
    """A downloaded archive's size or checksum is not the recipe's; the file has been removed."""


class UnpackError(RuntimeError):
    """An archive cannot be unpacked safely (a member outside ROOT, a link, ...) or lacks ``unpacks_to``."""


class VerifyError(RuntimeError):
    """ROOT is not a complete copy of the corpus; the message lists every missing folder and wrong count."""


@dataclass(frozen=True)
class Archive:
    """One downloadable archive of a recipe."""

    file: str
    url: str
    unpacks_to: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None

    @property
    def checksums(self) -> dict[str, str]:
        """The published checksums, ``{algorithm: hex}`` (empty when none is published)."""
        return {algo: value for algo, value in (("md5", self.md5), ("sha256", self.sha256)) if value}


@dataclass(frozen=True)
class Recipe:
    """A validated corpus recipe (:func:`load_recipe`)."""

    path: Path
    corpus: str
    title: str
    publisher: str
    citation: str
    licence: str
    requires: str | None
    sample_rate: int
    archives: tuple[Archive, ...]
    counts: dict[str, int]
    count_unit: str = "files"
    counts_in: str | None = None
    folders: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=(), repr=False)

    @property
    def downloadable(self) -> bool:
        """Whether ``make corpus`` downloads anything (archives listed and nothing to obtain by hand)."""
        return bool(self.archives) and not self.requires


# --------------------------------------------------------------------------------------------- recipes ----


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and validate the recipe at ``path``.

    Raises:
        RecipeError: missing file, invalid YAML, a missing, unknown or invalid key (the message names the
            file and the key, e.g. ``archives[1].md5``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(sorted(f.stem for f in RECIPES_DIR.glob("*.yaml"))) or "none"
        raise RecipeError(f"recipe {p} not found (recipes in {RECIPES_DIR}: {known})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{p}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{p}: a recipe must be a YAML mapping, got {type(data).__name__}")
    _check_keys(p, data, _TOP_KEYS, "")

    corpus = _text(p, data, "corpus")
    if not _CORPUS_NAME.match(corpus):
        raise RecipeError(f"{p}: corpus: must match {_CORPUS_NAME.pattern} (a module name), got {corpus!r}")
    if corpus != p.stem:
        raise RecipeError(f"{p}: corpus: {corpus!r} differs from the file name {p.stem!r}.yaml")
    publisher = _text(p, data, "publisher")
    if not publisher.startswith(("https://", "http://")):
        raise RecipeError(f"{p}: publisher: must be the publisher's page (an http(s) URL), got {publisher!r}")
    requires = data["requires"]
    if requires is not None and (not isinstance(requires, str) or not requires.strip()):
        raise RecipeError(f"{p}: requires: must be null or a non-empty text, got {requires!r}")
    sample_rate = data["sample_rate"]
    if not _is_int(sample_rate) or sample_rate <= 0:
        raise RecipeError(f"{p}: sample_rate: must be a positive integer (Hz), got {sample_rate!r}")

    archives_raw = data["archives"]
    if not isinstance(archives_raw, list):
        raise RecipeError(f"{p}: archives: must be a list ([] when nothing can be downloaded)")
    archives = tuple(_archive(p, i, a) for i, a in enumerate(archives_raw))
    names = [a.file for a in archives]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RecipeError(f"{p}: archives: {', '.join(twice)} listed more than once")

    counts_raw = data["counts"]
    if not isinstance(counts_raw, dict):
        raise RecipeError(f"{p}: counts: must be a mapping folder -> number")
    counts: dict[str, int] = {}
    for key, value in counts_raw.items():
        where = f"counts.{key}"
        _rel_path(p, where, key)
        if not _is_int(value) or value < 0:
            raise RecipeError(f"{p}: {where}: must be a non-negative integer, got {value!r}")
        counts[str(key)] = int(value)

    count_unit = data.get("count_unit", "files")
    if count_unit not in COUNT_UNITS:
        raise RecipeError(f"{p}: count_unit: must be one of {COUNT_UNITS}, got {count_unit!r}")
    counts_in = data.get("counts_in")
    if counts_in is not None:
        counts_in = _rel_path(p, "counts_in", counts_in)
    folders_raw = data.get("folders") or []
    if not isinstance(folders_raw, list):
        raise RecipeError(f"{p}: folders: must be a list of folders relative to ROOT")
    folders = tuple(_rel_path(p, f"folders[{i}]", f) for i, f in enumerate(folders_raw))

    return Recipe(
        path=p,
        corpus=corpus,
        title=_text(p, data, "title"),
        publisher=publisher,
        citation=_text(p, data, "citation"),
        licence=_text(p, data, "licence"),
        requires=requires.strip() if requires else None,
        sample_rate=int(sample_rate),
        archives=archives,
        counts=counts,
        count_unit=count_unit,
        counts_in=counts_in,
        folders=folders,
        sources=tuple(_sources(data.get("source"))),
    )


def _check_keys(path: Path, data: Mapping, spec: Mapping[str, bool], prefix: str) -> None:
    for key in data:
        if key not in spec:
            allowed = ", ".join(spec)
            raise RecipeError(f"{path}: {prefix}{key}: unknown key (allowed: {allowed})")
    for key, required in spec.items():
        if required and key not in data:
            raise RecipeError(f"{path}: {prefix}{key}: missing key")


def _text(path: Path, data: Mapping, key: str, prefix: str = "") -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise RecipeError(f"{path}: {prefix}{key}: must be a non-empty text, got {value!r}")
    return value.strip()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rel_path(path: Path, where: str, value: Any) -> str:
    """``value`` as a folder relative to ROOT (posix, no ``..``, not absolute, not ROOT itself)."""
    if not isinstance(value, str) or not value.strip():
        raise RecipeError(f"{path}: {where}: must be a folder relative to ROOT, got {value!r}")
    rel = PurePosixPath(value.strip())
    if rel.is_absolute() or ".." in rel.parts or str(rel) == "." or "\\" in value:
        raise RecipeError(f"{path}: {where}: must be a folder inside ROOT (relative, no '..'), got {value!r}")
    return str(rel)


def _archive(path: Path, index: int, raw: Any) -> Archive:
    prefix = f"archives[{index}]."
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: archives[{index}]: must be a mapping (file, url, md5/sha256, size, unpacks_to)")
    _check_keys(path, raw, _ARCHIVE_KEYS, prefix)
    name = _text(path, raw, "file", prefix)
    if "/" in name or "\\" in name or name.startswith("."):
        raise RecipeError(f"{path}: {prefix}file: must be a plain file name, got {name!r}")
    if not name.lower().endswith(ZIP_SUFFIXES + TAR_SUFFIXES):
        kinds = ", ".join(ZIP_SUFFIXES + TAR_SUFFIXES)
        raise RecipeError(f"{path}: {prefix}file: {name!r} is not an archive this downloader unpacks ({kinds})")
    url = _text(path, raw, "url", prefix)
    if not url.startswith(("https://", "http://")):
        raise RecipeError(f"{path}: {prefix}url: must be an http(s) URL, got {url!r}")
    sums: dict[str, str | None] = {}
    for algo, length in HASH_LENGTHS.items():
        value = raw.get(algo)
        if value is not None and (not isinstance(value, str) or not re.fullmatch(f"[0-9a-fA-F]{{{length}}}", value)):
            raise RecipeError(f"{path}: {prefix}{algo}: must be {length} hex digits or null, got {value!r}")
        sums[algo] = value.lower() if value else None
    size = raw.get("size")
    if size is not None and (not _is_int(size) or size <= 0):
        raise RecipeError(f"{path}: {prefix}size: must be a positive number of bytes or null, got {size!r}")
    return Archive(
        file=name,
        url=url,
        unpacks_to=_rel_path(path, f"{prefix}unpacks_to", raw["unpacks_to"]),
        md5=sums["md5"],
        sha256=sums["sha256"],
        size=size,
    )


def _sources(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (str(v) for v in value)


# -------------------------------------------------------------------------------------------- download ----


@contextlib.contextmanager
def root_lock(root: Path) -> Iterator[None]:
    """Hold ``ROOT/.download/lock`` for one run: a second run on the same ROOT fails at once instead of writing
    the same parts."""
    lock_dir = root / DOWNLOAD_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(f"another download is running in {root} (lock {lock_dir / 'lock'})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_archive(
    archive: Archive,
    root: str | os.PathLike,
    *,
    log: Log = print,
    progress: bool = True,
    retries: int = 3,
    retry_wait: float = 5.0,
    timeout: float = 60.0,
    keep_archive: bool = False,
) -> str:
    """Download, check and unpack one archive into ``root`` (see the module docstring for the protocol).

    Returns ``"skipped"`` (already done) or ``"unpacked"``.

    Raises:
        DownloadError: HTTP error, interrupted after ``retries`` more tries (the part is kept for the next run),
            an HTML page instead of the archive.
        ChecksumError: size or checksum differs from the recipe (the file is removed).
        UnpackError: a member would land outside ROOT, or ``unpacks_to`` is not in the archive.
    """
    root = Path(root)
    dl_dir = root / DOWNLOAD_DIR
    dl_dir.mkdir(parents=True, exist_ok=True)
    done = dl_dir / f"{archive.file}.done"
    target = root / archive.unpacks_to
    expected = archive.checksums
    if done.is_file() and target.is_dir():
        recorded = _read_stamp(done)
        if all(recorded.get(algo) == value for algo, value in expected.items()):
            log(f"{archive.file}: done before ({done.name}: {_format_stamp(recorded)}), skipped")
            return "skipped"
        log(f"{archive.file}: {done} records {_format_stamp(recorded)}, the recipe {_format_stamp(expected)}: again")
    elif done.is_file():
        log(f"{archive.file}: {archive.unpacks_to}/ is gone from {root}: downloading again")
    done.unlink(missing_ok=True)

    final = dl_dir / archive.file
    if final.is_file():
        log(f"{archive.file}: found in {dl_dir}, checking it")
        digests = _hash_file(final, _algorithms(archive))
        _check_file(final, archive, digests, final.stat().st_size)
    else:
        digests = _download(archive, dl_dir, log, progress, retries, retry_wait, timeout)
    if not expected:
        log(
            f"{archive.file}: sha256 {digests['sha256']} (the recipe gives no checksum: pin it as "
            f"`sha256: {digests['sha256']}`)"
        )
    _unpack(final, archive, root, log)
    write_text_atomic(done, "".join(f"{algo} {value}\n" for algo, value in sorted(digests.items())))
    if not keep_archive:
        final.unlink()
    log(f"{archive.file}: unpacked to {target}")
    return "unpacked"


def _algorithms(archive: Archive) -> tuple[str, ...]:
    return tuple(archive.checksums) or ("sha256",)


def _read_stamp(done: Path) -> dict[str, str]:
    out = {}
    for line in done.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def _format_stamp(sums: Mapping[str, str]) -> str:
    return ", ".join(f"{algo} {value}" for algo, value in sorted(sums.items())) or "no checksum"


def _hash_file(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    hashers = {algo: hashlib.new(algo) for algo in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {algo: h.hexdigest() for algo, h in hashers.items()}


def _check_file(path: Path, archive: Archive, digests: Mapping[str, str], size: int) -> None:
    """Size and checksums against the recipe; on a mismatch ``path`` is removed and :class:`ChecksumError`
    names the archive, what was expected and what was got."""
    problems = []
    if archive.size is not None and size != archive.size:
        problems.append(f"size: expected {archive.size} bytes, got {size}")
    for algo, value in archive.checksums.items():
        if digests[algo] != value:
            problems.append(f"{algo}: expected {value}, got {digests[algo]}")
    if problems:
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{archive.file}: {'; '.join(problems)} (from {archive.url}); the file was removed. Rerun to download "
            "it again; if the publisher changed the file, check its page and update the recipe."
        )


class _Interrupted(Exception):
    """The transfer stopped before the end (the part is kept)."""


def _download(
    archive: Archive, dl_dir: Path, log: Log, progress: bool, retries: int, retry_wait: float, timeout: float
) -> dict[str, str]:
    """Download ``archive`` to ``dl_dir/<file>`` through ``<file>.part``; returns its checksums (checked)."""
    part = dl_dir / f"{archive.file}.part"
    retries = max(0, retries)
    for attempt in range(retries + 1):
        try:
            digests, size = _transfer(archive, part, log, progress, timeout)
            break
        except _Interrupted as exc:
            have = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                raise DownloadError(
                    f"{archive.file}: download interrupted after {have} bytes ({exc}); the part is kept in {part}: "
                    "rerun to resume"
                ) from None
            log(f"{archive.file}: interrupted after {have} bytes ({exc}); resuming in {retry_wait:g} s")
            time.sleep(retry_wait)
    _check_file(part, archive, digests, size)
    os.replace(part, dl_dir / archive.file)
    return digests


def _transfer(archive: Archive, part: Path, log: Log, progress: bool, timeout: float) -> tuple[dict[str, str], int]:
    """One HTTP request: resume ``part`` (Range) or start it; returns the checksums and size of the whole file."""
    algorithms = _algorithms(archive)
    start = part.stat().st_size if part.exists() else 0
    if archive.size is not None and start > archive.size:
        log(f"{archive.file}: the part is larger than the published size: starting again")
        part.unlink()
        start = 0
    if start and start == archive.size:  # complete already (the run stopped before the rename)
        return _hash_file(part, algorithms), start
    headers = {"User-Agent": "se-workflow corpus downloader (urllib)", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(archive.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing after byte `start`: the part is complete, or not this file
            m = re.match(r"\s*bytes\s+\*/(\d+)", exc.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == start:
                log(f"{archive.file}: the part is complete ({start} bytes)")
                return _hash_file(part, algorithms), start
            log(f"{archive.file}: the server cannot resume at byte {start} (HTTP 416): starting again")
            part.unlink()
            return _transfer(archive, part, log, progress, timeout)
        if exc.code >= 500 or exc.code == 429:  # the server is busy or failing: worth another try
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{archive.file}: HTTP {exc.code} {exc.reason} from {archive.url}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _Interrupted(f"cannot connect: {getattr(exc, 'reason', exc)}") from None
    with response:
        kind = response.headers.get("Content-Type", "")
        if kind.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
            raise DownloadError(
                f"{archive.file}: {archive.url} answered with a web page ({kind}), not the archive; the publisher "
                f"may ask for a browser or a login: download it by hand into {part.parent}/{archive.file} and rerun"
            )
        if response.status == 206 and _range_start(response) != start:  # not the rest we asked for
            log(f"{archive.file}: the server sent another byte range than asked: starting again")
            part.unlink(missing_ok=True)
            if not start:
                raise DownloadError(f"{archive.file}: {archive.url} sent a partial file (HTTP 206) unasked")
            return _transfer(archive, part, log, progress, timeout)
        hashers = {algo: hashlib.new(algo) for algo in algorithms}
        if start and response.status == 206:
            with open(part, "rb") as f:  # the checksum covers the part already there
                while chunk := f.read(CHUNK):
                    for h in hashers.values():
                        h.update(chunk)
            mode, have = "ab", start
            log(f"{archive.file}: resuming at byte {start}")
        else:
            if start:
                log(
                    f"{archive.file}: the server sent the whole file (HTTP {response.status}), not the rest: restarting"
                )
            mode, have = "wb", 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else archive.size
        from tqdm import tqdm  # the CLI's dependency only: load_recipe stays light

        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=archive.file,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (http.client.HTTPException, OSError) as exc:
                    raise _Interrupted(type(exc).__name__) from None
                if not chunk:
                    break
                out.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                have += len(chunk)
                bar.update(len(chunk))
    if total is not None and have < total:
        raise _Interrupted(f"connection closed at byte {have} of {total}")
    return {algo: h.hexdigest() for algo, h in hashers.items()}, have


def _range_start(response: http.client.HTTPResponse) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-", response.headers.get("Content-Range", ""))
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------- unpack ----


def _unpack(path: Path, archive: Archive, root: Path, log: Log) -> None:
    """Unpack ``path`` into a scratch folder inside ROOT (after checking every member), then rename its
    ``unpacks_to`` folder into ROOT; nothing else of ROOT is touched, and a failure leaves no scratch."""
    scratch = root / DOWNLOAD_DIR / f".unpack-{archive.file}-{uuid.uuid4().hex[:12]}"
    scratch.mkdir()
    try:
        if archive.file.lower().endswith(ZIP_SUFFIXES):
            _extract_zip(path, archive.file, scratch)
        else:
            _extract_tar(path, archive.file, scratch)
        src = scratch / archive.unpacks_to
        if not src.is_dir():
            top = sorted(p.name for p in scratch.iterdir())
            raise UnpackError(
                f"{archive.file}: the archive does not create {archive.unpacks_to}/ (its top level: "
                f"{', '.join(top) or 'nothing'}); fix unpacks_to in the recipe"
            )
        first = PurePosixPath(archive.unpacks_to).parts[0]
        ignored = sorted(p.name for p in scratch.iterdir() if p.name != first)
        if ignored:
            log(f"{archive.file}: left out what lies beside {archive.unpacks_to}/: {', '.join(ignored)}")
        with atomic_dir(root / archive.unpacks_to) as staged:
            os.replace(src, staged)  # a folder onto the empty staged folder; atomic_dir swaps it into place
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _member_problem(name: str) -> str | None:
    """Why archive member ``name`` may not be unpacked (``None``: it lands inside the unpack folder)."""
    posix = name.replace("\\", "/")
    rel = PurePosixPath(posix)
    if rel.is_absolute() or re.match(r"^[A-Za-z]:", posix):
        return "has an absolute path"
    if ".." in rel.parts:
        return "climbs out with '..'"
    return None


def _extract_zip(path: Path, label: str, dest: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            for info in members:  # every member first: nothing is written from an unsafe archive
                why = _member_problem(info.filename)
                if why:
                    raise UnpackError(f"{label}: member {info.filename!r} {why}: it would land outside ROOT; refused")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise UnpackError(f"{label}: not a valid zip archive ({exc})") from exc


def _extract_tar(path: Path, label: str, dest: Path) -> None:
    try:
        with tarfile.open(path, "r:*") as tf:
            members = tf.getmembers()
            for m in members:  # every member first: nothing is written from an unsafe archive
                why = _member_problem(m.name) or _tar_link_problem(m)
                if why:
                    raise UnpackError(f"{label}: member {m.name!r} {why}: it would land outside ROOT; refused")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the standard library checks again
                tf.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - older 3.11
                tf.extractall(dest, members=members)
    except tarfile.FilterError as exc:
        raise UnpackError(f"{label}: unsafe member refused ({exc})") from exc
    except tarfile.TarError as exc:
        raise UnpackError(f"{label}: not a valid tar archive ({exc})") from exc


def _tar_link_problem(m: tarfile.TarInfo) -> str | None:
    """Why tar member ``m`` may not be unpacked besides its name: a link leaving the archive, a device."""
    if m.issym() or m.islnk():
        # a symlink's target is relative to its folder, a hard link's to the archive's top
        target = (PurePosixPath(m.name).parent if m.issym() else PurePosixPath()) / m.linkname
        if _member_problem(m.linkname) or _escapes(target):
            return f"links to {m.linkname!r}, outside the archive"
        return None
    if not (m.isfile() or m.isdir()):
        return "is a device or special file"
    return None


def _escapes(rel: PurePosixPath) -> bool:
    """Whether a relative path climbs above its start once ``..`` are resolved."""
    depth = 0
    for part in rel.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


# ---------------------------------------------------------------------------------------------- verify ----


def verify_root(
    recipe: Recipe, root: str | os.PathLike, *, only: Sequence[str] | None = None, log: Log = print
) -> list[str]:
    """Check that ``root`` holds the corpus; returns the problems (empty: complete), logs what was found.

    With ``only`` (archive file names), just those archives' folders and the counts under them are checked.
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: corpus root missing (not a folder)"]
    archives = [a for a in recipe.archives if only is None or a.file in only]
    problems = []
    for a in archives:
        if not (root / a.unpacks_to).is_dir():
            problems.append(f"{root / a.unpacks_to}: folder missing (archive {a.file} creates it)")
    for folder in recipe.folders if only is None else ():
        if not (root / folder).is_dir():
            problems.append(f"{root / folder}: folder missing")
    base = root / recipe.counts_in if recipe.counts_in else root
    rel = {k: f"{recipe.counts_in}/{k}" if recipe.counts_in else k for k in recipe.counts}  # relative to ROOT
    keys = [k for k in recipe.counts if only is None or any(_under(rel[k], a.unpacks_to) for a in archives)]
    if recipe.count_unit != "files":
        if keys:
            log(f"counts are {recipe.count_unit} ({', '.join(keys)}): the {recipe.corpus} adapter checks them")
        return problems
    for key in keys:
        want, folder = recipe.counts[key], base / key
        if not folder.is_dir():
            if not any(p.startswith(f"{folder}:") for p in problems):
                problems.append(f"{folder}: folder missing (the recipe expects {want} .wav files)")
            continue
        direct, subfolders = _count_wavs(folder)
        if direct or not subfolders:
            if direct != want:
                problems.append(f"{folder}: {direct} .wav files, the recipe expects {want}")
            else:
                log(f"{key}: {direct} .wav files")
            continue
        for sub, n in sorted(subfolders.items()):
            if n != want:
                problems.append(f"{folder / sub}: {n} .wav files, the recipe expects {want} (in each subfolder)")
        if all(n == want for n in subfolders.values()):
            log(f"{key}: {want} .wav files in each of {', '.join(sorted(subfolders))}")
    return problems


def _under(key: str, folder: str) -> bool:
    return key == folder or key.startswith(folder.rstrip("/") + "/")


def _count_wavs(folder: Path) -> tuple[int, dict[str, int]]:
    """``*.wav`` files directly in ``folder``, and per immediate subfolder that holds any."""
    direct, subfolders = 0, {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file() and entry.name.lower().endswith(".wav"):
                direct += 1
            elif entry.is_dir():
                with os.scandir(entry.path) as inner:
                    n = sum(1 for e in inner if e.is_file() and e.name.lower().endswith(".wav"))
                if n:
                    subfolders[entry.name] = n
    return direct, subfolders


# --------------------------------------------------------------------------------------------- corpus ----


def fetch_corpus(
    recipe: Recipe,
    root: str | os.PathLike,
    *,
    only: Sequence[str] | None = None,
    verify_only: bool = False,
    log: Log = print,
    **fetch_options: Any,
) -> None:
    """Download what ``recipe`` lists into ``root`` (unless ``verify_only`` or nothing is downloadable), then
    verify ``root``.

    ``only``: archive file names to fetch and verify (default all). ``fetch_options`` go to
    :func:`fetch_archive` (``progress``, ``retries``, ``retry_wait``, ``timeout``, ``keep_archive``).

    Raises:
        RecipeError: ``only`` names an archive the recipe does not list.
        DownloadError, ChecksumError, UnpackError: see :func:`fetch_archive` (archives before it are kept).
        VerifyError: ``root`` is incomplete (every problem listed).
    """
    root = Path(root)
    if only is not None:
        unknown = sorted(set(only) - {a.file for a in recipe.archives})
        if unknown:
            listed = ", ".join(a.file for a in recipe.archives) or "none"
            raise RecipeError(f"{recipe.path}: archives: no archive {', '.join(unknown)} (listed: {listed})")
    log(f"{recipe.title}\n  publisher: {recipe.publisher}\n  licence: {recipe.licence}\n  cite: {recipe.citation}")
    if verify_only:
        log(f"verifying {root} (--verify-only)")
    elif not recipe.downloadable:
        log(f"nothing to download: {recipe.requires or 'the recipe lists no archive'}")
        log(f"verifying {root}")
    else:
        root.mkdir(parents=True, exist_ok=True)
        with root_lock(root):
            for archive in recipe.archives:
                if only is None or archive.file in only:
                    fetch_archive(archive, root, log=log, **fetch_options)
    problems = verify_root(recipe, root, only=only, log=log)
    if problems:
        hint = f" (obtained by hand: see `requires` in {recipe.path})" if recipe.requires else ""
        raise VerifyError(f"{root} is not a complete {recipe.corpus} corpus{hint}:\n  " + "\n  ".join(problems))
    log(f"{root}: {recipe.corpus} complete")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: fetch and/or verify one corpus; returns the exit status (0 ok, 1 error, 2 bad recipe)."""
    ap = argparse.ArgumentParser(
        prog="python -m se_lib.data.corpora.download",
        description="Download, check and unpack a public corpus from its recipe (config/corpora/*.yaml), "
        "then verify ROOT.",
    )
    ap.add_argument("--recipe", required=True, help="recipe file, e.g. config/corpora/voicebank_demand.yaml")
    ap.add_argument("--root", required=True, help="corpus root: archives are unpacked here")
    ap.add_argument("--verify-only", action="store_true", help="download nothing, only check ROOT")
    ap.add_argument("--only", action="append", metavar="FILE", help="fetch/verify only this archive (repeatable)")
    ap.add_argument("--keep-archives", action="store_true", help="keep the archives in ROOT/.download")
    ap.add_argument("--retries", type=int, default=3, help="resume attempts per archive in this run (default 3)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds without data before giving up (60)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe)
        fetch_corpus(
            recipe,
            Path(args.root).expanduser(),
            only=args.only,
            verify_only=args.verify_only,
            progress=not args.no_progress and sys.stderr.isatty(),
            retries=max(0, args.retries),
            timeout=args.timeout,
            keep_archive=args.keep_archives,
        )
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DownloadError, UnpackError, VerifyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
