"""Rendering throughput: ``se_lib.data.render.Renderer`` vs a plain torchaudio reference.

Both render the same rows of one DB with the same signals and RIRs, in one process, one thread
each (as in a DataLoader worker). The reference is the straightforward implementation of the
signal model in ``render.py``: audio and RIRs preloaded as tensors, then four
``torchaudio.functional.fftconvolve`` calls per mixture (speech, noise 1, noise 2 images over all
channels, target), SNR scaling and the clipping guard. ``Renderer`` additionally caches the RIR
spectra and folds the two noise images into one inverse FFT. A cold run (a fresh ``Renderer`` per
mixture: audio decoding and RIR loading included) is reported too. The outputs of the two are
compared (max abs difference) so the speed-up is not bought with a different result.

    uv run python bench/bench_render.py [--mixtures 200] [--out bench/out/bench_render.json]

The world (synthetic corpus, default-config rooms: 4-mic circular array, 0.5 s RIRs; 3 s mixtures)
is built in a temp dir.
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from se_lib.config import load_config
from se_lib.data import db as dbm
from se_lib.data.audio import read_audio, write_wav_atomic
from se_lib.data.render import PEAK_LIMIT, Renderer
from se_lib.data.rooms import build_rooms
from se_lib.io import write_json_atomic  # noqa: E402

SR = 16000


def write_synthetic_corpus(root: Path, speech_per_split: int, noise_per_split: int, seed: int = 0) -> None:
    """Harmonic, amplitude-modulated 'speech' and white/pink/hum noises in the corpus TSV format."""
    rng = np.random.default_rng(seed)
    speech_rows, noise_rows = [], []
    for split in ("train", "val", "test"):
        for i in range(speech_per_split):
            sid = f"{split}-s{i:03d}"
            secs = float(rng.uniform(2.0, 5.0))
            t = np.arange(int(secs * SR)) / SR
            f0 = rng.uniform(100, 220)
            x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
            x *= 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t)) ** 2
            rel = f"corpus/speech/{sid}.wav"
            write_wav_atomic(root / rel, (0.2 * x / np.abs(x).max()).astype(np.float32), SR)
            speech_rows.append([sid, rel, f"{split}-spk{i % 3}", split, SR, f"{secs:.4f}", ""])
        for i in range(noise_per_split):
            nid = f"{split}-n{i:03d}"
            x = rng.standard_normal(4 * SR)
            if i % 2:
                x = np.cumsum(x) * 0.05
                x -= np.convolve(x, np.ones(64) / 64, mode="same")
            rel = f"corpus/noise/{nid}.wav"
            write_wav_atomic(root / rel, (0.1 * x / np.abs(x).max()).astype(np.float32), SR)
            noise_rows.append([nid, rel, "white" if i % 2 == 0 else "pink", split, SR, "4.0"])
    for name, header, rows in (
        ("speech.tsv", ["sid", "path", "speaker", "split", "sr", "seconds", "text"], speech_rows),
        ("noise.tsv", ["nid", "path", "kind", "split", "sr", "seconds"], noise_rows),
    ):
        with open(root / "corpus" / name, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)


def make_world(
    root: Path, mixtures: dict, rooms: dict | None = None, speech_per_split: int = 8, noise_per_split: int = 6
) -> tuple[dict, str]:
    """Corpus + rooms + DB under ``root`` (paths relative to root); returns (config, url)."""
    write_synthetic_corpus(root, speech_per_split, noise_per_split)
    overrides = {
        "seed": 1,
        "sample_rate": SR,
        "mixtures": mixtures,
        "rooms": rooms or {"count": {"train": 2, "val": 1, "test": 1}},
    }
    config = load_config(REPO / "config" / "config.yaml", overrides)
    build_rooms(config, root / "rooms", root / "corpus", log=lambda m: None, root=root)
    url = f"sqlite:///{root / 'mixtures.sqlite'}"
    dbm.build_db(config, url, root / "corpus", root / "rooms", root=root, log=lambda m: None)
    return config, url


class ReferenceRenderer:
    """The signal model of render.py written plainly with torchaudio.functional.fftconvolve."""

    def __init__(self, root: Path, rows: list[dict]) -> None:
        self.audio: dict[str, torch.Tensor] = {}
        self.rirs: dict[str, tuple[torch.Tensor, torch.Tensor, int]] = {}
        for r in rows:
            for key in ("speech_path", "noise1_path", "noise2_path"):
                if r[key] not in self.audio:
                    self.audio[r[key]] = torch.from_numpy(read_audio(root / r[key], min_peak=None)[0])
            if r["rir_path"] not in self.rirs:
                with np.load(root / r["rir_path"]) as z:
                    self.rirs[r["rir_path"]] = (
                        torch.from_numpy(z["rir"]),
                        torch.from_numpy(z["target_rir"]),
                        int(z["ref_mic"]),
                    )

    def render(self, row: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rir, target_rir, ref = self.rirs[row["rir_path"]]
        C, L, T = rir.shape[1], rir.shape[2], row["length"]
        speech = self.audio[row["speech_path"]]
        seg = torch.zeros(T)
        piece = speech[row["speech_offset"] : row["speech_offset"] + T - row["speech_start"]]
        seg[row["speech_start"] : row["speech_start"] + len(piece)] = piece
        speech_img = AF.fftconvolve(seg.expand(C, -1), rir[0])[:, :T]
        target = AF.fftconvolve(seg, target_rir)[:T]
        noise = torch.zeros(C, T)
        for k, g in ((1, 1.0), (2, 10 ** (row["noise2_rel_db"] / 20))):
            x = self.audio[row[f"noise{k}_path"]]
            idx = (row[f"noise{k}_offset"] - (L - 1) + torch.arange(T + L - 1)) % len(x)
            noise += g * AF.fftconvolve(x[idx].expand(C, -1), rir[k])[:, L - 1 : L - 1 + T]
        gain = torch.sqrt(
            (target.double() ** 2).sum() / ((noise[ref].double() ** 2).sum() * 10 ** (row["snr_db"] / 10))
        ).float()
        noise = noise * gain
        noisy = speech_img + noise
        peak = max(float(noisy.abs().max()), float(target.abs().max()))
        if peak > PEAK_LIMIT:
            s = PEAK_LIMIT / peak
            noisy, target, noise = noisy * s, target * s, noise * s
        return noisy, target, noise


def _rate(fn, rows: list[dict], repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for r in rows:
            fn(r)
        best = max(best, len(rows) / (time.perf_counter() - t0))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mixtures", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(REPO / "bench" / "out" / "bench_render.json"))
    a = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config, url = make_world(root, {"count": {"train": a.mixtures, "val": 4, "test": 4}, "seconds": 3.0})
        rows = list(dbm.iter_mixtures(url, "train"))
        C = rows[0]["channels"]
        L = int(config["rooms"]["max_rir_seconds"] * SR)
        ren = Renderer(root)
        ref = ReferenceRenderer(root, rows)
        for r in rows[:3]:  # warm-up (FFT plans, caches)
            ren.render(r)
            ref.render(r)
        diff = 0.0
        for r in rows[:20]:
            x, y = ren.render(r), ref.render(r)
            diff = max(diff, float((x.noisy - y[0]).abs().max()), float((x.target - y[1]).abs().max()))
        t_ren = _rate(ren.render, rows, a.repeats)
        t_ref = _rate(ref.render, rows, a.repeats)
        t_cold = _rate(lambda r: Renderer(root).render(r), rows[:50], 1)
    results = {
        "mixtures": len(rows),
        "seconds_per_mixture": 3.0,
        "channels": C,
        "rir_samples": L,
        "threads": 1,
        "renderer_mix_per_s": round(t_ren, 2),
        "reference_torchaudio_mix_per_s": round(t_ref, 2),
        "renderer_cold_mix_per_s": round(t_cold, 2),
        "speedup_vs_reference": round(t_ren / t_ref, 2),
        "max_abs_diff": diff,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
    }
    print(f"{len(rows)} mixtures of 3 s, {C} mics, RIR {L} samples, 1 thread")
    print(f"{'implementation':<40}{'mixtures/s':>12}{'x ref':>8}")
    for name, v in (
        ("Renderer (warm caches)", t_ren),
        ("reference torchaudio fftconvolve", t_ref),
        ("Renderer (cold: new instance per mix)", t_cold),
    ):
        print(f"{name:<40}{v:>12.1f}{v / t_ref:>8.2f}")
    print(f"max |Renderer - reference| = {diff:.2e}")
    out = Path(a.out)
    write_json_atomic(out, results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
