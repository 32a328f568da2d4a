"""Mixture-DB build at scale: rows/s and peak memory for 100 000 vs 1 000 000 mixture rows.

Builds the metadata-only DB (no audio rendering) from a small synthetic corpus and small rooms in a
temp dir. Each size runs in a fresh subprocess twice: once plain (wall time, rows/s, peak RSS and
the RSS before the build so the build's own growth is visible), once under ``tracemalloc`` (peak
of Python allocations during ``build_db``; slower, so its time is not used). Peak RSS is
``VmHWM`` of the child's own process image (``ru_maxrss`` is not used on Linux).

Rates are given per wall-clock second and per CPU second of the build process (user + system,
``time.process_time``); on a machine shared with other work the CPU rate is the fair comparison,
as a short run and a long one do not see the same load.

What it shows: the build is linear -- the rate at the largest size divided by the rate at the
smallest (``rate ratio``) should be near 1 (goal: >= 0.8) -- and streams: rows are generated
lazily and inserted in chunks of 5 000, key collisions are checked by unique-index probes against
the DB, so the memory peaks are (nearly) the same for every size.

The world (30 speech files and 24 noises per split, rooms 4/2/2) gives 30 x 24 x 23 x rooms x 151
SNR values distinct keys per split, so 1 M rows fill under 10 % of the key space and redraws stay
rare (the ``fill`` and ``redrawn`` columns). A nearly full key space costs redraws, i.e. more
candidate rows per stored row -- inherent to drawing unique keys, not the build's scaling.

    uv run python bench/bench_db_scale.py [--sizes 100000 1000000] [--out bench/out/bench_db_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mib
from se_lib.io import write_json_atomic

SPEECH_PER_SPLIT, NOISE_PER_SPLIT = 30, 24
ROOMS = {"count": {"train": 4, "val": 2, "test": 2}, "max_rir_seconds": 0.1, "rt60_range": [0.15, 0.25]}
SNR_RANGE = [-5.0, 10.0]


def _split_counts(n: int) -> dict[str, int]:
    return {"train": n - 2 * (n // 10), "val": n // 10, "test": n // 10}


def key_fill(n: int) -> float:
    """Largest fraction of a split's distinct (speech, noise pair, room, SNR) keys that ``n`` rows use."""
    snrs = round((SNR_RANGE[1] - SNR_RANGE[0]) * 10) + 1
    space = {
        s: SPEECH_PER_SPLIT * NOISE_PER_SPLIT * (NOISE_PER_SPLIT - 1) * k * snrs for s, k in ROOMS["count"].items()
    }
    return max(c / space[s] for s, c in _split_counts(n).items())


def child(root: Path, n: int, trace: bool) -> dict:
    """Runs in a subprocess: build the DB for ``n`` rows, report time and memory."""
    import tracemalloc

    from se_lib.config import load_config
    from se_lib.data import db as dbm

    config = load_config(
        REPO / "config" / "config.yaml",
        {
            "seed": 1,
            "sample_rate": 16000,
            "rooms": ROOMS,
            "mixtures": {"count": _split_counts(n), "seconds": 3.0, "snr_range": SNR_RANGE},
        },
    )
    url = f"sqlite:///{root / f'mixtures-{n}-{int(trace)}.sqlite'}"
    rss_before = peak_rss_mib()
    if trace:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    logged: list[str] = []
    digest = dbm.build_db(config, url, root / "corpus", root / "rooms", root=root, log=logged.append)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    size = os.path.getsize(url.removeprefix("sqlite:///"))
    redrawn = re.search(r"(\d+) redrawn key collisions", logged[-1])
    if redrawn is None:
        raise SystemExit(f"unexpected build_db log line: {logged[-1]!r}")
    return {
        "rows": n,
        "seconds": seconds,
        "rows_per_s": n / seconds,
        "cpu_seconds": cpu_seconds,
        "rows_per_cpu_s": n / cpu_seconds,
        "redrawn": int(redrawn.group(1)),
        "key_fill": key_fill(n),
        "rss_before_mib": rss_before,
        "rss_peak_mib": peak_rss_mib(),
        "tracemalloc_peak_mib": None if peak is None else peak / 2**20,
        "db_mib": size / 2**20,
        "digest": digest,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--out", default=str(REPO / "bench" / "out" / "bench_db_scale.json"))
    p.add_argument("--child", nargs=3, metavar=("ROOT", "N", "TRACE"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(Path(a.child[0]), int(a.child[1]), a.child[2] == "1")))
        return
    from bench_render import write_synthetic_corpus
    from se_lib.config import load_config
    from se_lib.data.rooms import build_rooms

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_corpus(root, speech_per_split=SPEECH_PER_SPLIT, noise_per_split=NOISE_PER_SPLIT)
        config = load_config(REPO / "config" / "config.yaml", {"seed": 1, "sample_rate": 16000, "rooms": ROOMS})
        build_rooms(config, root / "rooms", root / "corpus", log=lambda m: None, root=root)
        for n in a.sizes:
            row = {}
            for trace in (False, True):
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", str(root), str(n), str(int(trace))],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    raise SystemExit(f"child failed for n={n}:\n{proc.stderr}")
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                if trace:
                    row["tracemalloc_peak_mib"] = r["tracemalloc_peak_mib"]
                    row["seconds_traced"] = r["seconds"]
                else:
                    row.update({k: v for k, v in r.items() if k != "tracemalloc_peak_mib"})
            results.append(row)
    print(
        f"{'rows':>8}{'build s':>9}{'rows/s':>9}{'CPU s':>7}{'rows/CPU s':>11}{'fill':>6}{'redrawn':>9}"
        f"{'RSS before':>12}{'RSS peak':>10}{'growth':>8}{'tracemalloc':>13}{'DB size':>9}"
    )
    for r in results:
        print(
            f"{r['rows']:>8}{r['seconds']:>9.1f}{r['rows_per_s']:>9.0f}{r['cpu_seconds']:>7.1f}"
            f"{r['rows_per_cpu_s']:>11.0f}{r['key_fill']:>6.1%}{r['redrawn']:>9}"
            f"{r['rss_before_mib']:>10.1f}Mi{r['rss_peak_mib']:>8.1f}Mi"
            f"{r['rss_peak_mib'] - r['rss_before_mib']:>6.1f}Mi"
            f"{r['tracemalloc_peak_mib']:>11.2f}Mi{r['db_mib']:>7.1f}Mi"
        )
    summary = None
    if len(results) >= 2:
        a0, a1 = results[0], results[-1]
        summary = {
            "rows": [a0["rows"], a1["rows"]],
            "rows_per_s": [a0["rows_per_s"], a1["rows_per_s"]],
            "rate_ratio": a1["rows_per_s"] / a0["rows_per_s"],
            "rows_per_cpu_s": [a0["rows_per_cpu_s"], a1["rows_per_cpu_s"]],
            "cpu_rate_ratio": a1["rows_per_cpu_s"] / a0["rows_per_cpu_s"],
            "rss_peak_mib": [a0["rss_peak_mib"], a1["rss_peak_mib"]],
            "tracemalloc_peak_mib": [a0["tracemalloc_peak_mib"], a1["tracemalloc_peak_mib"]],
        }
        print(
            f"{a0['rows']} rows: {a0['rows_per_s']:.0f} rows/s, {a1['rows']} rows: {a1['rows_per_s']:.0f} "
            f"rows/s, rate ratio {summary['rate_ratio']:.2f} (linear: 1, goal >= 0.8); per CPU second "
            f"{a0['rows_per_cpu_s']:.0f} vs {a1['rows_per_cpu_s']:.0f}, ratio {summary['cpu_rate_ratio']:.2f}; "
            f"peak RSS "
            f"{a0['rss_peak_mib']:.0f} vs {a1['rss_peak_mib']:.0f} MiB, tracemalloc peak "
            f"{a0['tracemalloc_peak_mib']:.1f} vs {a1['tracemalloc_peak_mib']:.1f} MiB"
        )
    load = os.getloadavg()
    print(f"load average at the end (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    out = Path(a.out)
    write_json_atomic(
        out,
        {
            "results": results,
            "summary": summary,
            "loadavg": list(load),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
