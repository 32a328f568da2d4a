"""Training throughput and memory per model, beside the data loader's throughput.

For every architecture in ``config/models`` at demo size (``config/models/demo/<arch>.yaml``
overlaid) and paper size, one training step is timed on a real batch of 8 mixtures x 4 s x 4 mics at
16 kHz rendered from a mixture DB: forward, negative SI-SDR loss, backward, gradient clipping (5)
and the module's Adam step -- the work of ``EnhancementModule.training_step`` without Lightning's
bookkeeping. Reported: training samples (mixtures) per second (median step), peak memory (CPU:
the child's peak RSS ``VmHWM``; GPU: ``torch.cuda.max_memory_allocated``) and parameter counts.

Beside it, the data loader alone: ``MixtureDataModule.train_dataloader()`` with the configured
``num_workers`` (and with 0 for reference) delivering 4-s crops, in mixtures per second. A model
whose samples/s exceeds the loader's is data-bound. An end-to-end Lightning ``fit`` of the demo
Conv-TasNet with the real loader shows the combined rate.

On an NVIDIA GPU, the paper-size Conv-TasNet is also trained for a few steps under Lightning with
:class:`se_lib.train.callbacks.GPUStatsMonitor`, and its logged GPU utilisation is reported.

``--matrix`` (issue 22, paper-size training on one GPU): per paper config, the same step in fp32 and
bf16 autocast (what ``trainer.precision: bf16-mixed`` runs), without and with activation checkpointing
(``checkpoint_blocks``; Wave-U-Net has none) and, with ``--compile off on``, through ``torch.compile``;
beside Conv-TasNet, ``torchaudio.models.ConvTasNet`` with the same arguments in the same run as the
ratio anchor. Each row adds the activation memory autograd saved in the forward pass
(:func:`se_lib.train.memory.saved_activation_bytes`, exact and device-independent: it scales with
``batch x seconds``) beside the peak memory; on a GPU, each paper config is also fitted under
Lightning at its config's settings with the GPU utilisation logged. On the CPU run it tiny
(``--batch 1 --seconds 0.25``): the ratios are what carries over.

    uv run python bench/bench_train.py --matrix --batch 1 --seconds 0.25 --steps-paper 1 --no-e2e

Each measurement runs in a fresh subprocess (peak RSS is per configuration). On CPU the child's
address space is capped (``--mem-limit-gb``, RLIMIT_AS) so that a paper-size model that does not fit
fails with an allocation error instead of waking the OOM killer; it is then measured at batch 1.
Besides wall time, the CPU time of the step (``process_time``, all threads) is reported: on a shared
machine it is much less sensitive to other jobs than the wall time.

    uv run python bench/bench_train.py [--models conv_tasnet dprnn] [--sizes demo paper]
        [--steps-demo 4] [--steps-paper 2] [--out bench/out/bench_train.json]

The world (synthetic corpus, default-config rooms, 4-mic circular array, 4-s mixtures) is built
in a temp dir with the helpers of bench_render.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mib, status_kb  # noqa: E402
from _common import torchaudio_conv_tasnet as torchaudio_net  # noqa: E402
from se_lib.io import write_json_atomic  # noqa: E402

ARCHS = ("conv_tasnet", "ic_conv_tasnet", "dprnn", "wave_u_net")
SR = 16000
SECONDS = 4.0  # length of the rendered mixtures; the training crop is --seconds (default the same)
CHECKPOINTED = ("conv_tasnet", "ic_conv_tasnet", "dprnn")  # models with `checkpoint_blocks`


# --------------------------------------------------------------------------------- helpers
def net_config(arch: str, size: str) -> dict:
    """``model.init_args.net`` of the paper config, with the demo overlay's net args for ``demo``."""
    import yaml

    from se_lib.config import deep_merge

    cfg = yaml.safe_load((REPO / "config" / "models" / f"{arch}.yaml").read_text())
    if size == "demo":
        cfg = deep_merge(cfg, yaml.safe_load((REPO / "config" / "models" / "demo" / f"{arch}.yaml").read_text()))
    return cfg["model"]["init_args"]["net"]


def configured_workers() -> int:
    """``data.init_args.num_workers`` of the model configs' shared training setup."""
    import yaml

    from se_lib.config import SHARED_MODEL_CONFIG

    cfg = yaml.safe_load(SHARED_MODEL_CONFIG.read_text())
    return int(cfg["data"]["init_args"]["num_workers"])


def build_net(spec: dict):
    import importlib

    module, _, name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**spec.get("init_args", {}))


def datamodule(world: dict, workers: int, batch: int, seconds: float = SECONDS):
    from se_lib.data.datamodule import MixtureDataModule

    return MixtureDataModule(
        db_url=world["url"],
        batch_size=batch,
        num_workers=workers,
        segment_seconds=seconds,
        sample_rate=SR,
        seed=0,
        corpus_root=world["root"],
    )


def vm_size_bytes() -> int:
    return status_kb("self", "VmSize") * 1024


def limit_memory(gib: float) -> None:
    """Allow ``gib`` GiB of address space beyond what the process has mapped now (imports, data)."""
    import resource

    limit = vm_size_bytes() + int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# ---------------------------------------------------------------------------------- children
def child_loader(world: dict, workers: int, batches: int, batch: int) -> dict:
    """Mixtures per second delivered by the training loader (first batch = worker start, excluded)."""
    import torch

    torch.set_num_threads(1)
    loader = datamodule(world, workers, batch).train_dataloader()
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        n += b["noisy"].shape[0]
    seconds = time.perf_counter() - t0
    return {"workers": workers, "mixtures": n, "seconds": seconds, "mixtures_per_s": n / seconds}


def torchaudio_conv_tasnet(spec: dict):
    """``torchaudio.models.ConvTasNet`` with the arguments of our Conv-TasNet config (one source), wrapped to
    take ``[batch, C, T]`` and return ``[batch, T]`` of the reference mic like ours."""
    import torch

    a = spec["init_args"]
    net = torchaudio_net(a)
    ref = int(a.get("ref_mic", 0))

    class RefMic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x[:, ref : ref + 1])[:, 0, : x.shape[-1]]

    return RefMic()


def child_train(
    world: dict,
    arch: str,
    size: str,
    batch: int,
    steps: int,
    warmup: int,
    threads: int,
    mem_limit_gb: float | None,
    seconds: float = SECONDS,
    precision: str = "32-true",
    checkpoint: bool | None = None,
    compile: bool = False,
    anchor: bool = False,
) -> dict:
    """Median training-step time on one real batch; peak RSS / GPU memory; saved activation memory.

    ``precision`` ``bf16-mixed`` runs the network under bf16 autocast (the loss in fp32, as Lightning's
    plugin does); ``checkpoint`` sets the net's ``checkpoint_blocks`` (None: the config's); ``compile`` runs
    it through ``torch.compile``; ``anchor`` replaces our Conv-TasNet by torchaudio's with its arguments.
    """
    import torch

    from se_lib.models import count_parameters
    from se_lib.train.losses import negative_si_sdr
    from se_lib.train.memory import saved_activation_bytes
    from se_lib.train.module import EnhancementModule
    from se_lib.train.precision import compile_network

    torch.set_num_threads(threads)
    dm = datamodule(world, 0, batch, seconds)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if mem_limit_gb and not cuda:
        limit_memory(mem_limit_gb)
    rss_before = peak_rss_mib()
    out: dict[str, Any] = {
        "arch": "torchaudio_conv_tasnet" if anchor else arch,
        "size": size,
        "batch": batch,
        "seconds": seconds,
        "device": str(device),
        "threads": threads,
        "precision": precision,
        "checkpoint": checkpoint,
        "compile": compile,
    }
    try:
        spec = net_config(arch, size)
        if anchor:
            net = torchaudio_conv_tasnet(spec)
        else:
            if checkpoint is not None and arch in CHECKPOINTED:
                spec = {**spec, "init_args": {**spec.get("init_args", {}), "checkpoint_blocks": checkpoint}}
            net = build_net(spec)
        out["checkpoint"] = bool(spec.get("init_args", {}).get("checkpoint_blocks", False)) and not anchor
        module = EnhancementModule(net).to(device)
        out["parameters"] = count_parameters(module.net)
        forward = compile_network(module.net) if compile else module.net
        optimizer = module.configure_optimizers()["optimizer"]
        noisy, target, lengths = b["noisy"].to(device), b["target"].to(device), b["lengths"].to(device)
        bf16 = precision == "bf16-mixed"

        def loss_of_step():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                return negative_si_sdr(forward(noisy), target, lengths)

        times, cpu_times = [], []
        for i in range(warmup + steps):
            if cuda:
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            if i == 0:  # the saved activations, counted once (the hooks cost a little time)
                saved, loss = saved_activation_bytes(loss_of_step, exclude=list(module.parameters()))
                out["saved_activation_mib"] = saved / 2**20
            else:
                loss = loss_of_step()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 5.0)
            optimizer.step()
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
        step = statistics.median(times)
        out.update(
            ok=True,
            step_s=step,
            samples_per_s=batch / step,
            steps=len(times),
            loss=float(loss),
            cpu_s_per_step=statistics.median(cpu_times),
        )
    except (RuntimeError, MemoryError) as exc:  # allocation failure under the RLIMIT_AS cap / CUDA OOM
        out.update(ok=False, error=str(exc).splitlines()[0][:200])
    out["rss_before_mib"] = rss_before
    out["rss_peak_mib"] = peak_rss_mib()
    if cuda:
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


class _Recorder:
    """Lightning logger keeping metrics (built lazily so that the parent need not import Lightning)."""

    @staticmethod
    def make():
        from lightning.pytorch.loggers import Logger

        class Recorder(Logger):
            def __init__(self):
                super().__init__()
                self.records = []

            name = property(lambda self: "recorder")
            version = property(lambda self: "0")

            def log_hyperparams(self, *args, **kwargs):
                pass

            def log_metrics(self, metrics, step=None):
                self.records.append((step, dict(metrics)))

        return Recorder()


def child_fit(
    world: dict,
    arch: str,
    size: str,
    batch: int,
    batches: int,
    workers: int,
    threads: int,
    gpu_stats: bool,
    precision: str = "32-true",
    segment: float = SECONDS,
) -> dict:
    """End-to-end Lightning fit with the real loader (the config's network, ``checkpoint_blocks``
    included, at ``precision``); samples/s after the first batch, GPU stats."""
    import torch
    from lightning.pytorch.callbacks import Callback

    from se_lib.train.callbacks import GPUStatsMonitor
    from se_lib.train.module import EnhancementModule
    from se_lib.train.trainers import bare_trainer

    torch.set_num_threads(threads)

    class Clock(Callback):
        def __init__(self):
            self.starts: list[float] = []
            self.end = 0.0

        def on_train_batch_start(self, *args, **kwargs):
            self.starts.append(time.perf_counter())

        def on_train_batch_end(self, *args, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.end = time.perf_counter()

    clock = Clock()
    logger = _Recorder.make()
    callbacks: list = [clock]
    if gpu_stats:
        callbacks.append(GPUStatsMonitor(interval_steps=2))
    trainer = bare_trainer(
        max_epochs=-1,
        max_steps=batches,
        limit_val_batches=0,
        logger=logger,
        callbacks=callbacks,
        accelerator="auto",
        gradient_clip_val=5.0,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        precision=precision,
    )
    module = EnhancementModule(build_net(net_config(arch, size)))
    trainer.fit(module, datamodule=datamodule(world, workers, batch, segment))
    n = len(clock.starts) - 1
    seconds = clock.end - clock.starts[1]
    out = {
        "arch": arch,
        "size": size,
        "batch": batch,
        "workers": workers,
        "precision": precision,
        "batches_timed": n,
        "samples_per_s": n * batch / seconds,
        "device": str(trainer.strategy.root_device),
        "rss_peak_mib": peak_rss_mib(),
    }
    util = [m[GPUStatsMonitor.UTIL] for _, m in logger.records if GPUStatsMonitor.UTIL in m]
    mem = [m[GPUStatsMonitor.MEMORY] for _, m in logger.records if GPUStatsMonitor.MEMORY in m]
    if util:
        out.update(
            gpu_utilization_mean=statistics.mean(util),
            gpu_utilization_samples=util,
            gpu_memory_usage_mean=statistics.mean(mem),
        )
    return out


# ------------------------------------------------------------------------------------ parent
def run_child(kind: str, payload: dict, timeout: float = 1800) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(payload)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if proc.returncode != 0:
        return {
            "ok": False,
            "error": f"child exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}",
            **{k: v for k, v in payload.items() if k in ("arch", "size", "batch", "workers")},
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(ARCHS), choices=ARCHS)
    p.add_argument("--sizes", nargs="+", default=["demo", "paper"], choices=["demo", "paper"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps-demo", type=int, default=4)
    p.add_argument("--steps-paper", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: the model configs')")
    p.add_argument("--loader-batches", type=int, default=12)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--mem-limit-gb",
        type=float,
        default=6.0,
        help="address space a CPU child may map beyond its imports and data (RLIMIT_AS)",
    )
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end Lightning fit")
    p.add_argument("--seconds", type=float, default=SECONDS, help="training crop in seconds (<= 4)")
    p.add_argument(
        "--matrix",
        action="store_true",
        help="paper configs only: fp32/bf16 x checkpointing off/on (x compile) + torchaudio's Conv-TasNet",
    )
    p.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"], choices=["32-true", "bf16-mixed"])
    p.add_argument("--checkpointing", nargs="+", default=["off", "on"], choices=["off", "on"])
    p.add_argument("--compile", nargs="+", default=["off"], choices=["off", "on"], help="--matrix: compile variants")
    p.add_argument("--out", default=str(REPO / "bench" / "out" / "bench_train.json"))
    p.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        kind, payload = a.child[0], json.loads(a.child[1])
        fn = {"loader": child_loader, "train": child_train, "fit": child_fit}[kind]
        print(json.dumps(fn(**payload)))
        return

    import torch

    from bench_render import make_world

    workers = configured_workers() if a.workers is None else a.workers
    cuda = torch.cuda.is_available()
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads": a.threads,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "batch": a.batch,
        "seconds": a.seconds,
        "mics": 4,
        "sample_rate": SR,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        # Enough training mixtures that no timed loop (loader batches, the 20-batch GPU fit) crosses an
        # epoch boundary, where the loader's iterator is rebuilt.
        n_train = max(64, a.batch * (max(a.loader_batches, 20) + 1))
        _, url = make_world(root, {"count": {"train": n_train, "val": 4, "test": 4}, "seconds": SECONDS})
        world = {"root": str(root), "url": url}
        print(f"world built in {time.perf_counter() - t0:.0f} s ({url})", flush=True)

        loaders = []
        for w in sorted({workers, 0}, reverse=True):
            r = run_child("loader", {"world": world, "workers": w, "batches": a.loader_batches, "batch": a.batch})
            loaders.append(r)
            print(f"loader workers={w}: {r.get('mixtures_per_s', float('nan')):.1f} mixtures/s", flush=True)
        results["loader"] = loaders
        loader_rate = loaders[0].get("mixtures_per_s", float("nan"))
        if a.matrix:
            results["matrix"] = run_matrix(a, world, workers, cuda)
            print_matrix(results, a)
            out = Path(a.out)
            write_json_atomic(out, results)
            print(f"wrote {out}")
            return

        rows = []
        for arch in a.models:
            for size in a.sizes:
                steps = a.steps_demo if size == "demo" else a.steps_paper
                payload = {
                    "world": world,
                    "arch": arch,
                    "size": size,
                    "seconds": a.seconds,
                    "batch": a.batch,
                    "steps": steps,
                    "warmup": a.warmup,
                    "threads": a.threads,
                    "mem_limit_gb": a.mem_limit_gb,
                }
                r = run_child("train", payload)
                if not r.get("ok") and a.batch > 1:
                    print(f"{arch}/{size}: batch {a.batch} failed ({r.get('error')}); measuring batch 1", flush=True)
                    r1 = run_child("train", {**payload, "batch": 1})
                    r = {**r1, "failed_batch": a.batch, "failed_error": r.get("error")}
                rows.append(r)
                print(f"{arch}/{size}: {json.dumps({k: v for k, v in r.items() if k != 'loss'})}", flush=True)
        results["train_step"] = rows

        def fit_conv_tasnet(size: str, batches: int, gpu_stats: bool) -> dict:
            """``Trainer.fit`` of Conv-TasNet (``size``) over ``batches`` batches, in a child."""
            payload = {"arch": "conv_tasnet", "size": size, "batches": batches, "gpu_stats": gpu_stats}
            return run_child(
                "fit", {"world": world, "batch": a.batch, "workers": workers, "threads": a.threads, **payload}
            )

        if not a.no_e2e:
            r = fit_conv_tasnet("demo", 8, gpu_stats=False)
            results["e2e_fit"] = r
            print(f"e2e fit conv_tasnet/demo: {r.get('samples_per_s', float('nan')):.2f} samples/s", flush=True)
        if cuda:
            r = fit_conv_tasnet("paper", 20, gpu_stats=True)
            results["gpu_conv_tasnet_paper"] = r
            print(f"GPU conv_tasnet/paper: {json.dumps(r)}", flush=True)

    print()
    print(
        f"Training step, batch {a.batch} x {SECONDS:.0f} s x 4 mics @ 16 kHz on {results['device']} "
        f"({a.threads} threads); loader ({workers} workers): {loader_rate:.1f} mixtures/s"
    )
    print(
        f"{'model':<16}{'size':<7}{'params':>11}{'batch':>6}{'step s':>9}{'CPU s':>8}{'samples/s':>11}"
        f"{'peak RSS':>11}{'GPU peak':>10}  bound"
    )
    for r in rows:
        if not r.get("ok"):
            print(
                f"{r.get('arch', '?'):<16}{r.get('size', '?'):<7}  failed at batch {r.get('batch')} "
                f"(peak RSS {r.get('rss_peak_mib', float('nan')):.0f}Mi): {str(r.get('error'))[:90]}"
            )
            continue
        bound = "data" if r["samples_per_s"] > loader_rate else "model"
        gpu = f"{r['gpu_peak_mib']:.0f}Mi" if "gpu_peak_mib" in r else "-"
        limit = "GPU memory (CUDA out of memory)" if cuda else "the memory cap"
        note = f" (batch {r['failed_batch']} exceeded {limit})" if "failed_batch" in r else ""
        print(
            f"{r['arch']:<16}{r['size']:<7}{r['parameters']:>11,}{r['batch']:>6}{r['step_s']:>9.2f}"
            f"{r['cpu_s_per_step']:>8.2f}{r['samples_per_s']:>11.2f}{r['rss_peak_mib']:>9.0f}Mi{gpu:>10}  {bound}{note}"
        )
    out = Path(a.out)
    write_json_atomic(out, results)
    print(f"wrote {out}")


def run_matrix(a: argparse.Namespace, world: dict, workers: int, cuda: bool) -> list[dict]:
    """Per paper config: every precision x checkpointing x compile variant of the training step (rows
    of :func:`child_train`), torchaudio's Conv-TasNet beside ours, and on a GPU a Lightning fit at the
    config's own settings with its GPU utilisation."""
    rows = []
    base = {
        "world": world,
        "size": "paper",
        "batch": a.batch,
        "seconds": a.seconds,
        "steps": a.steps_paper,
        "warmup": a.warmup,
        "threads": a.threads,
        "mem_limit_gb": a.mem_limit_gb,
    }
    for arch in a.models:
        for precision in a.precisions:
            for comp in a.compile:
                variants = [(ck == "on", False) for ck in a.checkpointing] if arch in CHECKPOINTED else [(None, False)]
                if arch == "conv_tasnet":
                    variants.append((None, True))  # torchaudio's ConvTasNet, same arguments: the anchor
                for checkpoint, anchor in variants:
                    payload = {
                        **base,
                        "arch": arch,
                        "precision": precision,
                        "checkpoint": checkpoint,
                        "compile": comp == "on",
                        "anchor": anchor,
                    }
                    r = run_child("train", payload)
                    rows.append(r)
                    brief = {k: r.get(k) for k in ("arch", "precision", "checkpoint", "compile", "samples_per_s")}
                    print(
                        f"{json.dumps(brief)} saved {r.get('saved_activation_mib', float('nan')):.1f} MiB", flush=True
                    )
        if cuda:
            from se_lib.train.precision import resolve_precision

            fit = run_child(
                "fit",
                {
                    "world": world,
                    "arch": arch,
                    "size": "paper",
                    "batch": a.batch,
                    "batches": 20,
                    "workers": workers,
                    "threads": a.threads,
                    "gpu_stats": True,
                    "precision": resolve_precision("auto"),
                    "segment": a.seconds,
                },
            )
            rows.append({**fit, "kind": "fit"})
            print(f"GPU fit {arch}: {json.dumps(fit)}", flush=True)
    return rows


def print_matrix(results: dict, a: argparse.Namespace) -> None:
    """The matrix as a table; Conv-TasNet's rows also as a ratio to torchaudio's at the same settings."""
    rows = results["matrix"]
    anchors = {
        (r["precision"], r["compile"]): r for r in rows if r.get("arch") == "torchaudio_conv_tasnet" and r.get("ok")
    }
    print()
    print(
        f"Paper configs, training step, batch {a.batch} x {a.seconds:g} s x 4 mics @ 16 kHz on {results['device']} "
        f"({a.threads} threads); saved = activation memory autograd keeps after the forward pass"
    )
    print(
        f"{'model':<24}{'precision':<12}{'ckpt':<6}{'compile':<8}{'samples/s':>10}{'CPU s':>8}{'saved MiB':>11}"
        f"{'peak RSS':>10}{'GPU peak':>10}{'GPU util':>9}  vs torchaudio"
    )
    for r in rows:
        if r.get("kind") == "fit":
            util = r.get("gpu_utilization_mean")
            print(
                f"{r['arch']:<24}{r['precision']:<12}{'cfg':<6}{'-':<8}{r['samples_per_s']:>10.2f}  Lightning fit, "
                f"GPU util {util if util is None else f'{util:.0f} %'}"
            )
            continue
        if not r.get("ok"):
            print(f"{r.get('arch', '?'):<24}{r.get('precision', '?'):<12} failed: {str(r.get('error'))[:80]}")
            continue
        anchor = anchors.get((r["precision"], r["compile"]))
        ratio = f"{r['samples_per_s'] / anchor['samples_per_s']:.2f}x" if anchor and r["arch"] == "conv_tasnet" else ""
        gpu = f"{r['gpu_peak_mib'] / 1024:.1f}Gi" if "gpu_peak_mib" in r else "-"
        ckpt, comp = ("on" if r[k] else "off" for k in ("checkpoint", "compile"))
        print(
            f"{r['arch']:<24}{r['precision']:<12}{ckpt:<6}{comp:<8}"
            f"{r['samples_per_s']:>10.3f}{r['cpu_s_per_step']:>8.2f}{r['saved_activation_mib']:>11.1f}"
            f"{r['rss_peak_mib'] - r['rss_before_mib']:>8.0f}Mi{gpu:>10}{'-':>9}  {ratio}"
        )


if __name__ == "__main__":
    main()
