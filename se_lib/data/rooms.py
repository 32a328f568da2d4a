"""Rooms: simulated shoebox (or measured) multichannel room impulse responses per split.

Simulation uses the image-source method (Allen & Berkley, "Image method for efficiently simulating
small-room acoustics", JASA 65(4), 1979) as implemented by pyroomacoustics (Scheibler, Bezzam &
Dokmanić, "Pyroomacoustics: a Python package for audio room simulations and array processing
algorithms", ICASSP 2018). Wall absorption and the image order come from Sabine's formula via
``pra.inverse_sabine(rt60, dims)``.

Each room has one speech source (source 0) and two noise sources (1, 2) at distinct positions
(>= ``WALL_MARGIN`` from the walls, >= ``ARRAY_MIN_DIST`` from the array centre, >=
``SOURCE_MIN_DIST`` from each other) and a microphone array rotated by a random azimuth:

* ``circular4``: 4 omni mics on a horizontal circle of ``rooms.mic_array.radius``;
* ``chime3_tablet``: the 6-mic CHiME-3 tablet (Barker, Marxer, Vincent & Watanabe, "The third
  'CHiME' speech separation and recognition challenge: dataset, task and baselines", ASRU 2015).
  Coordinates from the challenge tools (``CHiME3_simulate_data.m``, ``localize.m``), in cm:
  x = [-10, 0, 10, -10, 0, 10], y = [9.5, 9.5, 9.5, -9.5, -9.5, -9.5], z = [0, -2, 0, 0, 0, 0]
  (mic 2, index 1, faces backwards, 2 cm behind the screen plane). The tablet lies flat here
  (its z axis is the room's vertical);
* ``custom``: ``rooms.mic_array.coords`` relative to the array centre.

Target definitions (``rooms.target``) at the reference mic ``r`` for the speech source, stored as
``target_rir`` so that ``target = speech * target_rir``:

* ``dry``: no room and no delay: ``g_d * delta[n]``, where ``g_d = ||h_direct||_2`` is the gain of
  the direct path (pyroomacoustics >= 0.8: ``1/r``). Keeping the direct-path gain puts the target
  at the level it has at the microphone, so SNRs (defined on the target) are comparable across
  target definitions.
* ``direct``: the image-source order-0 component only, i.e. the delayed (fractional delay,
  windowed sinc) ``1/r`` impulse at the direct-path delay, computed by the same simulator so it is
  sample-aligned with the full RIR.
* ``early``: the full RIR up to ``rooms.early_ms`` after the direct-path peak, with a raised-cosine
  fade over the last ``min(5 ms, early_ms / 2)`` so the window ends smoothly at exactly
  ``peak + early_ms`` (``early_ms = 0`` keeps the direct path's own sinc support).

Measured RIRs (``corpus.files.rir_glob`` -> ``<corpus_dir>/rirs.tsv``, columns
``ririd path channels sr``): rows sorted by ``ririd`` are taken three at a time; each triple is one
room (file 1 = speech source, 2 = noise 1, 3 = noise 2; a leftover 1-2 files are ignored with a
message). The room's ``rid`` is the first file's ``ririd``. All files must have the same channel
count; they are resampled to ``sample_rate`` and truncated to ``max_rir_seconds``. The rooms are
shared out over the splits in proportion to ``rooms.count`` (at least one each, so >= 3 triples
are required). The direct-path peak is ``argmax |h_r|``; ``direct`` keeps +-1 ms around it
(Hann taper); ``rt60`` is estimated from the reference channel (Schroeder integration, ``pra``).

Outputs (``docs/contracts.md``): ``rooms.tsv`` (``rid split dims rt60 mics src_pos ref_mic target
rir_path`` plus ``mic_array origin channels``; arrays as JSON) and ``rirs/<rid>.npz`` with ``rir``
float32 ``[3, C, L]``, ``target_rir`` float32 ``[L]``, ``sr``, ``ref_mic``, ``direct_delay``
(samples, float). Everything is written into a temporary directory beside ``out_dir`` and renamed
into place, so an interrupted build leaves the previous output untouched.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from se_lib.data.naming import check_id
from se_lib.data.splits import SPLITS, derive_rng
from se_lib.io import atomic_dir

WALL_MARGIN = 0.5  # m, sources and array centre (plus the array's own radius) from the walls
ARRAY_MIN_DIST = 0.75  # m, source to array centre
SOURCE_MIN_DIST = 0.5  # m, between sources
EARLY_FADE_MS = 5.0
MEASURED_DIRECT_MS = 1.0
ROOMS_TSV_COLUMNS = (
    "rid",
    "split",
    "dims",
    "rt60",
    "mics",
    "src_pos",
    "ref_mic",
    "target",
    "rir_path",
    "mic_array",
    "origin",
    "channels",
)
# CHiME-3 tablet, cm (Barker et al., ASRU 2015; CHiME3_simulate_data.m of the challenge tools).
CHIME3_TABLET_CM = np.array(
    [[-10.0, 9.5, 0.0], [0.0, 9.5, -2.0], [10.0, 9.5, 0.0], [-10.0, -9.5, 0.0], [0.0, -9.5, 0.0], [10.0, -9.5, 0.0]]
)


class RoomError(ValueError):
    """Room simulation or RIR loading failed; the message names the config key or file."""


def mic_geometry(mic_cfg: dict) -> np.ndarray:
    """Mic offsets ``[C, 3]`` (m) relative to the array centre for ``rooms.mic_array``."""
    preset = mic_cfg["preset"]
    if preset == "circular4":
        r = float(mic_cfg["radius"])
        ang = np.arange(4) * (np.pi / 2)
        return np.stack([r * np.cos(ang), r * np.sin(ang), np.zeros(4)], axis=1)
    if preset == "chime3_tablet":
        return CHIME3_TABLET_CM / 100.0
    if preset == "custom":
        coords = np.asarray(mic_cfg.get("coords") or [], dtype=float)
        if coords.ndim != 2 or coords.shape[1] != 3 or len(coords) == 0:
            raise RoomError("config key 'rooms.mic_array.coords': expected a list of [x, y, z]")
        return coords
    raise RoomError(f"config key 'rooms.mic_array.preset': unknown preset {preset!r}")


@dataclass
class RoomRecord:
    """One room: metadata row of ``rooms.tsv`` plus its RIR arrays."""

    rid: str
    split: str
    dims: list[float] | None
    rt60: float | None
    mics: list[list[float]] | None
    src_pos: list[list[float]] | None
    ref_mic: int
    target: str
    mic_array: str
    origin: str
    rir: np.ndarray  # [3, C, L] float32
    target_rir: np.ndarray  # [L] float32
    direct_delay: float

    @property
    def channels(self) -> int:
        return int(self.rir.shape[1])


def early_window(length: int, peak: float, early_ms: float, sr: int, sinc_half: int = 40) -> np.ndarray:
    """Window ``[length]``: 1 up to ``peak + early_ms``, raised-cosine fade over the last part."""
    n_early = early_ms * sr / 1000.0
    end = peak + (n_early if n_early > 0 else sinc_half)
    fade = min(EARLY_FADE_MS * sr / 1000.0, n_early / 2.0) if n_early > 0 else 0.0
    n = np.arange(length, dtype=np.float64)
    w = np.where(n < end, 1.0, 0.0)
    if fade > 0:
        in_fade = (n >= end - fade) & (n < end)
        w[in_fade] = 0.5 * (1.0 + np.cos(np.pi * (n[in_fade] - (end - fade)) / fade))
    return w


def _fit(h: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)[:length]
    out[: len(h)] = h
    return out


def _target_rir(
    kind: str, h_ref: np.ndarray, h_direct: np.ndarray, peak: float, early_ms: float, sr: int, sinc_half: int
) -> np.ndarray:
    length = len(h_ref)
    if kind == "dry":
        t = np.zeros(length)
        t[0] = float(np.sqrt(np.sum(h_direct**2)))
        return t
    if kind == "direct":
        return h_direct.copy()
    if kind == "early":
        return h_ref * early_window(length, peak, early_ms, sr, sinc_half)
    raise RoomError(f"config key 'rooms.target': unknown target {kind!r}")


def _draw_point(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + rng.random(3) * (hi - lo)


def _draw_geometry(
    rng: np.random.Generator, dims: np.ndarray, offsets: np.ndarray, rid: str
) -> tuple[np.ndarray, np.ndarray]:
    """Array centre + rotated mics ``[C, 3]`` and three source positions ``[3, 3]``."""
    az = rng.uniform(0.0, 2 * np.pi)
    rot = np.array([[np.cos(az), -np.sin(az), 0.0], [np.sin(az), np.cos(az), 0.0], [0.0, 0.0, 1.0]])
    offsets = offsets @ rot.T
    extent = np.abs(offsets).max(axis=0)
    lo, hi = WALL_MARGIN + extent, dims - WALL_MARGIN - extent
    if np.any(hi <= lo):
        raise RoomError(
            f"room {rid}: dims {dims.tolist()} too small for the mic array plus "
            f"{WALL_MARGIN} m wall margin (config keys 'rooms.dims_min'/'rooms.mic_array')"
        )
    for _ in range(1000):
        centre = _draw_point(rng, lo, hi)
        sources: list[np.ndarray] = []
        for _ in range(200):
            p = _draw_point(rng, np.full(3, WALL_MARGIN), dims - WALL_MARGIN)
            if np.linalg.norm(p - centre) < ARRAY_MIN_DIST:
                continue
            if any(np.linalg.norm(p - q) < SOURCE_MIN_DIST for q in sources):
                continue
            sources.append(p)
            if len(sources) == 3:
                return centre + offsets, np.stack(sources)
    raise RoomError(
        f"room {rid}: could not place 3 sources in dims {dims.tolist()} with the "
        "required distances (config key 'rooms.dims_min')"
    )


def simulate_room(config: dict, split: str, index: int) -> RoomRecord:
    """Simulate room ``index`` of ``split`` (seeded by ``(seed, 'room', split, index)``)."""
    import pyroomacoustics as pra

    rc = config["rooms"]
    sr = int(config["sample_rate"])
    rid = f"{split}{index:03d}"
    rng = derive_rng(config["seed"], "room", split, index)
    dmin, dmax = np.asarray(rc["dims_min"], float), np.asarray(rc["dims_max"], float)
    lo, hi = (float(x) for x in rc["rt60_range"])
    for _ in range(100):
        dims = dmin + rng.random(3) * (dmax - dmin)
        rt60 = float(rng.uniform(lo, hi))
        try:
            e_abs, max_order = pra.inverse_sabine(rt60, dims.tolist())
        except ValueError:
            continue  # rt60 too short for this room (absorption > 1): redraw
        break
    else:
        raise RoomError(
            f"config key 'rooms.rt60_range': {rc['rt60_range']} not reachable for rooms "
            f"between {dmin.tolist()} and {dmax.tolist()} (Sabine absorption > 1)"
        )
    offsets = mic_geometry(rc["mic_array"])
    ref = int(rc["mic_array"]["reference_mic"])
    if ref >= len(offsets):
        raise RoomError(f"config key 'rooms.mic_array.reference_mic': {ref} >= {len(offsets)} mics")
    mics, sources = _draw_geometry(rng, dims, offsets, rid)
    length = round(float(rc["max_rir_seconds"]) * sr)

    room = pra.ShoeBox(
        dims.tolist(), fs=sr, materials=pra.Material(float(e_abs)), max_order=int(max_order), air_absorption=False
    )
    for p in sources:
        room.add_source(p.tolist())
    room.add_microphone_array(mics.T.copy())
    room.compute_rir()
    rir = np.stack([np.stack([_fit(room.rir[m][s], length) for m in range(len(mics))]) for s in range(3)])

    direct_room = pra.ShoeBox(dims.tolist(), fs=sr, max_order=0, air_absorption=False)
    direct_room.add_source(sources[0].tolist())
    direct_room.add_microphone_array(mics[ref][:, None].copy())
    direct_room.compute_rir()
    h_direct = _fit(direct_room.rir[0][0], length)
    sinc_half = int(pra.constants.get("frac_delay_length")) // 2
    c = float(pra.constants.get("c"))
    peak = float(np.linalg.norm(sources[0] - mics[ref]) / c * sr + sinc_half)
    target_rir = _target_rir(rc["target"], rir[0, ref], h_direct, peak, float(rc["early_ms"]), sr, sinc_half)
    return RoomRecord(
        rid=rid,
        split=split,
        dims=dims.tolist(),
        rt60=rt60,
        mics=mics.tolist(),
        src_pos=sources.tolist(),
        ref_mic=ref,
        target=rc["target"],
        mic_array=rc["mic_array"]["preset"],
        origin="simulated",
        rir=rir.astype(np.float32),
        target_rir=target_rir.astype(np.float32),
        direct_delay=peak,
    )


def _read_tsv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except FileNotFoundError as exc:
        raise RoomError(f"file not found: {path}") from exc


def _split_counts(n: int, weights: dict[str, int]) -> dict[str, int]:
    """Share ``n >= 3`` items over the splits proportionally to ``weights`` (>= 1 each)."""
    total = sum(weights[s] for s in SPLITS)
    base = {s: 1 for s in SPLITS}
    rest = n - len(SPLITS)
    raw = {s: rest * weights[s] / total for s in SPLITS}
    for s in SPLITS:
        base[s] += math.floor(raw[s])
    left = n - sum(base.values())
    for s in sorted(SPLITS, key=lambda s: raw[s] - math.floor(raw[s]), reverse=True)[:left]:
        base[s] += 1
    return base


def _load_rir_file(path: Path, sr: int) -> np.ndarray:
    """Measured RIR ``[C, N]`` float64 resampled to ``sr`` (AudioError names a bad file)."""
    from se_lib.data.audio import read_audio

    data, _ = read_audio(path, sample_rate=sr, mono=False, min_peak=None)
    return np.asarray(data, dtype=np.float64)


def measured_rooms(
    config: dict, rirs_tsv: Path, root: Path = Path("."), log: Callable[[str], None] = print
) -> list[RoomRecord]:
    """Rooms from measured RIR files listed in ``rirs_tsv`` (see the module docstring)."""
    rc = config["rooms"]
    sr = int(config["sample_rate"])
    length = round(float(rc["max_rir_seconds"]) * sr)
    ref = int(rc["mic_array"]["reference_mic"])
    rows = sorted(_read_tsv(rirs_tsv), key=lambda r: r["ririd"])
    n_rooms = len(rows) // 3
    if n_rooms < 3:
        raise RoomError(
            f"{rirs_tsv}: {len(rows)} RIR files make {n_rooms} rooms; measured RIRs need "
            ">= 9 files (3 sources per room, >= 1 room per split)"
        )
    if len(rows) % 3:
        log(f"rooms: ignoring {len(rows) % 3} leftover RIR file(s) of {rirs_tsv} (3 per room)")
    counts = _split_counts(n_rooms, rc["count"])
    splits = [s for s in SPLITS for _ in range(counts[s])]
    out: list[RoomRecord] = []
    channels: int | None = None
    half = round(MEASURED_DIRECT_MS * sr / 1000.0)
    for i, split in enumerate(splits):
        group = rows[3 * i : 3 * i + 3]
        hs = [_load_rir_file(root / g["path"], sr) for g in group]
        for g, h in zip(group, hs, strict=True):
            if channels is None:
                channels = h.shape[0]
            if h.shape[0] != channels:
                raise RoomError(f"{g['path']}: {h.shape[0]} channels, expected {channels} like the other measured RIRs")
        if ref >= channels:
            raise RoomError(
                f"config key 'rooms.mic_array.reference_mic': {ref} >= {channels} channels "
                f"of the measured RIRs in {rirs_tsv}"
            )
        rir = np.stack([np.stack([_fit(ch, length) for ch in h]) for h in hs])
        h_ref = rir[0, ref]
        peak = int(np.argmax(np.abs(h_ref)))
        n = np.arange(length)
        taper = np.where(np.abs(n - peak) <= half, 0.5 * (1 + np.cos(np.pi * (n - peak) / (half + 1))), 0.0)
        h_direct = h_ref * taper
        target_rir = _target_rir(rc["target"], h_ref, h_direct, float(peak), float(rc["early_ms"]), sr, half)
        rt60: float | None
        try:
            import pyroomacoustics as pra

            rt60 = float(pra.experimental.measure_rt60(h_ref, fs=sr, decay_db=30))
            if not math.isfinite(rt60):
                rt60 = None
        except (ValueError, IndexError, ZeroDivisionError, FloatingPointError):  # no usable decay
            rt60 = None
        out.append(
            RoomRecord(
                rid=check_id(group[0]["ririd"], f"{rirs_tsv}: ririd"),
                split=split,
                dims=None,
                rt60=rt60,
                mics=None,
                src_pos=None,
                ref_mic=ref,
                target=rc["target"],
                mic_array="measured",
                origin="measured",
                rir=rir.astype(np.float32),
                target_rir=target_rir.astype(np.float32),
                direct_delay=float(peak),
            )
        )
    return out


def _json(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"))


def write_rooms(
    rooms: Sequence[RoomRecord], out_dir: str | os.PathLike, sr: int, root: str | os.PathLike = "."
) -> None:
    """Write ``rooms.tsv`` and ``rirs/<rid>.npz`` atomically into ``out_dir``.

    ``rir_path`` is written relative to ``root`` (the directory later readers resolve it against).
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "rirs").mkdir()
        with open(tmp / "rooms.tsv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(ROOMS_TSV_COLUMNS)
            for r in rooms:
                rir_path = Path(os.path.relpath(out_dir / "rirs" / f"{r.rid}.npz", root)).as_posix()
                np.savez(
                    tmp / "rirs" / f"{r.rid}.npz",
                    rir=r.rir,
                    target_rir=r.target_rir,
                    sr=np.int64(sr),
                    ref_mic=np.int64(r.ref_mic),
                    direct_delay=np.float64(r.direct_delay),
                )
                w.writerow(
                    [
                        r.rid,
                        r.split,
                        _json(r.dims),
                        "" if r.rt60 is None else repr(r.rt60),
                        _json(r.mics),
                        _json(r.src_pos),
                        r.ref_mic,
                        r.target,
                        rir_path,
                        r.mic_array,
                        r.origin,
                        r.channels,
                    ]
                )


def _simulate_all(config: dict, workers: int) -> list[RoomRecord]:
    jobs = [(split, i) for split in SPLITS for i in range(int(config["rooms"]["count"][split]))]
    workers = max(1, min(int(workers), len(jobs)))
    if workers == 1:
        return [simulate_room(config, split, i) for split, i in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # fork where available: children need no re-import of the caller's __main__ (the simulation
    # itself is single-threaded C++/numpy code, so inherited thread state does not matter)
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(method)) as pool:
        futures = [pool.submit(simulate_room, config, split, i) for split, i in jobs]
        return [f.result() for f in futures]


def build_rooms(
    config: dict,
    out_dir: str | os.PathLike = "results/rooms",
    corpus_dir: str | os.PathLike = "results/corpus",
    log: Callable[[str], None] = print,
    workers: int = 1,
    root: str | os.PathLike = ".",
) -> dict:
    """Build all rooms of all splits; returns stats (rooms per split, channels, seconds).

    Simulated rooms unless ``corpus.kind == 'files'`` and ``corpus.files.rir_glob`` is set, in
    which case ``<corpus_dir>/rirs.tsv`` must exist and measured RIRs are used. ``workers``
    processes simulate rooms in parallel (each room has its own seed, so the result does not
    depend on ``workers``). ``rir_path`` in ``rooms.tsv`` is relative to ``root`` (the repo root,
    the working directory of the workflow), as are the measured RIR paths of ``rirs.tsv``.
    """
    t0 = time.perf_counter()
    sr = int(config["sample_rate"])
    if config["corpus"]["kind"] == "files" and config["corpus"]["files"]["rir_glob"]:
        tsv = Path(corpus_dir) / "rirs.tsv"
        if not tsv.exists():
            raise RoomError(
                f"config key 'corpus.files.rir_glob' is set but {tsv} does not exist (run the corpus stage first)"
            )
        rooms = measured_rooms(config, tsv, root=Path(root), log=log)
    else:
        rooms = _simulate_all(config, workers)
    write_rooms(rooms, out_dir, sr, root)
    stats = {
        "rooms": len(rooms),
        "per_split": {s: sum(r.split == s for r in rooms) for s in SPLITS},
        "channels": rooms[0].channels,
        "origin": rooms[0].origin,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log(f"rooms: {stats}")
    return stats


def read_rooms(rooms_dir: str | os.PathLike = "results/rooms") -> list[dict[str, Any]]:
    """Rows of ``rooms.tsv`` with JSON columns decoded and numbers typed."""
    path = Path(rooms_dir) / "rooms.tsv"
    rows = _read_tsv(path)
    out = []
    for i, r in enumerate(rows, start=2):
        missing = [c for c in ROOMS_TSV_COLUMNS[:9] if c not in r]
        if missing:
            raise RoomError(f"{path}: missing column(s) {missing}")
        try:
            out.append(
                {
                    "rid": r["rid"],
                    "split": r["split"],
                    "dims": json.loads(r["dims"]),
                    "rt60": float(r["rt60"]) if r["rt60"] else None,
                    "mics": json.loads(r["mics"]),
                    "src_pos": json.loads(r["src_pos"]),
                    "ref_mic": int(r["ref_mic"]),
                    "target": r["target"],
                    "rir_path": r["rir_path"],
                    "mic_array": r.get("mic_array") or "",
                    "origin": r.get("origin") or "simulated",
                    "channels": int(r["channels"]) if r.get("channels") else None,
                }
            )
        except (ValueError, TypeError) as exc:
            raise RoomError(f"{path}:{i}: bad row ({exc})") from exc
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m se_lib.data.rooms --config config/config.yaml [--out results/rooms]``."""
    import argparse

    from se_lib.config import load_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--out", default="results/rooms")
    p.add_argument("--corpus", default="results/corpus")
    p.add_argument("--workers", type=int, default=1, help="parallel simulation processes")
    a = p.parse_args(argv)
    build_rooms(load_config(a.config), a.out, a.corpus, workers=a.workers)


if __name__ == "__main__":
    main()
