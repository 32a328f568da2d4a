"""Stand-ins for the public corpora, in exactly their published layouts and names, at a reduced count.

No corpus can be downloaded here, so the tests build trees that the real adapters read as they would read the
real thing: the recipe's counts (``config/corpora/<corpus>.yaml``) times a ``count_scale`` (what
``corpus.count_scale`` tells the adapter), the publisher's folder and file names, their sample rates and channel
counts. The speech is real recorded human speech where this machine has it -- the voice prompts Debian's
``alsa-utils`` installs (``/usr/share/sounds/alsa/*.wav``, 48 kHz mono, GPL-2; ``make sysdeps`` installs them) --
else eSpeak NG speech from the demo synthesizer; the noise is a recorded ``Noise.wav`` where present, else
seeded pink noise. Each noisy file is its clean partner plus noise at a known SNR (returned, so tests can check
the measured SNR), resampled/placed as the corpus has it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from se_lib.data.audio import resample_audio
from se_lib.data.corpora.recordings import expected_counts
from se_lib.data.corpora.stage import recipe_counts

ALSA = Path("/usr/share/sounds/alsa")
PROMPTS = (
    "Front_Center",
    "Front_Left",
    "Front_Right",
    "Rear_Center",
    "Rear_Left",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
)


@dataclass
class StandIn:
    """A stand-in tree: its root, the SNR each noisy file was made at (by relative noisy path), the counts."""

    root: Path
    snr: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def speech_clips(sr: int) -> list[np.ndarray]:
    """Recorded voice prompts at ``sr`` (peak 0.5), or eSpeak NG utterances where alsa-utils is missing."""
    clips = []
    if all((ALSA / f"{name}.wav").exists() for name in PROMPTS):
        for name in PROMPTS:
            x, file_sr = sf.read(ALSA / f"{name}.wav", dtype="float32")
            x = x if x.ndim == 1 else x[:, 0]
            clips.append(resample_audio(x, file_sr, sr))
    else:
        from se_lib.data.espeak import ESPEAK_SAMPLE_RATE, synthesize

        for i, text in enumerate(("front centre", "front left", "rear right", "side left")):
            x = synthesize(text, voice=("en", "en-us")[i % 2], seed=i)
            clips.append(resample_audio(np.asarray(x, dtype=np.float32), ESPEAK_SAMPLE_RATE, sr))
    return [0.5 * c / max(1e-6, float(np.abs(c).max())) for c in clips]


def noise_signal(sr: int, seconds: float, seed: int) -> np.ndarray:
    """A recorded noise (alsa-utils' ``Noise.wav``, looped from a seeded offset), else seeded pink noise."""
    n = round(seconds * sr)
    rng = np.random.default_rng(seed)
    if (ALSA / "Noise.wav").exists():
        x, file_sr = sf.read(ALSA / "Noise.wav", dtype="float32")
        x = resample_audio(x if x.ndim == 1 else x[:, 0], file_sr, sr)
        idx = (int(rng.integers(len(x))) + np.arange(n)) % len(x)
        return x[idx].astype(np.float32)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(1.0, np.arange(len(spec))))
    return np.fft.irfft(spec, n).astype(np.float32)


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``clean + g * noise`` (noise cut to the clean length) with ``g`` set for ``snr_db`` over the whole signal."""
    noise = noise[: len(clean)]
    e_s, e_n = float(np.sum(clean.astype(np.float64) ** 2)), float(np.sum(noise.astype(np.float64) ** 2))
    return (clean + math.sqrt(e_s / (e_n * 10 ** (snr_db / 10))) * noise).astype(np.float32)


def utterance(clips: list[np.ndarray], i: int, sr: int, seconds: float) -> np.ndarray:
    """Utterance ``i``: a clip placed in ``seconds`` of silence (a varying lead-in, as recorded prompts have)."""
    clip = clips[i % len(clips)]
    out = np.zeros(max(round(seconds * sr), len(clip) + sr // 10), dtype=np.float32)
    start = (i * 977) % max(1, len(out) - len(clip))
    out[start : start + len(clip)] = clip
    return out


def write(path: Path, x: np.ndarray, sr: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.T if x.ndim == 2 else x, sr, subtype="PCM_16")


def voicebank_demand(root: Path, scale: float, *, seconds: float = 1.6, seed: int = 0) -> StandIn:
    """``clean_/noisy_trainset_28spk_wav`` and ``clean_/noisy_testset_wav`` at 48 kHz, pairs by basename; the
    training speakers include the validation speakers p226 and p287; a ``logfiles/log_testset.txt`` gives
    each test file's noise type and SNR, as the publisher's log files do."""
    sr = 48000
    counts = expected_counts(recipe_counts("voicebank_demand"), scale)
    clips = speech_clips(sr)
    out = StandIn(root, counts=counts)
    rng = np.random.default_rng(seed)
    train_speakers = ["p226", "p287", "p228", "p230", "p231"]
    for name, speakers in (("trainset_28spk", train_speakers), ("testset", ["p232", "p257"])):
        n = counts[f"noisy_{name}_wav"]
        log = []
        for i in range(n):
            spk = speakers[i % len(speakers)]
            stem = f"{spk}_{i // len(speakers) + 1:03d}"
            clean = utterance(clips, i, sr, seconds)
            snr = float(rng.choice([2.5, 7.5, 12.5, 17.5]))
            noisy = mix(clean, noise_signal(sr, len(clean) / sr + 0.1, seed + i), snr)
            write(root / f"clean_{name}_wav" / f"{stem}.wav", clean, sr)
            write(root / f"noisy_{name}_wav" / f"{stem}.wav", noisy, sr)
            out.snr[f"noisy_{name}_wav/{stem}.wav"] = snr
            log.append(f"{stem} {('living', 'office', 'bus', 'cafe')[i % 4]} {snr}")
        if name == "testset":
            (root / "logfiles").mkdir(parents=True, exist_ok=True)
            (root / "logfiles" / "log_testset.txt").write_text("\n".join(log) + "\n")
    return out


def dns2020(root: Path, scale: float, *, seconds: float = 1.6, seed: int = 1, real: bool = True) -> StandIn:
    """``datasets/test_set/synthetic/{no_reverb,with_reverb}/{clean,noisy}`` (``clean_fileid_N.wav`` and
    ``<...>_snr<S>_fileid_N.wav``) and ``real_recordings/`` (noisy only), 16 kHz."""
    sr = 16000
    counts = expected_counts(recipe_counts("dns2020"), scale)
    clips = speech_clips(sr)
    out = StandIn(root, counts=counts)
    base = root / "datasets" / "test_set"
    for cond in ("no_reverb", "with_reverb"):
        for n in range(counts[f"synthetic/{cond}"]):
            clean = utterance(clips, n + 3, sr, seconds)
            snr = float((n * 5) % 20)
            noisy = mix(clean, noise_signal(sr, len(clean) / sr + 0.1, seed + n), snr)
            name = f"book_{n:05d}_chp_0009_reader_06709_{n}_snr{snr:.0f}_fileid_{n}.wav"
            rel = f"datasets/test_set/synthetic/{cond}/noisy/{name}"
            write(base / "synthetic" / cond / "clean" / f"clean_fileid_{n}.wav", clean, sr)
            write(root / rel, noisy, sr)
            out.snr[rel] = snr
    if real:
        for n in range(counts["real_recordings"]):
            clean = utterance(clips, n + 5, sr, seconds)
            write(
                base / "real_recordings" / f"ms_realrec_{n:03d}.wav",
                mix(clean, noise_signal(sr, len(clean) / sr + 0.1, n), 5.0),
                sr,
            )
    return out


CHIME_ENVS = ("bus", "caf", "ped", "str")


def chime4(
    root: Path,
    scale: float,
    *,
    sets=("tr05_simu", "dt05_simu", "et05_simu", "et05_real"),
    seconds: float = 1.2,
    seed: int = 2,
) -> StandIn:
    """``isolated/<set>_<env>_<simu|real>/<spk>_<utt>_<ENV>.CH<n>.wav`` (CH1-CH6; CH0 close talk for real) and
    ``isolated_ext/<set>_<env>_simu/<stem>.CH<n>.Clean.wav``, 16 kHz mono files, the utterances of a set spread
    over the four environments. Channel n is the clean speech delayed by n samples (CH2, on the back, also
    attenuated) plus its own noise, so a test can tell the channels apart and check their order."""
    sr = 16000
    counts = expected_counts(recipe_counts("chime4"), scale)
    clips = speech_clips(sr)
    out = StandIn(root, counts={s: counts[s] for s in sets})
    for name in sets:
        set_id, kind = name.split("_")
        for i in range(counts[name]):
            env = CHIME_ENVS[i % 4]
            stem = f"F0{1 + i % 3}_{set_id[:2]}{i:04d}0{i % 9}_{env.upper()}"
            clean = utterance(clips, i, sr, seconds)
            for ch in range(0 if kind == "real" else 1, 7):
                img = np.roll(clean, ch) * (0.3 if ch == 2 else 1.0)
                noisy = mix(img, noise_signal(sr, len(img) / sr + 0.1, seed + 7 * i + ch), 5.0 if ch else 20.0)
                write(root / "isolated" / f"{set_id}_{env}_{kind}" / f"{stem}.CH{ch}.wav", noisy, sr)
                if kind == "simu":
                    write(root / "isolated_ext" / f"{set_id}_{env}_simu" / f"{stem}.CH{ch}.Clean.wav", img, sr)
    return out


def librimix(root: Path, *, per_split: int = 3, seconds: float = 1.2, channels: int = 1) -> StandIn:
    """A LibriMix-like paired layout (``Libri2Mix/wav16k/min/<split>/{mix_single,s1}/<id>.wav``) for the
    ``paired`` kind; ``channels`` > 1 writes multichannel noisy files (channel c delayed by c samples)."""
    sr = 16000
    clips = speech_clips(sr)
    out = StandIn(root)
    for s, folder in (("train", "train-100"), ("val", "dev"), ("test", "test")):
        for i in range(per_split):
            key = f"{100 + i}-{2000 + i}-{s}_{300 + i}-{4000 + i}"
            clean = utterance(clips, i + len(s), sr, seconds)
            noise = noise_signal(sr, len(clean) / sr + 0.1, i)
            noisy = (
                np.stack([np.roll(mix(clean, noise, 3.0), c) for c in range(channels)])
                if channels > 1
                else mix(clean, noise, 3.0)
            )
            write(root / "Libri2Mix/wav16k/min" / folder / "s1" / f"{key}.wav", clean, sr)
            write(root / "Libri2Mix/wav16k/min" / folder / "mix_single" / f"{key}.wav", noisy, sr)
            out.snr[f"Libri2Mix/wav16k/min/{folder}/mix_single/{key}.wav"] = 3.0
    out.counts = {f"paired-{s}": per_split for s in ("train", "val", "test")}
    return out
