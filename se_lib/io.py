"""Atomic outputs: write beside the destination under a hidden temporary name, then rename into place.

Readers (and Snakemake/DVC) therefore see a file or folder complete or not at all, and a failure
leaves any previous version untouched and no temporary behind. Temporaries are created with the
usual mode (``0o666`` / ``0o777`` minus the umask), unlike ``tempfile.mkstemp``/``mkdtemp``,
whose private ``0600``/``0700`` would otherwise end up on shared outputs.

* :func:`atomic_file` - a temporary file path that replaces ``path`` when the block succeeds.
* :func:`atomic_dir` - the same for a whole folder (the old folder is swapped out, then removed).
* :func:`write_text_atomic`, :func:`copy_file_atomic` - the two common cases of :func:`atomic_file`.
* :func:`read_json_object` - the reading side of the small JSON records the rules pass along.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_dir",
    "atomic_file",
    "copy_file_atomic",
    "read_json_object",
    "write_json_atomic",
    "write_text_atomic",
]


def _temp_name(dest: Path, kind: str) -> Path:
    return dest.parent / f".{dest.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary file beside ``path``; on success it replaces ``path``, on error it is removed.

    Parent folders are created. The temporary file already exists (mode ``0o666`` minus the
    umask); the block may write it by name or reopen it.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(dest, "tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # umask applies
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out_dir``; on success it replaces ``out_dir``.

    On error the temporary folder is removed and ``out_dir`` is left as it was. The previous
    ``out_dir`` (folder, file or link) is renamed aside first and removed only once the new one is
    in place; if the final rename fails it is put back.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(out, "tmp")
    tmp.mkdir(mode=0o777)  # umask applies
    try:
        yield tmp
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists() or out.is_symlink():
        old = _temp_name(out, "old")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        if old.is_symlink() or old.is_file():
            old.unlink()
        else:
            shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_json_atomic(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented JSON (one trailing newline) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def copy_file_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the contents of ``src`` to ``dst`` atomically (the copy gets the usual mode, not ``src``'s)."""
    with atomic_file(dst) as tmp:
        shutil.copyfile(src, tmp)


def read_json_object(path: str | os.PathLike, what: str = "JSON record", hint: str = "") -> dict[str, Any]:
    """The JSON object stored in ``path``; errors name the file and ``what`` it should hold.

    Raises ``FileNotFoundError`` (with ``hint``, e.g. which rule writes it) or ``ValueError`` for
    invalid JSON or a value that is not an object.
    """
    p = Path(path)
    try:
        value = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {p} not found" + (f" ({hint})" if hint else "")) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: {what} is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{p}: {what} must be a JSON object, got {type(value).__name__}")
    return value
