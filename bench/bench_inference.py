"""Inference benchmark: our Conv-TasNet against torchaudio's, and memory of predict/score vs test-set size.

(a) Speed, CPU, paper-size Conv-TasNet (Luo & Mesgarani 2019, Table II: N=512, L=16, B=128, H=512,
    Sc=128, P=3, X=8, R=3, gLN, sigmoid mask, one output): ``se_lib.models.conv_tasnet.ConvTasNet``
    vs ``torchaudio.models.ConvTasNet(num_sources=1, ...)`` with the same arguments (identical
    parameter counts), on the same batches of 4-s 16-kHz audio, under ``torch.inference_mode``,
    alternating the two models per repeat after a warm-up; medians of wall-clock and of process CPU
    time (all threads; robust to other load on a shared machine) and the ratios ours/torchaudio
    (< 1: ours is faster). Ours gets 4-channel input and picks the reference mic, as in the workflow.

(b) Peak memory of the prediction and scoring paths for two test-set sizes, each in a fresh
    subprocess (peak RSS = ``VmHWM`` of the child):
    * predict: Lightning ``Trainer.predict`` (``return_predictions=False``, as the workflow's
      ``se predict`` runs it) of a demo-size Conv-TasNet wrapped in ``EnhancementModule`` with
      :class:`~se_lib.train.prediction_writer.AudioPredictionWriter` (through
      :func:`~se_lib.train.prediction_writer.predict_to_dir`), on 3-s 4-mic mixtures generated
      per item (no mixture DB needed), batch size 4; the same with ``return_predictions=True`` shows
      what keeping the outputs would cost (the measurement is sensitive to growth);
    * score: ``score_directory(threads=1)`` (in-process, all metrics incl. DNSMOS) on the files the
      predict run wrote. The process-pool scorer (``threads > 1``) is measured in bench/bench_scoring.py.
    Flat means the larger run's peak is within a few MiB of the smaller one's.

    uv run python bench/bench_inference.py [--repeats 5] [--sizes 16 64] [--skip-speed] [--skip-memory]

Writes ``bench/out/bench_inference.json`` and prints a summary. Numbers are ratios/peaks measured
side by side in one run, never wall-clock targets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import last_json, machine_info, peak_rss_mib, run_script, torchaudio_conv_tasnet  # noqa: E402
from se_lib.io import write_json_atomic  # noqa: E402

PAPER = dict(N=512, L=16, B=128, H=512, Sc=128, P=3, X=8, R=3)
SR = 16000


# ------------------------------------------------------------------------------------------- speed
def bench_speed(repeats: int, batch: int, seconds: float, threads: int) -> dict:
    import torch

    from se_lib.models.conv_tasnet import ConvTasNet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ours = ConvTasNet(**PAPER, norm="gLN", causal=False, mask_activation="sigmoid", in_channels=1, ref_mic=0).eval()
    ref = torchaudio_conv_tasnet({**PAPER, "mask_activation": "sigmoid"}).eval()
    n_ours = sum(p.numel() for p in ours.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    t = int(seconds * SR)
    noisy = torch.randn(batch, 4, t) * 0.1

    def timed(fn) -> tuple[float, float]:
        w0, c0 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            fn()
        return time.perf_counter() - w0, time.process_time() - c0

    def run_ours() -> None:
        assert ours(noisy).shape == (batch, t)

    def run_ref() -> None:
        assert ref(noisy[:, :1]).shape == (batch, 1, t)

    timed(run_ours), timed(run_ref)  # warm-up (allocator, oneDNN kernels)
    wall: dict[str, list[float]] = {"ours": [], "torchaudio": []}
    cpu: dict[str, list[float]] = {"ours": [], "torchaudio": []}
    for i in range(repeats):
        order = (
            (("ours", run_ours), ("torchaudio", run_ref))
            if i % 2 == 0
            else (("torchaudio", run_ref), ("ours", run_ours))
        )
        for name, fn in order:
            w, c = timed(fn)
            wall[name].append(w)
            cpu[name].append(c)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    audio = batch * seconds
    return {
        "config": {**PAPER, "batch": batch, "seconds": seconds, "threads": threads, "repeats": repeats},
        "parameters": {"ours": n_ours, "torchaudio": n_ref},
        "median_s": med,
        "median_cpu_s": med_cpu,
        "all_s": wall,
        "all_cpu_s": cpu,
        "rtf": {k: v / audio for k, v in med.items()},
        # wall time is what a user waits for; CPU time (all threads) is robust to other load on the machine
        "ratio_ours_over_torchaudio": med["ours"] / med["torchaudio"],
        "cpu_ratio_ours_over_torchaudio": med_cpu["ours"] / med_cpu["torchaudio"],
    }


# ----------------------------------------------------------------------------------------- memory
class _SyntheticMixtures:
    """Map-style dataset of 3-s 4-mic items generated from a per-index seed (constant memory)."""

    def __init__(self, n: int, seconds: float = 3.0) -> None:
        self.n, self.t = n, int(seconds * SR)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        import torch

        g = torch.Generator().manual_seed(i)
        n = self.t - (i % 5) * 800  # varying lengths: batches are padded
        target = 0.1 * torch.randn(n, generator=g)
        noisy = target.expand(4, n) + 0.05 * torch.randn(4, n, generator=g)
        meta = {
            "sid": f"s{i}",
            "nid1": "n1",
            "nid2": "n2",
            "rid": f"r{i % 3}",
            "snr_db": float(i % 15 - 5),
            "split": "test",
            "mid": f"m{i}",
        }
        return {"noisy": noisy, "target": target, "length": n, "mid": f"m{i}", "meta": meta}


def child_predict(n: int, out: str, return_predictions: bool) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from se_lib.data.datamodule import collate_mixtures
    from se_lib.models.conv_tasnet import ConvTasNet
    from se_lib.train.module import EnhancementModule
    from se_lib.train.prediction_writer import predict_to_dir

    torch.set_num_threads(2)
    torch.manual_seed(0)
    module = EnhancementModule(ConvTasNet(N=64, L=16, B=32, H=64, Sc=32, P=3, X=4, R=2), sample_rate=SR)
    before = peak_rss_mib()
    t0 = time.perf_counter()
    loader = DataLoader(_SyntheticMixtures(n), batch_size=4, collate_fn=collate_mixtures, num_workers=0)
    writer = predict_to_dir(module, loader, out, sample_rate=SR, return_predictions=return_predictions)
    return {
        "n": n,
        "peak_rss_mib": peak_rss_mib(),
        "rss_before_mib": before,
        "wall_s": time.perf_counter() - t0,
        "files": len(list(Path(out).glob("*.wav"))),
        "rtf": writer.stats["real_time_factor"],
    }


def child_score(n: int, pred_dir: str) -> dict:
    from se_lib.metrics.scorer import score_directory

    before = peak_rss_mib()
    t0 = time.perf_counter()
    df = score_directory(pred_dir, None, None, mode="enhanced", threads=1, progress=False)
    return {
        "n": n,
        "rows": len(df),
        "peak_rss_mib": peak_rss_mib(),
        "rss_before_mib": before,
        "wall_s": time.perf_counter() - t0,
    }


def _run_child(*args: str) -> dict:
    return last_json(run_script(__file__, "_child", *args))


def bench_memory(sizes: list[int]) -> dict:
    out: dict = {"predict": [], "predict_return_predictions": [], "score": []}
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        for n in sizes:
            pred = str(Path(tmp) / f"pred{n}")
            out["predict"].append(_run_child("predict", str(n), pred, "0"))
            out["predict_return_predictions"].append(_run_child("predict", str(n), str(Path(tmp) / f"keep{n}"), "1"))
            out["score"].append(_run_child("score", str(n), pred))
            print(
                f"  n={n}: predict {out['predict'][-1]['peak_rss_mib']:.0f} MiB, "
                f"predict(return_predictions) {out['predict_return_predictions'][-1]['peak_rss_mib']:.0f} MiB, "
                f"score {out['score'][-1]['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    for key in list(out):
        rows = out[key]
        out[f"{key}_growth_mib"] = rows[-1]["peak_rss_mib"] - rows[0]["peak_rss_mib"]
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        kind = sys.argv[2]
        if kind == "predict":
            print(json.dumps(child_predict(int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1")))
        else:
            print(json.dumps(child_score(int(sys.argv[3]), sys.argv[4])))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--sizes", type=int, nargs=2, default=[16, 64])
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "bench_inference.json"))
    args = ap.parse_args()
    result: dict = {"machine": machine_info()}
    if not args.skip_speed:
        print(f"(a) paper-size Conv-TasNet, batch {args.batch} x {args.seconds:g} s, {args.threads} threads, CPU")
        sp = bench_speed(args.repeats, args.batch, args.seconds, args.threads)
        result["speed"] = sp
        print(f"  parameters ours {sp['parameters']['ours']:,} torchaudio {sp['parameters']['torchaudio']:,}")
        print(
            f"  wall median ours {sp['median_s']['ours']:.3f} s, torchaudio {sp['median_s']['torchaudio']:.3f} s, "
            f"ratio ours/torchaudio {sp['ratio_ours_over_torchaudio']:.3f} (RTF ours {sp['rtf']['ours']:.3f})"
        )
        print(
            f"  CPU-time median ours {sp['median_cpu_s']['ours']:.3f} s, torchaudio "
            f"{sp['median_cpu_s']['torchaudio']:.3f} s, ratio {sp['cpu_ratio_ours_over_torchaudio']:.3f}"
        )
    if not args.skip_memory:
        print(f"(b) peak RSS vs number of test files {args.sizes}")
        mem = bench_memory(args.sizes)
        result["memory"] = mem
        for key in ("predict", "predict_return_predictions", "score"):
            print(f"  {key}: growth {mem[f'{key}_growth_mib']:+.1f} MiB from {args.sizes[0]} to {args.sizes[1]} files")
    result["machine"]["load_avg_end"] = os.getloadavg()
    write_json_atomic(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
