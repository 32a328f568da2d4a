"""Scale of a recorded corpus's stages: the corpus stage (scan + one check pass over every file + manifest) and
the mixture DB build, on a VoiceBank-DEMAND-sized stand-in (11 572 + 824 pairs of 3-s silence-padded 48 kHz
files, tests/corpus_standins.py), as rows per second and peak memory, and as a ratio to the I/O floor measured
in the same run: reading and hashing every file once (``sha256`` over the bytes), which any check must do.

Usage::

    uv run python bench/bench_corpus.py --root /tmp/vbd_full            # builds the stand-in once (~7 GB), reuses it
    uv run python bench/bench_corpus.py --root /tmp/vbd_full --threads 2 --scale 0.1

Writes ``bench/out/bench_corpus.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(Path(__file__).resolve().parent)]
from _common import machine_info  # noqa: E402
from se_lib.config import load_config  # noqa: E402
from se_lib.io import write_json_atomic  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="the stand-in's folder (built there when missing)")
    ap.add_argument("--scale", type=float, default=1.0, help="corpus.count_scale (1: the real counts)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "bench_corpus.json"))
    a = ap.parse_args()
    root = Path(a.root)
    if not (root / "noisy_testset_wav").is_dir():
        import corpus_standins

        t0 = time.perf_counter()
        corpus_standins.voicebank_demand(root, a.scale, seconds=3.0)
        print(f"stand-in built in {time.perf_counter() - t0:.0f} s at {root}", flush=True)
    files = sorted(root.glob("*_wav/*.wav"))
    t0 = time.perf_counter()
    size = 0
    for f in files:
        data = f.read_bytes()
        size += len(data)
        hashlib.sha256(data).hexdigest()
    floor_s = time.perf_counter() - t0
    rss_floor = peak_rss_mb()

    from se_lib.data.corpora.stage import build_recorded_corpus
    from se_lib.data.db import build_db

    config = load_config(
        overrides={
            "corpus": {"kind": "voicebank_demand", "count_scale": a.scale, "voicebank_demand": {"root": str(root)}}
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        stats = build_recorded_corpus(config, Path(tmp) / "corpus", log=lambda m: None, threads=a.threads)
        corpus_s = time.perf_counter() - t0
        rss_corpus = peak_rss_mb()
        t0 = time.perf_counter()
        build_db(config, f"sqlite:///{tmp}/db.sqlite", corpus_dir=Path(tmp) / "corpus", log=lambda m: None)
        db_s = time.perf_counter() - t0
    rows = stats["recordings"]
    result = {
        "machine": machine_info(),
        "recordings": rows,
        "files": len(files),
        "bytes": size,
        "threads": a.threads,
        "io_floor_s": floor_s,
        "corpus_stage_s": corpus_s,
        "db_build_s": db_s,
        "corpus_rows_per_s": rows / corpus_s,
        "db_rows_per_s": rows / db_s,
        "corpus_vs_io_floor": corpus_s / floor_s,
        "peak_rss_mb_after_floor": rss_floor,
        "peak_rss_mb_after_corpus": rss_corpus,
        "peak_rss_mb": peak_rss_mb(),
    }
    write_json_atomic(a.out, result)
    print(f"{rows} recordings, {len(files)} files ({size / 1e9:.2f} GB), {a.threads} threads")
    print(f"I/O floor (read + sha256 every file): {floor_s:7.1f} s")
    print(
        f"corpus stage (scan + checks + manifest): {corpus_s:7.1f} s  {rows / corpus_s:7.0f} rows/s  "
        f"{corpus_s / floor_s:.2f}x the floor"
    )
    print(f"mixture DB build:                        {db_s:7.1f} s  {rows / db_s:7.0f} rows/s")
    print(
        f"peak RSS: {rss_floor:.0f} MB after the floor, {rss_corpus:.0f} MB after the corpus stage, "
        f"{result['peak_rss_mb']:.0f} MB at the end"
    )
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
