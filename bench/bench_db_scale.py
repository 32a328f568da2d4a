"""Mixture-DB build at scale: time and peak memory for 10 000 vs 100 000 mixture rows.

Builds the metadata-only DB (no audio rendering) from a small synthetic corpus and small rooms in a
temp dir. Each size runs in a fresh subprocess twice: once plain (wall time, rows/s, peak RSS from
``ru_maxrss``, and the RSS before the build so the build's own growth is visible), once under
``tracemalloc`` (peak of Python allocations during ``build_db``; slower, so its time is not used).
Peak RSS is ``VmHWM`` of the child's own process image (``ru_maxrss`` is not used on Linux).
Rows are generated lazily and inserted in chunks of 5 000 with key collisions checked against the
DB, so the peaks should be (nearly) the same for both sizes: that is what "streaming" means here.

    uv run python bench/bench_db_scale.py [--sizes 10000 100000] [--out bench/out/bench_db_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from se_lib.io import write_json_atomic  # noqa: E402


def _split_counts(n: int) -> dict[str, int]:
    return {"train": n - 2 * (n // 10), "val": n // 10, "test": n // 10}


def peak_rss_mib() -> float:
    """Peak resident set of this process image: ``VmHWM`` on Linux (``ru_maxrss`` would include the
    parent's RSS at fork time, as Linux carries it across ``execve``), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1024 if sys.platform != "darwin" else 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024


def child(root: Path, n: int, trace: bool) -> dict:
    """Runs in a subprocess: build the DB for ``n`` rows, report time and memory."""
    import tracemalloc

    from se_lib.config import load_config
    from se_lib.data import db as dbm

    config = load_config(REPO / "config" / "config.yaml", {
        "seed": 1, "sample_rate": 16000,
        "mixtures": {"count": _split_counts(n), "seconds": 3.0, "snr_range": [-5.0, 10.0]},
        "rooms": {"count": {"train": 2, "val": 1, "test": 1}, "max_rir_seconds": 0.1, "rt60_range": [0.15, 0.25]},
    })
    url = f"sqlite:///{root / f'mixtures-{n}-{int(trace)}.sqlite'}"
    rss_before = peak_rss_mib()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    digest = dbm.build_db(config, url, root / "corpus", root / "rooms", root=root, log=lambda m: None)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    size = os.path.getsize(url.removeprefix("sqlite:///"))
    return {"rows": n, "seconds": seconds, "rows_per_s": n / seconds,
            "rss_before_mib": rss_before, "rss_peak_mib": peak_rss_mib(),
            "tracemalloc_peak_mib": None if peak is None else peak / 2**20, "db_mib": size / 2**20,
            "digest": digest}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
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
        # 30 speech x 12 noises (132 ordered pairs) x rooms x 151 SNR values per split: ample keys
        write_synthetic_corpus(root, speech_per_split=30, noise_per_split=12)
        config = load_config(REPO / "config" / "config.yaml", {
            "seed": 1, "sample_rate": 16000,
            "rooms": {"count": {"train": 2, "val": 1, "test": 1}, "max_rir_seconds": 0.1, "rt60_range": [0.15, 0.25]},
        })
        build_rooms(config, root / "rooms", root / "corpus", log=lambda m: None, root=root)
        for n in a.sizes:
            row = {}
            for trace in (False, True):
                proc = subprocess.run([sys.executable, __file__, "--child", str(root), str(n), str(int(trace))],
                                      capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise SystemExit(f"child failed for n={n}:\n{proc.stderr}")
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                if trace:
                    row["tracemalloc_peak_mib"] = r["tracemalloc_peak_mib"]
                    row["seconds_traced"] = r["seconds"]
                else:
                    row.update({k: v for k, v in r.items() if k != "tracemalloc_peak_mib"})
            results.append(row)
    print(f"{'rows':>8}{'build s':>9}{'rows/s':>9}{'RSS before':>12}{'RSS peak':>10}{'growth':>8}"
          f"{'tracemalloc':>13}{'DB size':>9}")
    for r in results:
        print(f"{r['rows']:>8}{r['seconds']:>9.1f}{r['rows_per_s']:>9.0f}{r['rss_before_mib']:>10.1f}Mi"
              f"{r['rss_peak_mib']:>8.1f}Mi{r['rss_peak_mib'] - r['rss_before_mib']:>6.1f}Mi"
              f"{r['tracemalloc_peak_mib']:>11.2f}Mi{r['db_mib']:>7.1f}Mi")
    if len(results) >= 2:
        a0, a1 = results[0], results[-1]
        print(f"rows x{a1['rows'] / a0['rows']:.0f}: time x{a1['seconds'] / a0['seconds']:.1f}, "
              f"tracemalloc peak x{a1['tracemalloc_peak_mib'] / a0['tracemalloc_peak_mib']:.2f}, "
              f"RSS growth x{(a1['rss_peak_mib'] - a1['rss_before_mib']) / max(1e-9, a0['rss_peak_mib'] - a0['rss_before_mib']):.2f}")
    out = Path(a.out)
    write_json_atomic(out, {"results": results, "python": platform.python_version(),
                            "machine": platform.machine(), "cpus": os.cpu_count()})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
