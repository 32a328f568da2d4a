"""The serving endpoint against the model in-process: what ``mlflow models serve`` adds per request.

A registered version (the pyfunc model of a tiny checkpoint, or ``--checkpoint`` of your own) is served with
``mlflow models serve --env-manager local`` on 127.0.0.1; the same recordings (``--seconds`` long, batch of one)
are enhanced ``--requests`` times over HTTP (JSON in and out) and ``--requests`` times by the loaded pyfunc model
in this process. Prints per-request medians and their ratio (endpoint / in-process), the server's start-up
(process start to ``/ping`` answering) and the JSON body size -- ratios side by side, never absolute targets.

Usage::

    uv run python bench/bench_serve.py                       # tiny IC Conv-TasNet, 4 channels, 4 s
    uv run python bench/bench_serve.py --checkpoint results/models/dprnn/best.ckpt --seconds 10

Writes ``bench/out/bench_serve.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(Path(__file__).resolve().parent)]
from _common import machine_info  # noqa: E402
from se_lib.io import write_json_atomic  # noqa: E402


def main() -> None:
    import mlflow.artifacts
    import mlflow.pyfunc
    import numpy as np
    from mlflow import MlflowClient

    from se_lib.inference.pyfunc import log_pyfunc
    from se_lib.tracking.training import register_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="a se fit checkpoint (default: a tiny random IC Conv-TasNet)")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "bench_serve.json"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(a.checkpoint) if a.checkpoint else None
        if ckpt is None:
            from test_enhance import make_checkpoint

            ckpt = make_checkpoint(Path(tmp) / "tiny.ckpt", "ic_conv_tasnet")
        uri = f"sqlite:///{tmp}/mlflow.db"
        client = MlflowClient(uri, registry_uri=uri)
        run_id = client.create_run(client.create_experiment("bench_serve")).info.run_id
        log_pyfunc(client, run_id, ckpt)
        register_checkpoint(client, run_id, "se-bench")
        model_dir = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model", tracking_uri=uri)
        local = mlflow.pyfunc.load_model(model_dir)
        meta = local.metadata.metadata
        x = (
            0.1
            * np.random.default_rng(0).standard_normal((1, meta["in_channels"], round(a.seconds * meta["sample_rate"])))
        ).astype(np.float32)
        body = json.dumps({"inputs": x.tolist()}).encode()

        in_process = []
        for _ in range(a.requests):
            t0 = time.perf_counter()
            local.predict(x)
            in_process.append(time.perf_counter() - t0)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/se-bench/1", "--env-manager", "local"]
        t_start = time.perf_counter()
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            from http_wait import wait_for_http

            wait_for_http(f"http://127.0.0.1:{port}/ping", proc, lambda: "", 300, "mlflow models serve")
            startup = time.perf_counter() - t_start
            endpoint = []
            for _ in range(a.requests):
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json"}
                )
                t0 = time.perf_counter()
                with urllib.request.urlopen(req, timeout=300) as resp:
                    json.load(resp)
                endpoint.append(time.perf_counter() - t0)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    result = {
        "machine": machine_info(),
        "checkpoint": str(a.checkpoint or "tiny random ic_conv_tasnet"),
        "seconds_of_audio": a.seconds,
        "channels": meta["in_channels"],
        "request_bytes": len(body),
        "in_process_median_s": statistics.median(in_process),
        "endpoint_median_s": statistics.median(endpoint),
        "endpoint_vs_in_process": statistics.median(endpoint) / statistics.median(in_process),
        "server_startup_s": startup,
    }
    write_json_atomic(a.out, result)
    print(
        f"{a.seconds:g} s x {meta['in_channels']} ch per request ({len(body) / 1e6:.1f} MB of JSON), "
        f"{a.requests} requests"
    )
    print(f"in-process pyfunc predict: {result['in_process_median_s'] * 1000:8.1f} ms (median)")
    print(
        f"mlflow models serve:       {result['endpoint_median_s'] * 1000:8.1f} ms (median)  "
        f"{result['endpoint_vs_in_process']:.2f}x in-process"
    )
    print(f"server start-up to /ping:  {startup:8.1f} s")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
