"""eSpeak NG speech synthesis through ctypes, for the self-contained demo corpus.

eSpeak NG [1] is a compact formant synthesiser; the PyPI package ``espeakng-loader`` ships its
shared library and voice data, so no system install or download is needed. We call the C API
directly in synchronous mode: ``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ...)``, a synth
callback collecting int16 samples (22050 Hz), ``espeak_SetVoiceByName``, ``espeak_SetParameter``
(rate, pitch, pitch range) and ``espeak_Synth``.

Determinism. libespeak-ng keeps synthesis state in static variables (wave generator phases,
flutter index, ...) that neither ``espeak_ng_SetRandSeed`` nor ``espeak_Terminate`` resets, so
repeated synthesis of the same text in one process is *not* byte-identical. We therefore load a
private copy of the library afresh for every utterance (``dlopen`` -> synthesise -> ``dlclose``;
the copy is used by nobody else, so ``dlclose`` really unloads it and the next load starts from
pristine statics). That costs ~7 ms per utterance and makes :func:`synthesize` a pure function of
its arguments: same text, voice, parameters and seed -> the same samples, in any order, in any
process.

Thread safety: the library is process-global and not re-entrant; a module lock serialises use.

[1] eSpeak NG, https://github.com/espeak-ng/espeak-ng (GPL-3.0), the successor of J. Duddington's
    eSpeak formant synthesiser.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

__all__ = [
    "EspeakError",
    "ESPEAK_SAMPLE_RATE",
    "synthesize",
    "list_languages",
    "list_variants",
    "data_path",
]

#: Output rate of eSpeak NG's formant synthesiser.
ESPEAK_SAMPLE_RATE = 22050

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() when data is missing
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_EE_OK = 0

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_LOCK = threading.Lock()


class EspeakError(RuntimeError):
    """eSpeak NG could not be loaded or failed to synthesise (message names voice/parameter)."""


@functools.lru_cache(maxsize=1)
def data_path() -> Path:
    """The ``espeak-ng-data`` directory shipped by ``espeakng-loader``."""
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - dependency is in pyproject
        raise EspeakError("the PyPI package 'espeakng-loader' is required for the demo corpus") from exc
    return Path(espeakng_loader.get_data_path())


@functools.lru_cache(maxsize=1)
def _private_library() -> str:
    """Copy libespeak-ng to a private temp dir (removed at exit) so that dlclose really unloads it."""
    import espeakng_loader

    src = Path(espeakng_loader.get_library_path())
    if not src.is_file():
        raise EspeakError(f"libespeak-ng not found at {src} (reinstall espeakng-loader)")
    tmp = Path(tempfile.mkdtemp(prefix="se-espeak-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    dst = tmp / "libespeak-ng-private.so"
    shutil.copyfile(src, dst)
    return str(dst)


@functools.lru_cache(maxsize=1)
def list_variants() -> tuple[str, ...]:
    """Voice variants (``+f1``, ``+m3``, ...) available in the data directory."""
    vdir = data_path() / "voices" / "!v"
    return tuple(sorted(p.name for p in vdir.iterdir() if p.is_file()))


@functools.lru_cache(maxsize=1)
def list_languages() -> tuple[str, ...]:
    """Language voice identifiers (lower-case file names under ``lang/``), e.g. ``en-gb-x-rp``."""
    ldir = data_path() / "lang"
    return tuple(sorted({p.name.lower() for p in ldir.rglob("*") if p.is_file()}))


def _check_voice(voice: str) -> None:
    lang, _, variant = voice.partition("+")
    if lang.lower() not in list_languages():
        raise EspeakError(f"unknown eSpeak NG voice {lang!r} in {voice!r}")
    if variant and variant not in list_variants():
        raise EspeakError(f"unknown eSpeak NG voice variant {variant!r} in {voice!r}")


def synthesize(
    text: str,
    voice: str = "en",
    *,
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """Synthesise ``text`` and return float32 samples in [-1, 1] at :data:`ESPEAK_SAMPLE_RATE`.

    Args:
        text: UTF-8 text (plain, no SSML).
        voice: language voice, optionally with a variant: ``"en-gb-scotland"``, ``"en-us+f2"``.
        rate: speaking rate in words per minute (80..450).
        pitch: base pitch 0..100 (50 = voice default).
        pitch_range: intonation range 0..100 (0 = monotone).
        word_gap: extra pause between words in units of 10 ms.
        seed: seed of eSpeak's internal noise generator (breath/aspiration noise).

    Raises:
        EspeakError: unknown voice/variant, out-of-range parameter, or a library failure.
    """
    _check_voice(voice)
    for name, value, lo, hi in (
        ("rate", rate, 80, 450),
        ("pitch", pitch, 0, 100),
        ("pitch_range", pitch_range, 0, 100),
        ("word_gap", word_gap, 0, 100),
    ):
        if not lo <= int(value) <= hi:
            raise EspeakError(f"eSpeak parameter {name}={value} outside [{lo}, {hi}]")
    chunks: list[bytes] = []

    def _collect(wav, n, _events):  # int cb(short *wav, int numsamples, espeak_EVENT *events)
        if wav and n > 0:
            chunks.append(ctypes.string_at(wav, 2 * n))
        return 0  # continue synthesis

    callback = _CALLBACK(_collect)
    payload = text.encode("utf-8") + b"\0"
    with _LOCK:
        lib = ctypes.CDLL(_private_library(), mode=ctypes.RTLD_LOCAL)
        try:
            _declare(lib)
            sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path()).encode(), _INITIALIZE_DONT_EXIT)
            if sr != ESPEAK_SAMPLE_RATE:
                raise EspeakError(f"espeak_Initialize failed (returned {sr}) with data at {data_path()}")
            try:
                lib.espeak_SetSynthCallback(callback)
                if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                    raise EspeakError(f"espeak_SetVoiceByName({voice!r}) failed")
                for param, value in (
                    (_RATE, rate),
                    (_PITCH, pitch),
                    (_RANGE, pitch_range),
                    (_VOLUME, 100),
                    (_WORDGAP, word_gap),
                ):
                    if lib.espeak_SetParameter(param, int(value), 0) != _EE_OK:
                        raise EspeakError(f"espeak_SetParameter({param}, {value}) failed")
                lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
                status = lib.espeak_Synth(payload, len(payload), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                if status != _EE_OK:
                    raise EspeakError(f"espeak_Synth failed with status {status} for voice {voice!r}")
            finally:
                lib.espeak_Terminate()
        finally:
            _dlclose(lib)
    pcm = np.frombuffer(b"".join(chunks), dtype=np.int16)  # native-endian int16 from the C callback
    return pcm.astype(np.float32) / np.float32(32768.0)


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = ctypes.c_int


def _dlclose(lib: ctypes.CDLL) -> None:
    import _ctypes

    close = getattr(_ctypes, "dlclose", None)  # POSIX; FreeLibrary on Windows
    if close is None:  # pragma: no cover - Windows
        close = _ctypes.FreeLibrary
    close(lib._handle)
