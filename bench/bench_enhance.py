"""``se enhance`` benchmark: start-up, the cost of chunking, and memory over recording length.

(a) Start-up to the first audio read: ``python -m se_lib.inference.enhance --model CKPT one.wav -o OUT
    --dry-run`` (parse, load the checkpoint, find and check the input -- the check pass reads its samples
    -- and exit) against ``python -c "import torch, soundfile"``, alternated in fresh processes in the same
    run; medians and the ratio (goal <= 1.3). The ``se enhance`` console script too, when ``se`` has the
    subcommand.

(b) Throughput, CPU, one thread: the network's own inference on the whole recording in one forward pass
    (``net(x)`` on ``[1, C, T]``, and on a batch of 10-s pieces) against ``Enhancer.enhance_file`` on the
    same recording as a file (read in blocks, 10-s chunks with 1-s crossfades, overlap-add, written as a
    WAV: everything ``se enhance`` does but the scores), alternated per repeat; medians of wall-clock and
    process CPU time and the ratios chunked/whole (goal <= 1.10). One thread, because on a shared,
    oversubscribed machine OpenMP's barrier spinning with more threads measures the other load, not the
    code (timings of 5-s calls varied 4x with 2 threads on a 2-core box at load 8).

(c) Peak RSS (``VmHWM`` of a fresh child) of ``se enhance --no-dnsmos`` on a 1-minute and a long
    (``--long-minutes``) 4-channel 16-kHz recording: flat means the long run's peak is close to the short
    one's (goal: within 2x). With ``--dnsmos-minutes M`` also with the DNSMOS scores on a 1-minute vs an
    M-minute recording. The recordings are written block by block (the benchmark never holds them).

The network: IC Conv-TasNet at the demo size (config/models/demo/ic_conv_tasnet.yaml, 4 microphones),
randomly initialised, saved as a checkpoint laid out as ``se fit`` writes one.

    uv run python bench/bench_enhance.py [--repeats 5] [--long-minutes 60] [--dnsmos-minutes 0]
        [--skip-startup] [--skip-speed] [--skip-memory]

Writes ``bench/out/bench_enhance.json`` and prints a summary. Numbers are ratios/peaks measured side by
side in one run, never wall-clock targets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import last_json, machine_info, peak_rss_mib, run_script  # noqa: E402
from se_lib.io import write_json_atomic  # noqa: E402

SR = 16000
MICS = 4
NET = {
    "class_path": "se_lib.models.ic_conv_tasnet.ICConvTasNet",
    "init_args": {"in_channels": MICS, "N": 64, "L": 32, "B": 8, "Cs": 8, "H": 16, "P": 3, "X": 4, "R": 2},
}


def make_checkpoint(path: Path) -> Path:
    import torch

    from se_lib.inference.checkpoint import import_class

    torch.manual_seed(0)
    net = import_class(NET["class_path"])(**NET["init_args"])
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            "hyper_parameters": {"net": NET, "sample_rate": SR},
        },
        path,
    )
    return path


def write_recording(path: Path, seconds: float, seed: int = 0, block_s: float = 10.0) -> Path:
    """A ``MICS``-channel PCM_16 WAV of noisy harmonic 'speech', written block by block (flat memory)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n, block = int(seconds * SR), int(block_s * SR)
    with sf.SoundFile(str(path), "w", SR, MICS, subtype="PCM_16") as f:
        for b0 in range(0, n, block):
            m = min(block, n - b0)
            t = (b0 + np.arange(m)) / SR
            f0 = 140 * (1 + 0.2 * np.sin(2 * np.pi * 0.3 * t))
            phase = 2 * np.pi * np.cumsum(f0) / SR
            speech = sum(np.sin(k * phase) / k for k in range(1, 10)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
            x = 0.1 * speech[:, None] + 0.03 * rng.standard_normal((m, MICS))
            f.write(x.astype(np.float32))
    return path


# ------------------------------------------------------------------------------------------ start-up
def _time_cmd(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return took


def bench_startup(repeats: int, ckpt: Path, tmp: Path) -> dict:
    wav = write_recording(tmp / "one.wav", 1.0)
    out = tmp / "startup-out"
    cmds = {
        "import_torch_soundfile": [sys.executable, "-c", "import torch, soundfile"],
        "enhance_module": [
            sys.executable,
            "-m",
            "se_lib.inference.enhance",
            "--model",
            str(ckpt),
            str(wav),
            "-o",
            str(out),
            "--dry-run",
            "-q",
        ],
    }
    se = shutil.which("se", path=str(Path(sys.executable).parent))
    if se:
        from se_lib.train.cli import LIGHT_SUBCOMMANDS

        if "enhance" in LIGHT_SUBCOMMANDS:
            cmds["se_enhance"] = [se, "enhance", *cmds["enhance_module"][3:]]
    for cmd in cmds.values():  # warm the page cache
        _time_cmd(cmd)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for i in range(repeats):
        order = list(cmds) if i % 2 == 0 else list(reversed(cmds))
        for name in order:
            times[name].append(_time_cmd(cmds[name]))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["import_torch_soundfile"]
    return {
        "median_s": med,
        "all_s": times,
        "ratio_over_import": {k: v / base for k, v in med.items() if k != "import_torch_soundfile"},
        "se_enhance_wired": "se_enhance" in cmds,
    }


# --------------------------------------------------------------------------------------------- speed
def bench_speed(repeats: int, seconds: float, ckpt: Path, tmp: Path) -> dict:
    import numpy as np
    import soundfile as sf
    import torch

    from se_lib.inference.checkpoint import load_network
    from se_lib.inference.enhance import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS, Enhancer

    torch.set_num_threads(1)
    loaded = load_network(ckpt)
    net = loaded.net
    wav = write_recording(tmp / "speed.wav", seconds, seed=1)
    x, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    whole = torch.from_numpy(np.ascontiguousarray(x.T))[None]  # [1, C, T]
    piece = 10 * SR
    pieces = whole[..., : (whole.shape[-1] // piece) * piece]
    batch = pieces.reshape(MICS, -1, piece).transpose(0, 1).contiguous()  # [T // piece, C, piece]
    enhancer = Enhancer(loaded)
    plan = enhancer.plan(MICS)

    def timed(fn) -> tuple[float, float]:
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - w0, time.process_time() - c0

    def run_whole() -> None:
        with torch.inference_mode():
            net(whole)

    def run_batch() -> None:
        with torch.inference_mode():
            net(batch)

    def run_chunked() -> None:
        enhancer.enhance_file(wav, tmp / "speed_enhanced.wav", plan)

    runs = {"whole_file_forward": run_whole, "batch_of_10s_forward": run_batch, "se_enhance_chunked": run_chunked}
    for fn in runs.values():  # warm-up (oneDNN primitives, allocator)
        fn()
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for i in range(repeats):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))
        for name in order:
            w, c = timed(runs[name])
            wall[name].append(w)
            cpu[name].append(c)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return {
        "config": {
            "seconds": seconds,
            "mics": MICS,
            "net": NET,
            "parameters": loaded.parameters,
            "chunk_seconds": DEFAULT_CHUNK_SECONDS,
            "overlap_seconds": DEFAULT_OVERLAP_SECONDS,
            "threads": 1,
            "repeats": repeats,
        },
        "median_s": med,
        "median_cpu_s": med_cpu,
        "all_s": wall,
        "all_cpu_s": cpu,
        "rtf": {k: v / seconds for k, v in med.items()},
        "ratio_chunked_over_whole": med["se_enhance_chunked"] / med["whole_file_forward"],
        "cpu_ratio_chunked_over_whole": med_cpu["se_enhance_chunked"] / med_cpu["whole_file_forward"],
        "cpu_ratio_chunked_over_batch": med_cpu["se_enhance_chunked"] / med_cpu["batch_of_10s_forward"],
    }


# -------------------------------------------------------------------------------------------- memory
def child_enhance(ckpt: str, wav: str, out: str, dnsmos: bool) -> dict:
    from se_lib.inference.enhance import main as enhance_main

    before = peak_rss_mib()
    t0 = time.perf_counter()
    args = ["--model", ckpt, wav, "-o", out, "-q", "--device", "cpu", "--threads", "1"]
    rc = enhance_main(args if dnsmos else [*args, "--no-dnsmos"])
    return {"rc": rc, "peak_rss_mib": peak_rss_mib(), "rss_before_mib": before, "wall_s": time.perf_counter() - t0}


def bench_memory(long_minutes: float, dnsmos_minutes: float, ckpt: Path, tmp: Path) -> dict:
    import soundfile as sf

    result: dict = {}
    plans = [("no_dnsmos", False, long_minutes)]
    if dnsmos_minutes:
        plans.append(("dnsmos", True, dnsmos_minutes))
    for key, dnsmos, minutes in plans:
        rows = []
        for m in (1.0, minutes):
            wav = write_recording(tmp / f"rec_{m:g}min.wav", 60 * m, seed=2)
            out = tmp / f"out_{key}_{m:g}"
            r = last_json(run_script(__file__, "_child", str(ckpt), str(wav), str(out), "1" if dnsmos else "0"))
            r.update(minutes=m, file_mib=wav.stat().st_size / 2**20)
            enhanced = out / f"rec_{m:g}min_enhanced.wav"
            r["output_frames_equal_input"] = sf.info(str(enhanced)).frames == sf.info(str(wav)).frames
            r["rtf"] = r["wall_s"] / (60 * m)
            rows.append(r)
            print(
                f"  {key} {m:g} min ({r['file_mib']:.0f} MiB file): peak RSS {r['peak_rss_mib']:.0f} MiB, "
                f"wall {r['wall_s']:.1f} s (RTF {r['rtf']:.3f}), same length {r['output_frames_equal_input']}",
                flush=True,
            )
            shutil.rmtree(out, ignore_errors=True)
            if m != 1.0:
                wav.unlink()
        result[key] = {"runs": rows, "peak_ratio_long_over_1min": rows[1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]}
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        print(json.dumps(child_enhance(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1")))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--speed-seconds", type=float, default=60.0)
    ap.add_argument("--long-minutes", type=float, default=60.0)
    ap.add_argument("--dnsmos-minutes", type=float, default=0.0)
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "bench_enhance.json"))
    args = ap.parse_args()
    result: dict = {"machine": machine_info()}
    with tempfile.TemporaryDirectory(prefix="bench-enhance-") as tmp_name:
        tmp = Path(tmp_name)
        ckpt = make_checkpoint(tmp / "ic_conv_tasnet.ckpt")
        if not args.skip_startup:
            print("(a) start-up to the first audio read vs `python -c 'import torch, soundfile'`", flush=True)
            st = bench_startup(args.repeats, ckpt, tmp)
            result["startup"] = st
            for name, ratio in st["ratio_over_import"].items():
                print(
                    f"  {name}: {st['median_s'][name]:.2f} s vs import {st['median_s']['import_torch_soundfile']:.2f} s"
                    f" -> ratio {ratio:.2f}"
                )
        if not args.skip_speed:
            print(f"(b) throughput on a {args.speed_seconds:g}-s {MICS}-mic recording, CPU, 1 thread", flush=True)
            sp = bench_speed(args.repeats, args.speed_seconds, ckpt, tmp)
            result["speed"] = sp
            for name in sp["median_s"]:
                print(
                    f"  {name}: wall {sp['median_s'][name]:.2f} s, CPU {sp['median_cpu_s'][name]:.2f} s "
                    f"(RTF {sp['rtf'][name]:.3f})"
                )
            print(
                f"  chunked/whole: wall {sp['ratio_chunked_over_whole']:.3f}, "
                f"CPU {sp['cpu_ratio_chunked_over_whole']:.3f}; "
                f"chunked/batch CPU {sp['cpu_ratio_chunked_over_batch']:.3f}"
            )
        if not args.skip_memory:
            print(f"(c) peak RSS, 1 min vs {args.long_minutes:g} min of {MICS}-channel audio", flush=True)
            mem = bench_memory(args.long_minutes, args.dnsmos_minutes, ckpt, tmp)
            result["memory"] = mem
            for key, m in mem.items():
                print(f"  {key}: long/1-min peak RSS ratio {m['peak_ratio_long_over_1min']:.3f}")
    result["machine"]["load_avg_end"] = os.getloadavg()
    write_json_atomic(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
