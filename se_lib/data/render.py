"""Render one mixture row into noisy / target / noise signals (deterministic, cached).

Signal model for a row (all lengths in samples, ``T = row.length``, RIR length ``L``):

* speech ``s``: ``speech[speech_offset : speech_offset + T - speech_start]`` placed at
  ``speech_start`` of a zero signal of length ``T`` (zero-padded when the utterance is short);
* noises ``v_k`` (k = 1, 2): the noise file looped (modulo its length) from ``noise{k}_offset``.
  ``L - 1`` samples *before* the offset are prepended (looped too) so the reverberant noise field is
  fully developed at ``t = 0`` instead of fading in;
* images ``x_k[c] = (src_k * h_k[c])[t]`` (linear convolution with the room RIR of source k at mic c,
  ``h`` from ``rirs/<rid>.npz``), truncated to ``T``; target ``d = s * target_rir`` (the target
  definition of the room at the reference mic ``r``, see :mod:`se_lib.data.rooms`);
* noise ``n = g (x_1 + 10^(noise2_rel_db / 20) x_2)`` with ``g`` chosen so that

      SNR = 10 log10( sum_t d[t]^2 / sum_t n_r[t]^2 ) = snr_db

  i.e. the SNR is the energy ratio, over the whole mixture length ``T``, of the **target** signal
  and the sum of both noise images at the **reference mic**;
* ``noisy = x_0 + n`` (all ``C`` mics). If ``max(|noisy|, |target|) > 0.99`` all three outputs are
  multiplied by ``scale = 0.99 / peak`` (``scale = 1`` otherwise), which leaves the SNR unchanged.

Convolutions are done with real FFTs (scipy.fft, float32) of a common size; the spectra of each
room's RIRs are cached per size with an LRU, and so is decoded audio (per process, i.e. per
DataLoader worker). ``bench/bench_render.py`` compares the speed with a plain
``torchaudio.functional.fftconvolve`` implementation of the same model.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft as sfft
import torch

from se_lib.data.audio import AudioError, read_audio, resample_audio

__all__ = ["PEAK_LIMIT", "RENDER_FIELDS", "AudioError", "Rendered", "Renderer"]

PEAK_LIMIT = 0.99
RENDER_FIELDS = (
    "speech_path",
    "noise1_path",
    "noise2_path",
    "rir_path",
    "speech_offset",
    "speech_start",
    "noise1_offset",
    "noise2_offset",
    "length",
    "noise2_rel_db",
    "snr_db",
)


@dataclass
class Rendered:
    """One rendered mixture (float32 tensors)."""

    noisy: torch.Tensor  # [C, T]
    target: torch.Tensor  # [T], reference mic
    noise: torch.Tensor  # [C, T]
    scale: float  # anti-clipping factor applied to all three (1.0 if none)
    snr_db: float  # achieved SNR at the reference mic (target vs noise)


def _get(row: Any, key: str) -> Any:
    if isinstance(row, Mapping):
        try:
            return row[key]
        except KeyError:
            raise KeyError(f"mixture row {row.get('mid', '?')} lacks {key!r}") from None
    return getattr(row, key)


class _LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = max(1, int(size))

    def get_or(self, key: Any, make) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        while len(self) > self.size:
            self.popitem(last=False)
        return value


class Renderer:
    """Renders mixture rows (see the module docstring); caches audio and RIR spectra per process.

    ``corpus_root``: directory that the relative paths in the DB are relative to (the repo root).
    """

    def __init__(self, corpus_root: str | os.PathLike = ".", audio_cache: int = 256, rir_cache: int = 32) -> None:
        self.corpus_root = Path(corpus_root)
        self._audio = _LRU(audio_cache)
        self._rirs = _LRU(rir_cache)
        self._spectra = _LRU(rir_cache)

    def __getstate__(self) -> dict:  # ship to DataLoader workers without caches
        state = self.__dict__.copy()
        state["_audio"] = _LRU(self._audio.size)
        state["_rirs"] = _LRU(self._rirs.size)
        state["_spectra"] = _LRU(self._spectra.size)
        return state

    def _path(self, p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else self.corpus_root / path

    def mono(self, rel_path: str) -> np.ndarray:
        """Cached mono float32 signal of ``rel_path`` (first channel of multichannel files)."""

        def load() -> np.ndarray:
            data, _ = read_audio(self._path(rel_path), mono=True, min_peak=None)
            return data

        return self._audio.get_or(rel_path, load)

    def rirs(self, rel_path: str) -> dict[str, np.ndarray]:
        """Cached contents of a room's ``.npz`` (``rir [3, C, L]``, ``target_rir [L]``, ``ref_mic``)."""

        def load() -> dict[str, np.ndarray]:
            path = self._path(rel_path)
            try:
                with np.load(path, allow_pickle=False) as z:
                    out = {k: z[k] for k in ("rir", "target_rir", "ref_mic", "sr")}
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"room RIR file not found: {path}") from exc
            except KeyError as exc:
                raise ValueError(f"{path}: missing array {exc}") from exc
            rir = out["rir"]
            if rir.ndim != 3 or rir.shape[0] != 3 or out["target_rir"].shape != (rir.shape[2],):
                raise ValueError(
                    f"{path}: rir {rir.shape} / target_rir {out['target_rir'].shape} do not match [3, C, L] / [L]"
                )
            out["rir"] = rir.astype(np.float32)
            out["target_rir"] = out["target_rir"].astype(np.float32)
            return out

        return self._rirs.get_or(rel_path, load)

    def _spectrum(self, rel_path: str, nfft: int) -> tuple[np.ndarray, np.ndarray]:
        def make() -> tuple[np.ndarray, np.ndarray]:
            r = self.rirs(rel_path)
            return sfft.rfft(r["rir"], nfft, axis=-1), sfft.rfft(r["target_rir"], nfft)

        return self._spectra.get_or((rel_path, nfft), make)

    def channel(self, path: str, channel: int, source_sr: int, sr: int) -> np.ndarray:
        """Cached channel ``channel`` of ``path`` at ``sr`` (resampled from the file's ``source_sr``). A
        multichannel file is decoded and resampled once: every channel of it enters the cache together."""
        key = (path, channel, sr)
        if key in self._audio:
            self._audio.move_to_end(key)
            return self._audio[key]
        data, file_sr = read_audio(self._path(path), mono=False, min_peak=None)
        if file_sr != source_sr:
            raise AudioError(path, f"sample rate {file_sr} Hz, the mixture DB recorded {source_sr} Hz")
        if channel >= data.shape[0]:
            raise AudioError(path, f"has {data.shape[0]} channel(s), the mixture DB uses channel {channel}")
        resampled = resample_audio(data, source_sr, sr)  # [C, T'] in one call
        for c in range(resampled.shape[0]):
            if c != channel:
                self._audio.get_or((path, c, sr), lambda c=c: resampled[c])
        return self._audio.get_or(key, lambda: resampled[channel])

    def recorded(self, row: Mapping[str, Any], snr_db: float | None = None) -> Rendered:
        """A recorded mixture: its noisy channels and clean reference, resampled to the DB's rate and cut or
        zero-padded to ``length``; no anti-clipping scale (the recording's own level). Without a reference
        (real recordings) the target is zeros and the SNR NaN. ``snr_db`` (training's SNR redraw) rescales the
        recording's noise, ``noisy - clean``, at every channel: only where the clean reference covers them all
        (a mono pair); a multichannel recording has its clean speech at the reference mic only."""
        length, sr, source_sr = int(row["length"]), int(row["sample_rate"]), int(row["recorded_sr"])
        noisy = np.zeros((len(row["recorded_noisy"]), length), dtype=np.float32)
        for c, (path, ch) in enumerate(row["recorded_noisy"]):
            x = self.channel(path, int(ch), source_sr, sr)[:length]
            noisy[c, : len(x)] = x
        target = np.zeros(length, dtype=np.float32)
        clean = row.get("recorded_clean")
        if clean is not None:
            x = self.channel(clean[0], int(clean[1]), source_sr, sr)[:length]
            target[: len(x)] = x
        ref = int(row["ref_mic"])
        noise = noisy - target[None, :] if clean is not None else noisy.copy()
        if snr_db is not None:
            if clean is None or noisy.shape[0] != 1:
                raise ValueError(
                    f"mixture {row.get('mid', '?')}: data.snr_range redraws SNRs of simulated mixtures and mono "
                    "recorded pairs; this recording has "
                    + ("no clean reference" if clean is None else f"{noisy.shape[0]} channels and one clean mic")
                )
            e_s = float(np.sum(target.astype(np.float64) ** 2))
            e_n = float(np.sum(noise[ref].astype(np.float64) ** 2))
            if e_s > 0.0 and e_n > 0.0:
                noise = noise * np.float32(np.sqrt(e_s / (e_n * 10.0 ** (float(snr_db) / 10.0))))
                noisy = target[None, :] + noise
        achieved = float("nan")
        if clean is not None:
            e_s = float(np.sum(target.astype(np.float64) ** 2))
            e_n = float(np.sum(noise[ref].astype(np.float64) ** 2))
            if e_s > 0.0 and e_n > 0.0:
                achieved = 10.0 * np.log10(e_s / e_n)

        def as_t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

        return Rendered(noisy=as_t(noisy), target=as_t(target), noise=as_t(noise), scale=1.0, snr_db=float(achieved))

    def sources(self, row: Any, rir_len: int) -> np.ndarray:
        """Dry source signals ``[3, L - 1 + T]`` (speech, noise 1, noise 2) incl. the pre-roll."""
        length = int(_get(row, "length"))
        pre = rir_len - 1
        x = np.zeros((3, pre + length), dtype=np.float32)
        speech = self.mono(_get(row, "speech_path"))
        off, start = int(_get(row, "speech_offset")), int(_get(row, "speech_start"))
        n = max(0, min(length - start, len(speech) - off))
        x[0, pre + start : pre + start + n] = speech[off : off + n]
        for k in (1, 2):
            noise = self.mono(_get(row, f"noise{k}_path"))
            idx = (int(_get(row, f"noise{k}_offset")) - pre + np.arange(pre + length)) % len(noise)
            x[k] = noise[idx]
        return x

    def render(self, row: Any, snr_db: float | None = None) -> Rendered:
        """Render ``row`` (mapping or object with the ``RENDER_FIELDS``); ``snr_db`` overrides the row's.

        A recorded mixture (a public corpus's row: ``recorded_noisy`` set) is read instead, :meth:`recorded`."""
        if isinstance(row, Mapping) and row.get("recorded_noisy") is not None:
            return self.recorded(row, snr_db)
        rir_path = _get(row, "rir_path")
        room = self.rirs(rir_path)
        ref = int(room["ref_mic"])
        rir_len = room["rir"].shape[-1]
        length = int(_get(row, "length"))
        x = self.sources(row, rir_len)
        pre = rir_len - 1
        nfft = sfft.next_fast_len(x.shape[-1] + rir_len - 1, real=True)
        h_spec, t_spec = self._spectrum(rir_path, nfft)
        X = sfft.rfft(x, nfft, axis=-1)  # [3, F]
        g2 = np.float32(10.0 ** (float(_get(row, "noise2_rel_db")) / 20.0))
        speech_img = sfft.irfft(X[0] * h_spec[0], nfft, axis=-1)[:, pre : pre + length]
        noise_img = sfft.irfft(X[1] * h_spec[1] + g2 * (X[2] * h_spec[2]), nfft, axis=-1)[:, pre : pre + length]
        target = sfft.irfft(X[0] * t_spec, nfft)[pre : pre + length]

        snr = float(_get(row, "snr_db") if snr_db is None else snr_db)
        e_s = float(np.sum(target.astype(np.float64) ** 2))
        e_n = float(np.sum(noise_img[ref].astype(np.float64) ** 2))
        mid = row.get("mid", "?") if isinstance(row, Mapping) else getattr(row, "mid", "?")
        if e_s <= 0.0:
            raise ValueError(
                f"mixture {mid}: target is silent over the mixture (speech {_get(row, 'speech_path')}); SNR undefined"
            )
        if e_n <= 0.0:
            raise ValueError(
                f"mixture {mid}: noise is silent at the reference mic "
                f"({_get(row, 'noise1_path')}, {_get(row, 'noise2_path')})"
            )
        gain = np.float32(np.sqrt(e_s / (e_n * 10.0 ** (snr / 10.0))))
        noise = noise_img * gain
        noisy = speech_img + noise
        peak = float(max(np.abs(noisy).max(), np.abs(target).max()))
        scale = PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0
        if scale != 1.0:
            s = np.float32(scale)
            noisy, target, noise = noisy * s, target * s, noise * s
        achieved = 10.0 * np.log10(np.sum(target.astype(np.float64) ** 2) / np.sum(noise[ref].astype(np.float64) ** 2))

        def as_t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

        return Rendered(
            noisy=as_t(noisy), target=as_t(target), noise=as_t(noise), scale=float(scale), snr_db=float(achieved)
        )
