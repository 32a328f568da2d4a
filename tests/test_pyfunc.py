"""Registered models MLflow can load and serve: the pyfunc model of a checkpoint (se_lib/inference/pyfunc.py),
its registration on a real MLflow store, `se enhance --model runs:/ | models:/`, and `mlflow models serve`
answering over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pytest
import soundfile as sf
from mlflow import MlflowClient

from http_wait import wait_for_http
from se_lib.inference.checkpoint import checkpoint_of, download_model, load_network
from se_lib.inference.enhance import Enhancer, main
from se_lib.inference.pyfunc import log_pyfunc, save_pyfunc
from se_lib.tracking.training import register_checkpoint
from test_enhance import make_checkpoint, noisy_speech


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pyfunc_ckpts")
    return {arch: make_checkpoint(folder / f"{arch}.ckpt", arch) for arch in ("conv_tasnet", "ic_conv_tasnet")}


@pytest.fixture()
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_pyfunc_predicts_what_se_enhance_computes(ckpts, tmp_path):
    for arch, channels in (("ic_conv_tasnet", 4), ("conv_tasnet", 3)):
        path = save_pyfunc(ckpts[arch], tmp_path / arch)
        model = mlflow.pyfunc.load_model(str(path))
        meta = model.metadata.metadata
        assert meta["sample_rate"] == 16000 and meta["in_channels"] == (4 if arch == "ic_conv_tasnet" else 1)
        x = np.stack([noisy_speech(1.3, sr=22050, channels=channels, seed=s) for s in (1, 2)])  # [2, C, T]
        got = model.predict(x, params={"sample_rate": 22050})
        enhancer = Enhancer(load_network(ckpts[arch]))
        want = np.stack([enhancer.enhance_array(item, 22050) for item in x])
        assert got.shape == (2, x.shape[-1]) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert checkpoint_of(path).read_bytes() == ckpts[arch].read_bytes()  # the checkpoint travels with it
    # the signature fixes a multichannel network's channel count
    with pytest.raises(Exception, match="shape"):
        mlflow.pyfunc.load_model(str(tmp_path / "ic_conv_tasnet")).predict(np.zeros((1, 2, 8000), np.float32))


def test_registered_versions_load_by_version_alias_and_run(ckpts, store, tmp_path, capsys):
    client = MlflowClient(store, registry_uri=store)
    exp = client.create_experiment("pyfunc")
    run_id = client.create_run(exp).info.run_id
    uri = log_pyfunc(client, run_id, ckpts["conv_tasnet"])
    assert uri == f"runs:/{run_id}/model"
    version = register_checkpoint(client, run_id, "se-conv_tasnet")
    client.set_registered_model_alias("se-conv_tasnet", "champion", version)
    assert client.get_model_version("se-conv_tasnet", version).source == uri

    src = tmp_path / "in" / "rec.wav"
    src.parent.mkdir()
    sf.write(src, noisy_speech(1.0, channels=1, seed=4).T, 16000, subtype="FLOAT")
    outputs = {}
    for model in (str(ckpts["conv_tasnet"]), uri, "models:/se-conv_tasnet/1", "models:/se-conv_tasnet@champion"):
        out = tmp_path / f"out{len(outputs)}"
        assert main(["--model", model, str(src), "-o", str(out), "-q", "--no-dnsmos"]) == 0, capsys.readouterr().err
        outputs[model] = sf.read(out / "rec_enhanced.wav", dtype="float32")[0]
    first = next(iter(outputs.values()))
    for model, y in outputs.items():
        np.testing.assert_array_equal(y, first, err_msg=model)
    for bad in ("models:/se-conv_tasnet/7", "models:/se-nothing@champion", f"runs:/{'0' * 32}/model"):
        assert main(["--model", bad, str(src), "-o", str(tmp_path / "bad"), "-q"]) == 2
        err = capsys.readouterr().err
        assert f"--model {bad}" in err and "tracking store" in err
    assert not (tmp_path / "bad").exists()


def test_se_models_lists_versions_and_promotes_an_alias(ckpts, store, capsys):
    from se_lib.tracking.models import main as models_main

    client = MlflowClient(store, registry_uri=store)
    exp = client.create_experiment("models")
    for _ in range(2):
        run_id = client.create_run(exp, tags={"mlflow.source.git.commit": "abcdef0123456789"}).info.run_id
        log_pyfunc(client, run_id, ckpts["conv_tasnet"])
        version = register_checkpoint(client, run_id, "se-conv_tasnet", tags={"test_si_sdr": "7.25"})
    assert version == "2"
    assert models_main(["promote", "se-conv_tasnet", "1"]) == 0
    assert "se-conv_tasnet@champion -> version 1" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("se-conv_tasnet", "champion").version) == "1"
    assert models_main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["model", "version", "aliases"]
    v2, v1 = (line.split() for line in lines[1:])
    assert v2[:2] == ["se-conv_tasnet", "2"] and v1[:3] == ["se-conv_tasnet", "1", "champion"]
    assert "abcdef01" in v1 and "7.250" in v1 and v1[-1] == "pyfunc"
    assert models_main(["promote", "se-conv_tasnet", "9"]) == 2
    assert "se models promote" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.slow
def test_mlflow_models_serve_answers_over_http(ckpts, store):
    """`mlflow models serve --env-manager local` on the registered version, on 127.0.0.1: a real HTTP endpoint."""
    client = MlflowClient(store, registry_uri=store)
    run_id = client.create_run(client.create_experiment("serve")).info.run_id
    log_pyfunc(client, run_id, ckpts["ic_conv_tasnet"])
    register_checkpoint(client, run_id, "se-ic_conv_tasnet")
    port = _free_port()
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/se-ic_conv_tasnet/1"]
    cmd += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output = lambda: proc.stdout.read().decode()  # noqa: E731 - read only once the server has exited
        wait_for_http(f"http://127.0.0.1:{port}/ping", proc, output, 240, "mlflow models serve")
        x = noisy_speech(0.6, channels=4, seed=9)[None]  # [1, 4, T]
        status, out = _post(port, {"inputs": x.tolist(), "params": {"sample_rate": 16000}})
        assert status == 200, out
        want = mlflow.pyfunc.load_model(str(download_model(f"runs:/{run_id}/model", store))).predict(x)
        np.testing.assert_allclose(np.asarray(out["predictions"], np.float32), want, atol=1e-5)
        status, out = _post(port, {"inputs": x[:, :2].tolist()})  # 2 channels for a 4-microphone network
        assert status == 400 and "shape" in json.dumps(out)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
