"""Synthetic test *worlds*: corpus wavs + TSVs in the contract format, simulated rooms and a mixture DB,
small enough to build in seconds. Used by the DB, render, data-module, naming, predict, train and resume
tests (and the PostgreSQL one). The shared, session-wide worlds are the fixtures ``world`` and
``train_world`` in tests/conftest.py; a test that needs a world of its own calls :func:`build_world`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import numpy as np

from se_lib.config import load_config
from se_lib.data import db as dbm
from se_lib.data.audio import write_wav_atomic
from se_lib.data.rooms import build_rooms

REPO = Path(__file__).resolve().parent.parent
SR = 16000


class World(NamedTuple):
    """A built world: its root (corpus under ``results/corpus``, rooms under ``results/rooms``), its
    validated config and the mixture DB URL. Unpacks as ``root, config, url``."""

    root: Path
    config: dict
    url: str

    def rows(self, split: str | None = None) -> list[dict]:
        """The DB's mixture rows (of one split, or all), in ``mid`` order."""
        return list(dbm.iter_mixtures(self.url, split))


# ----------------------------------------------------------------------------- world helpers
def _speech_like(rng: np.random.Generator, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(100, 220)
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    env = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t)) ** 2
    return (0.2 * x * env / np.max(np.abs(x))).astype(np.float32)


def write_corpus(
    root: Path,
    speech_per_split: int = 3,
    noise_per_split: int = 3,
    sr: int = SR,
    seed: int = 0,
    speech_seconds: tuple[float, float] = (1.5, 4.0),
) -> Path:
    """Synthetic corpus in the contract format under ``root/results/corpus`` (paths relative to root)."""
    rng = np.random.default_rng(seed)
    out = root / "results" / "corpus"
    speech_rows, noise_rows = [], []
    for split in ("train", "val", "test"):
        for i in range(speech_per_split):
            sid = f"{split}-spk{i % 2}-u{i:02d}"
            secs = float(rng.uniform(*speech_seconds))
            rel = f"results/corpus/speech/{sid}.wav"
            write_wav_atomic(root / rel, _speech_like(rng, secs, sr), sr)
            speech_rows.append([sid, rel, f"{split}-spk{i % 2}", split, sr, f"{secs:.4f}", f"text {i}"])
        for i in range(noise_per_split):
            nid = f"{split}-n{i:02d}"
            secs = 2.0
            kind = ("white", "pink", "hum")[i % 3]
            x = rng.standard_normal(int(secs * sr))
            if kind == "pink":
                x = np.cumsum(x) * 0.05
                x -= np.convolve(x, np.ones(50) / 50, mode="same")
            elif kind == "hum":
                x = np.sin(2 * np.pi * 50 * np.arange(len(x)) / sr) + 0.05 * x
            rel = f"results/corpus/noise/{nid}.wav"
            write_wav_atomic(root / rel, (0.1 * x / np.max(np.abs(x))).astype(np.float32), sr)
            noise_rows.append([nid, rel, kind, split, sr, f"{secs:.4f}"])
    for name, header, rows in (
        ("speech.tsv", ["sid", "path", "speaker", "split", "sr", "seconds", "text"], speech_rows),
        ("noise.tsv", ["nid", "path", "kind", "split", "sr", "seconds"], noise_rows),
    ):
        with open(out / name, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
    return out


def tiny_config(root: Path, **mixtures) -> dict:
    """A validated config for a fast synthetic world rooted at ``root``."""
    overrides = {
        "seed": 7,
        "sample_rate": SR,
        "rooms": {
            "count": {"train": 2, "val": 1, "test": 1},
            "rt60_range": [0.15, 0.3],
            "max_rir_seconds": 0.25,
            "dims_min": [3.0, 3.0, 2.4],
            "dims_max": [5.0, 4.0, 3.0],
        },
        "mixtures": {
            "count": {"train": 40, "val": 8, "test": 6},
            "seconds": 2.0,
            "snr_range": [-5.0, 10.0],
            **mixtures,
        },
        "db": {"url": f"sqlite:///{(root / 'results' / 'db' / 'mixtures.sqlite').as_posix()}"},
    }
    return load_config(REPO / "config" / "config.yaml", overrides)


def build_world(root: Path, config: dict | None = None, **corpus_kw) -> tuple[dict, str]:
    """Corpus + rooms + DB under ``root``; returns (config, url)."""
    root.mkdir(parents=True, exist_ok=True)
    write_corpus(root, **corpus_kw)
    config = config or tiny_config(root)
    build_rooms(config, root / "results" / "rooms", root / "results" / "corpus", log=lambda m: None, root=root)
    url = config["db"]["url"]
    dbm.build_db(config, url, root / "results" / "corpus", root / "results" / "rooms", root=root, log=lambda m: None)
    return config, url


def rebuild(root: Path, config: dict, url: str, **kw) -> str:
    """Build the DB of the world under ``root`` into ``url``; returns the digest."""
    return dbm.build_db(
        config, url, root / "results/corpus", root / "results/rooms", root=root, log=lambda m: None, **kw
    )


def interrupt_build_after(monkeypatch, n_rows: int, exc: BaseException) -> None:
    """Make the next DB builds raise ``exc`` once ``n_rows`` candidate rows have been produced."""
    real = dbm.candidate_rows

    def failing(*args, **kwargs):
        for i, row in enumerate(real(*args, **kwargs)):
            if i == n_rows:
                raise exc
            yield row

    monkeypatch.setattr(dbm, "candidate_rows", failing)
