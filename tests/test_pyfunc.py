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
from se_lib.inference.checkpoint import checkpoint_of, load_network
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


def _post(port: int, body: dict | bytes) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _recorded_4ch(path: Path, sr: int = 48000) -> np.ndarray:
    """A 4-channel recording from recorded speech + recorded noise (alsa-utils' prompts, see corpus_standins),
    the microphones a few samples apart; written to ``path`` as 32-bit float wav, returned ``[4, T]``."""
    import corpus_standins

    speech = corpus_standins.utterance(corpus_standins.speech_clips(sr), 0, sr, 1.5)
    noise = corpus_standins.noise_signal(sr, len(speech) / sr + 0.01, 4)[: len(speech)]
    x = np.stack([np.roll(speech, d) for d in (0, 3, 7, 11)]) + 0.05 * noise
    x = x.astype(np.float32)
    sf.write(path, x.T, sr, subtype="FLOAT")
    return x


@pytest.mark.slow
def test_mlflow_models_serve_answers_over_http(ckpts, store, tmp_path, capsys):
    """`mlflow models serve --env-manager local` on the registered version, on 127.0.0.1: a real HTTP endpoint. A
    4-channel recording (sent and read back with se_lib.inference.http_payload, as docs/enhance.md's curl
    example) comes back equal to what `se enhance` computes; malformed, wrong-channel and over-long requests get
    400 with a message; 50 sequential and 8 concurrent requests are all answered, each with its own result."""
    from concurrent.futures import ThreadPoolExecutor

    from se_lib.inference import http_payload

    client = MlflowClient(store, registry_uri=store)
    run_id = client.create_run(client.create_experiment("serve")).info.run_id
    log_pyfunc(client, run_id, ckpts["ic_conv_tasnet"])
    register_checkpoint(client, run_id, "se-ic_conv_tasnet")
    port = _free_port()
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env["SE_PYFUNC_MAX_SECONDS"] = "5"
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/se-ic_conv_tasnet/1"]
    cmd += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output = lambda: proc.stdout.read().decode()  # noqa: E731 - read only once the server has exited
        wait_for_http(f"http://127.0.0.1:{port}/ping", proc, output, 240, "mlflow models serve")
        enhancer = Enhancer(load_network(ckpts["ic_conv_tasnet"]))

        # a recording file -> request.json -> the server -> response.json -> a wav (docs/enhance.md)
        x = _recorded_4ch(tmp_path / "rec.wav")
        assert http_payload.main(["request", str(tmp_path / "rec.wav")]) == 0
        (tmp_path / "request.json").write_text(capsys.readouterr().out)
        status, out = _post(port, (tmp_path / "request.json").read_bytes())
        assert status == 200, out
        (tmp_path / "response.json").write_text(json.dumps(out))
        args = ["response", str(tmp_path / "response.json"), "--request", str(tmp_path / "request.json")]
        assert http_payload.main([*args, "-o", str(tmp_path / "enhanced.wav")]) == 0
        y, sr = sf.read(tmp_path / "enhanced.wav", dtype="float32")
        assert sr == 48000 and y.shape == (x.shape[1],)
        np.testing.assert_allclose(y, enhancer.enhance_array(x, 48000), atol=1e-5)

        # bad requests: 400 and a message saying what is wrong
        status, out = _post(port, b'{"inputs": [[[0.0, 0.1')  # truncated JSON
        assert 400 <= status < 500 and out.get("message"), out
        status, out = _post(port, {"inputs": "not audio", "params": {"sample_rate": 16000}})
        assert 400 <= status < 500 and out.get("message"), out
        short = noisy_speech(0.3, channels=4, seed=9)[None]  # [1, 4, T]
        status, out = _post(port, {"inputs": short[:, :2].tolist()})  # 2 channels for a 4-microphone network
        assert status == 400 and "shape" in out["message"]
        long = np.zeros((2, 4, 3 * 16000), np.float32) + 0.01  # 6 s in all, the server takes 5
        status, out = _post(port, {"inputs": long.tolist(), "params": {"sample_rate": 16000}})
        assert status == 400 and "more than this endpoint takes" in out["message"], out

        # bounded load: every request answered, with its own input's result
        inputs = [noisy_speech(0.3, channels=4, seed=100 + i)[None] for i in range(8)]
        wants = [enhancer.enhance_array(item[0], 16000) for item in inputs]

        def ask(i: int) -> tuple[int, np.ndarray]:
            status, out = _post(port, {"inputs": inputs[i % 8].tolist(), "params": {"sample_rate": 16000}})
            return status, np.asarray(out.get("predictions", []), np.float32)

        answers = [(i, *ask(i)) for i in range(50)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers += [(i, *a) for i, a in zip(range(8), pool.map(ask, range(8)), strict=True)]
        assert len(answers) == 58 and all(status == 200 for _, status, _ in answers)
        for i, _, got in answers:
            np.testing.assert_allclose(got[0], wants[i % 8], atol=1e-5)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)


def test_http_payload_names_bad_recordings_and_error_answers(tmp_path, capsys):
    """The client ends of the curl example: a recording's channels picked (1-based), a channel it lacks named,
    and an error answer of the server turned into its message (exit 1), not a wav."""
    from se_lib.inference import http_payload

    x = _recorded_4ch(tmp_path / "rec.wav", sr=16000)
    body = http_payload.request_body(tmp_path / "rec.wav", [2, 0])
    assert body["params"] == {"sample_rate": 16000}
    np.testing.assert_array_equal(np.asarray(body["inputs"], np.float32)[0], x[[2, 0]])
    assert http_payload.main(["request", str(tmp_path / "rec.wav"), "--channels", "1,5"]) == 1
    assert "has 4 channel(s), --channels names [5]" in capsys.readouterr().err
    (tmp_path / "request.json").write_text(json.dumps(body))
    (tmp_path / "err.json").write_text(json.dumps({"error_code": "BAD_REQUEST", "message": "audio too long"}))
    args = ["response", str(tmp_path / "err.json"), "--request", str(tmp_path / "request.json")]
    assert http_payload.main([*args, "-o", str(tmp_path / "out.wav")]) == 1
    assert "BAD_REQUEST: audio too long" in capsys.readouterr().err and not (tmp_path / "out.wav").exists()
