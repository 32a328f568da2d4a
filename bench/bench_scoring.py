"""Benchmark of the metrics library, side by side in one run (numbers are ratios against a reference
measured in the same run, on the same machine, never absolute targets).

(a) Scoring throughput (files/s): ``score_directory(threads=W)`` (process pool, W workers) vs a plain
    sequential loop over the same library calls (soundfile read, SI-SDR/SI-SDRi, PESQ-WB, STOI, ESTOI,
    DNSMOS) on the same folder: cold (each in a fresh process, as a workflow job: interpreter start,
    imports, model loading and pool start included) and warm (in this process, after a warm-up). CPU
    seconds of all processes and the cores they obtained (CPU s / wall s) show how much of the machine
    the run actually got: on a shared machine the wall-clock speedup is bounded by that. Warm, a third
    side gives the machine's own ceiling for this work: the same plain loop on 1/W of the files in each
    of W warm single-threaded processes at once (two busy vCPUs of a small VM rarely give 2x).
    Also checks that both produce the same numbers.
(b) DNSMOS per utterance: ``se_lib.metrics.dnsmos.DNSMOS`` vs ``speechmos.dnsmos.run`` with the same
    ONNX Runtime thread setting (ORT default), warm (after one call each; the cold first call is reported
    separately), alternating per utterance; on the workflow's 3.0 s mixtures and on natural-length
    synthetic sentences. Reports the largest score difference.
(c) Peak memory of a scoring run vs the number of files: the scorer runs in a fresh subprocess per size;
    peak RSS of the main process, of the largest worker, and of the whole run (main + workers, sampled
    from /proc at 20 Hz; Linux only).

Usage::

    uv run python bench/bench_scoring.py            # default sizes: ~3 min on 2 idle cores, more when shared
    uv run python bench/bench_scoring.py --files 12 --utterances 4 --mem-sizes 8 24   # quick

Writes ``bench/out/bench_scoring.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Single-threaded BLAS/OpenMP for the sequential reference too (the scorer's workers run that way), set
# before numpy is imported; ONNX Runtime threads are set per session.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import last_json, run_script, status_kb  # noqa: E402
from se_lib.io import write_json_atomic  # noqa: E402

SR = 16000
SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
]


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------
def speech(i: int) -> np.ndarray:
    """Natural-length synthetic sentence ``i`` (eSpeak NG, varied rate/pitch), 16 kHz float32."""
    from se_lib.data.audio import resample_audio
    from se_lib.data.espeak import ESPEAK_SAMPLE_RATE, synthesize

    x = synthesize(SENTENCES[i % len(SENTENCES)], "en", rate=150 + 10 * (i % 5), pitch=35 + 7 * (i % 6), seed=i)
    return (resample_audio(x, ESPEAK_SAMPLE_RATE, SR) * np.float32(0.7)).astype(np.float32)


def _noise_like(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    n = rng.standard_normal(x.shape).astype(np.float32)
    return n * np.float32(np.sqrt(np.mean(x**2) / np.mean(n**2) / 10 ** (snr_db / 10)))


def make_mixtures(folder: Path, count: int, seconds: float = 3.0, mics: int = 4, seed: int = 0) -> Path:
    """``count`` mixtures named like the prediction writer's files (noisy [T, C], enhanced, target)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    cache: dict[int, np.ndarray] = {}
    for i in range(count):
        k = i % len(SENTENCES)
        if k not in cache:
            cache[k] = speech(k)
        x = np.pad(cache[k], (0, max(0, n - len(cache[k]))))[:n]
        snr = float(rng.uniform(-5, 10))
        noisy = np.stack([np.roll(x, 2 * c) + _noise_like(x, snr, rng) for c in range(mics)], axis=1)
        enhanced = x + _noise_like(x, snr + 12.0, rng)
        stem = f"sid_s{i:04d}_nids_n{i % 7}_n{(i + 3) % 7}_rid_r{i % 3}_snr_{round(snr, 1):g}dB"
        sf.write(folder / f"{stem}_target.wav", x, SR, subtype="FLOAT")
        sf.write(folder / f"{stem}_noisy.wav", noisy, SR, subtype="FLOAT")
        sf.write(folder / f"{stem}_enhanced.wav", enhanced, SR, subtype="FLOAT")
    return folder


def _descendants(root: int) -> list[int]:
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = [], [root]
    while frontier:
        kids = [pid for pid, ppid in parent.items() if ppid in frontier]
        out += kids
        frontier = kids
    return out


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


class TreeMonitor:
    """Samples this process's descendants (Linux /proc, 20 Hz): peak summed RSS (with this process), the
    largest child VmHWM, and the CPU seconds they used meanwhile (last value seen per pid, so a child's
    last < 50 ms can be missed). Worker processes of a forkserver are grandchildren: /proc is the only
    place that sees them."""

    def __init__(self) -> None:
        import threading

        self.me = os.getpid()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.total_rss_kb = 0
        self.child_hwm_kb = 0
        self.child_cpu: dict[int, float] = {}

    def _run(self) -> None:
        while not self.stop.is_set():
            kids = _descendants(self.me)
            self.total_rss_kb = max(self.total_rss_kb, sum(status_kb(p, "VmRSS") for p in [self.me, *kids]))
            self.child_hwm_kb = max([self.child_hwm_kb, *(status_kb(p, "VmHWM") for p in kids)])
            for pid in kids:
                self.child_cpu[pid] = max(self.child_cpu.get(pid, 0.0), _cpu_s(pid) - self.base.get(pid, 0.0))
            self.stop.wait(0.05)

    def __enter__(self) -> TreeMonitor:
        self.cpu0 = _cpu_s(self.me)
        self.base = {pid: _cpu_s(pid) for pid in _descendants(self.me)}  # e.g. an idle fork server
        self.t0 = time.perf_counter()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self.stop.set()
        self.thread.join()
        self.cpu = _cpu_s(self.me) - self.cpu0 + sum(self.child_cpu.values())


# --------------------------------------------------------------------------------------------------
# (a) throughput
# --------------------------------------------------------------------------------------------------
def sequential_loop(folder: Path, model=None, ref_mic: int = 0) -> dict[str, dict[str, float]]:
    """The reference: a plain loop over the library calls in one process (DNSMOS models loaded once)."""
    from se_lib.metrics.dnsmos import DNSMOS
    from se_lib.metrics.pesq_wb import pesq_wb
    from se_lib.metrics.si_sdr import si_sdr
    from se_lib.metrics.stoi import stoi

    model = model or DNSMOS(num_threads=1)
    out = {}
    for target_path in sorted(folder.glob("*_target.wav")):
        stem = target_path.name[: -len("_target.wav")]
        target, _ = sf.read(target_path, dtype="float32")
        enhanced, _ = sf.read(folder / f"{stem}_enhanced.wav", dtype="float32")
        noisy, _ = sf.read(folder / f"{stem}_noisy.wav", dtype="float32")
        s = si_sdr(enhanced, target)
        d = model.score(enhanced, SR)
        out[stem] = {
            "si_sdr": s,
            "si_sdri": s - si_sdr(noisy[:, ref_mic], target),
            "pesq_wb": pesq_wb(target, enhanced, SR),
            "stoi": stoi(target, enhanced, SR),
            "estoi": stoi(target, enhanced, SR, extended=True),
            **d.as_dict(),
        }
    return out


def _throughput_child(kind: str, folder: str, workers: int) -> None:
    if kind == "sequential":
        n = len(sequential_loop(Path(folder)))
    else:
        from se_lib.metrics.scorer import score_directory

        n = len(score_directory(folder, None, None, threads=workers, progress=False))
    print(json.dumps({"files": n}))


def _subset(folder: Path, dest: Path, count: int) -> Path:
    dest.mkdir()
    for target in sorted(folder.glob("*_target.wav"))[:count]:
        stem = target.name[: -len("_target.wav")]
        for kind in ("target", "noisy", "enhanced"):
            os.link(folder / f"{stem}_{kind}.wav", dest / f"{stem}_{kind}.wav")
    return dest


_CEILING: dict = {}


def _ceiling_init(warm: str) -> None:
    from se_lib.metrics.dnsmos import DNSMOS

    _CEILING["model"] = DNSMOS(num_threads=1)
    sequential_loop(Path(warm), _CEILING["model"])  # imports, JIT and first-call costs paid before timing


def _ceiling_part(folder: str) -> int:
    return len(sequential_loop(Path(folder), _CEILING["model"]))


def _split(folder: Path, dest: Path, parts: int) -> list[Path]:
    """``parts`` folders of hard links that together hold every mixture of ``folder`` once."""
    stems = [t.name[: -len("_target.wav")] for t in sorted(folder.glob("*_target.wav"))]
    out = []
    for k in range(parts):
        d = dest / f"part{k}"
        d.mkdir(parents=True)
        for stem in stems[k::parts]:
            for kind in ("target", "noisy", "enhanced"):
                os.link(folder / f"{stem}_{kind}.wav", d / f"{stem}_{kind}.wav")
        out.append(d)
    return out


def bench_throughput(folder: Path, workers: int, repeats: int = 2) -> dict:
    """Cold: each side as a fresh process, as a workflow job runs it (interpreter start, imports, model
    loading, pool start all included). Warm: in this process after a warm-up on 2 files (imports done,
    fork server up; the scorer still forks its workers and loads their models inside the timing).
    Sequential and scorer runs alternate, ``repeats`` times each; the best (shortest) run of each is
    compared, the standard way to read timings on a shared machine (all runs are kept in the JSON)."""
    from se_lib.metrics.dnsmos import DNSMOS
    from se_lib.metrics.scorer import score_directory

    n = len(list(folder.glob("*_target.wav")))
    runs: dict[str, list[dict]] = {k: [] for k in ("cold_sequential", "cold_scorer", "warm_sequential", "warm_scorer")}

    def record(key: str, mon: TreeMonitor) -> None:
        runs[key].append(
            {
                "wall_s": mon.wall,
                "cpu_s": mon.cpu,
                "files_per_s": n / mon.wall,
                "cores_used": mon.cpu / mon.wall,
                "load_avg_1min": os.getloadavg()[0],
            }
        )

    for _ in range(repeats):
        for kind in ("sequential", "scorer"):
            with TreeMonitor() as mon:
                run_script(__file__, "--throughput-child", kind, str(folder), "--workers", str(workers))
            record(f"cold_{kind}", mon)

    warm = _subset(folder, folder.parent / "warmup", 2)
    model = DNSMOS(num_threads=1)
    sequential_loop(warm, model)
    score_directory(warm, None, None, threads=workers, progress=False)
    # The machine's own ceiling for this work: the plain loop on 1/workers of the files in each of
    # ``workers`` warm, independent, single-threaded processes at once (no scheduler, no IPC). On a
    # small VM two busy vCPUs rarely give 2x; the scorer is judged against this as well as against 1x.
    parts = _split(folder, folder.parent / "ceiling", workers)
    import multiprocessing

    from se_lib.metrics.scorer import single_threaded_children

    with single_threaded_children():
        ceiling_pool = multiprocessing.get_context("spawn").Pool(
            workers, initializer=_ceiling_init, initargs=(str(warm),)
        )
    ceiling_pool.map(_ceiling_part, [str(warm)] * workers)  # every process started and warm
    runs["warm_ceiling"] = []
    try:
        for _ in range(repeats):
            with TreeMonitor() as mon:
                ref = sequential_loop(folder, model)
            record("warm_sequential", mon)
            with TreeMonitor() as mon:
                df = score_directory(folder, None, None, threads=workers, progress=False)
            record("warm_scorer", mon)
            with TreeMonitor() as mon:
                done = sum(ceiling_pool.map(_ceiling_part, [str(p) for p in parts], chunksize=1))
            assert done == n, (done, n)
            record("warm_ceiling", mon)
    finally:
        ceiling_pool.close()
        ceiling_pool.join()

    out: dict = {"files": n, "workers": workers, "repeats": repeats, "all_runs": runs}
    for key, values in runs.items():
        out[key] = min(values, key=lambda r: r["wall_s"])
    for phase in ("cold", "warm"):
        out[f"{phase}_scorer"]["speedup"] = out[f"{phase}_sequential"]["wall_s"] / out[f"{phase}_scorer"]["wall_s"]
    out["warm_ceiling"]["speedup"] = out["warm_sequential"]["wall_s"] / out["warm_ceiling"]["wall_s"]
    out["warm_scorer_of_ceiling"] = out["warm_scorer"]["speedup"] / out["warm_ceiling"]["speedup"]
    out["max_abs_diff"] = max(
        abs(float(row[c]) - ref[row["mixture"]][c]) for _, row in df.iterrows() for c in ref[row["mixture"]]
    )
    return out


# --------------------------------------------------------------------------------------------------
# (b) DNSMOS per utterance
# --------------------------------------------------------------------------------------------------
def bench_dnsmos(utterances: dict[str, list[np.ndarray]]) -> dict:
    from speechmos import dnsmos as speechmos_dnsmos

    from se_lib.metrics.dnsmos import DNSMOS

    warm = np.clip(utterances["mixture_3s"][0], -1, 1)
    t0 = time.perf_counter()
    speechmos_dnsmos.run(warm, SR)  # first call in this process: librosa JIT + session creation
    cold_speechmos = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = DNSMOS(num_threads=None)  # ORT default threads, like speechmos
    ours.score(warm, SR)
    cold_ours = time.perf_counter() - t0

    keys = {"sig": "sig_mos", "bak": "bak_mos", "ovrl": "ovrl_mos", "p808": "p808_mos"}
    result: dict = {"cold_first_call_s": {"speechmos": cold_speechmos, "ours": cold_ours}, "sets": {}}
    for name, clips in utterances.items():
        t_sm, t_ours, max_diff = [], [], 0.0
        for x in clips:
            x = np.clip(x, -1, 1)
            t0 = time.perf_counter()
            ref = speechmos_dnsmos.run(x, SR)
            t_sm.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            got = ours.score(x, SR)
            t_ours.append(time.perf_counter() - t0)
            max_diff = max(max_diff, *(abs(getattr(got, k) - float(ref[v])) for k, v in keys.items()))
        ratios = [a / b for a, b in zip(t_sm, t_ours, strict=True)]
        result["sets"][name] = {
            "utterances": len(clips),
            "seconds": [round(len(x) / SR, 3) for x in clips],
            "speechmos_ms_per_utt": 1000 * statistics.mean(t_sm),
            "ours_ms_per_utt": 1000 * statistics.mean(t_ours),
            "speedup_of_means": statistics.mean(t_sm) / statistics.mean(t_ours),
            "speedup_median": statistics.median(ratios),
            "speedup_min": min(ratios),
            "speedup_max": max(ratios),
            "max_abs_score_diff": max_diff,
        }
    return result


# --------------------------------------------------------------------------------------------------
# (c) memory
# --------------------------------------------------------------------------------------------------
def _mem_child(folder: str, workers: int) -> None:
    """Score ``folder`` while sampling the RSS of this process and of its workers."""
    from se_lib.metrics.scorer import score_directory

    with TreeMonitor() as mon:
        df = score_directory(folder, None, None, threads=workers, progress=False)
    print(
        json.dumps(
            {
                "files": len(df),
                "seconds": mon.wall,
                "main_peak_rss_mb": status_kb(os.getpid(), "VmHWM") / 1024,  # VmHWM restarts at exec (ru_maxrss not)
                "worker_peak_rss_mb": mon.child_hwm_kb / 1024,
                "total_peak_rss_mb": mon.total_rss_kb / 1024,  # main + fork server + workers at the same instant
            }
        )
    )


def bench_memory(root: Path, sizes: list[int], workers: int, source: Path) -> list[dict]:
    rows = []
    for n in sizes:
        folder = root / f"mem_{n}"
        folder.mkdir()
        available = sorted(source.glob("*_target.wav"))
        for i in range(n):  # hard links to the same audio under new mixture names
            stem = available[i % len(available)].name[: -len("_target.wav")]
            new = stem.replace("sid_s", f"sid_c{i:04d}x", 1)
            for kind in ("target", "noisy", "enhanced"):
                os.link(source / f"{stem}_{kind}.wav", folder / f"{new}_{kind}.wav")
        rows.append(last_json(run_script(__file__, "--mem-child", str(folder), "--workers", str(workers))))
    return rows


# --------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=24, help="mixtures for the throughput comparison (a)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side in (a); the best is compared")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--utterances", type=int, default=5, help="utterances per DNSMOS set (b)")
    parser.add_argument("--mem-sizes", type=int, nargs=2, default=[20, 80], help="file counts for (c)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "bench_scoring.json"))
    parser.add_argument("--mem-child", help=argparse.SUPPRESS)
    parser.add_argument("--throughput-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mem_child:
        _mem_child(args.mem_child, args.workers)
        return
    if args.throughput_child:
        _throughput_child(*args.throughput_child, args.workers)
        return

    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_start": os.getloadavg()}
    }
    with tempfile.TemporaryDirectory(prefix="bench_scoring_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        pred = make_mixtures(root / "pred", max(args.files, 1))
        report["data_s"] = time.perf_counter() - t0

        print("(a) throughput ...", flush=True)
        report["throughput"] = bench_throughput(pred, args.workers, args.repeats)

        print("(b) DNSMOS per utterance ...", flush=True)
        mixtures = [sf.read(p, dtype="float32")[0] for p in sorted(pred.glob("*_enhanced.wav"))[: args.utterances]]
        natural = [speech(i) for i in range(args.utterances)]
        report["dnsmos"] = bench_dnsmos({"mixture_3s": mixtures, "natural_sentences": natural})

        print("(c) memory ...", flush=True)
        report["memory"] = bench_memory(root, list(args.mem_sizes), args.workers, pred)
    report["machine"]["load_avg_end"] = os.getloadavg()

    out = Path(args.out)
    write_json_atomic(out, report)

    a, b, c = report["throughput"], report["dnsmos"], report["memory"]
    print(
        f"\nmachine: {os.cpu_count()} CPUs, load average at start {report['machine']['load_avg_start'][0]:.1f}, "
        f"end {report['machine']['load_avg_end'][0]:.1f}"
    )
    print(
        f"\n(a) scoring {a['files']} files (3 s, all metrics), best of {a['repeats']}"
        "  files/s   wall s   CPU s   cores used   speedup"
    )
    for key, label in (
        ("cold_sequential", "fresh process: sequential loop"),
        ("cold_scorer", f"fresh process: scorer, {a['workers']} workers"),
        ("warm_sequential", "warm: sequential loop"),
        ("warm_scorer", f"warm: scorer, {a['workers']} workers"),
        ("warm_ceiling", f"warm: machine ceiling, {a['workers']} loops"),
    ):
        r = a[key]
        speed = f"x{r['speedup']:.2f}" if "speedup" in r else ""
        print(
            f"    {label:<38} {r['files_per_s']:6.2f}  {r['wall_s']:7.1f}  {r['cpu_s']:6.1f}  {r['cores_used']:9.2f}"
            f"     {speed}"
        )
    print(f"    scorer speedup / ceiling speedup (warm): {a['warm_scorer_of_ceiling']:.2f}")
    print(f"    same numbers: max |diff| {a['max_abs_diff']:.2g}")
    print("\n(b) DNSMOS per utterance (warm)    speechmos    ours     speedup (of means / median / min)   max |diff|")
    for name, s in b["sets"].items():
        print(
            f"    {name:<18} ({s['utterances']:2d})  {s['speechmos_ms_per_utt']:7.0f} ms {s['ours_ms_per_utt']:6.0f} ms"
            f"    x{s['speedup_of_means']:.2f} / x{s['speedup_median']:.2f} / x{s['speedup_min']:.2f}"
            f"          {s['max_abs_score_diff']:.1e}"
        )
    cold = b["cold_first_call_s"]
    print(f"    first call in a process: speechmos {cold['speechmos']:.1f} s, ours (load + score) {cold['ours']:.1f} s")
    print("\n(c) peak RSS of a scoring run (fresh subprocess)")
    for row in c:
        print(
            f"    {row['files']:4d} files: whole run {row['total_peak_rss_mb']:6.0f} MB"
            f"  (main {row['main_peak_rss_mb']:.0f} MB,"
            f" largest worker {row['worker_peak_rss_mb']:.0f} MB; {row['seconds']:.1f} s)"
        )
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
