"""A trained network as an MLflow pyfunc model: what the registry holds, ``mlflow.pyfunc.load_model`` loads and
``mlflow models serve`` serves.

:class:`SpeechEnhancer` wraps the Lightning-free loading of :mod:`se_lib.inference.checkpoint` and the chunked
overlap-add of :class:`se_lib.inference.enhance.Enhancer` (the ``se enhance`` path): its ``predict`` takes a batch
of recordings ``[B, C, T]`` float32 (``[B, T]`` for mono) at the ``sample_rate`` param (default: the network's
rate; others are resampled in and out) and returns the enhanced reference channel ``[B, T]`` at that rate, the
input's length. A network for C microphones takes exactly C channels (reference mic where it was trained); a
one-channel network reads channel ``ref_mic`` of any input.

:func:`save_pyfunc` writes the model folder (MLmodel with a tensor signature and the ``sample_rate`` param, the
checkpoint as its artifact, the ``se_lib`` package it was trained with as code, pinned requirements, metadata:
sample rate, channels, class); :func:`log_pyfunc` logs it on a run as ``<artifact_path>/`` (MLflow's own
``runs:/<run_id>/model`` layout), which :func:`se_lib.tracking.training.register_checkpoint` registers.
:func:`se_lib.inference.checkpoint.checkpoint_of` finds the checkpoint inside a downloaded model (or a registered
version of the older ``checkpoints/`` layout), for ``se enhance --model models:/...``.

Serving (``docs/enhance.md``)::

    uv run mlflow models serve -m models:/se-dprnn/1 --env-manager local --host 127.0.0.1 -p 5001
    curl -s 127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
         -d '{"inputs": [[0.0, 0.01, ...]], "params": {"sample_rate": 16000}}'
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

from se_lib.inference.checkpoint import CHECKPOINT_KEY

__all__ = ["SpeechEnhancer", "save_pyfunc", "log_pyfunc", "signature_for", "check_request", "REQUIREMENTS"]
SE_LIB = Path(__file__).resolve().parent.parent
# What loading and running the model imports (mlflow itself is added by MLflow), pinned to this environment.
REQUIREMENTS = ("torch", "torchaudio", "numpy", "scipy", "soundfile", "pyyaml")
#: Default for ``$SE_PYFUNC_MAX_SECONDS``: audio per request (10 min: ~100 MB of JSON for 4 channels at 16 kHz).
MAX_REQUEST_SECONDS = 600.0


class SpeechEnhancer(mlflow.pyfunc.PythonModel):
    """pyfunc model of one checkpoint (see the module docstring)."""

    def load_context(self, context: Any) -> None:
        from se_lib.inference.checkpoint import load_network, torch_device
        from se_lib.inference.enhance import Enhancer

        device = torch_device(os.environ.get("SE_PYFUNC_DEVICE", "auto"))
        loaded = load_network(context.artifacts[CHECKPOINT_KEY], map_location=device)
        self.enhancer = Enhancer(loaded, device=device)

    def predict(self, context, model_input, params=None):  # untyped: MLflow would infer a signature from hints
        """``[B, C, T]`` (or ``[B, T]``, mono) recordings at ``params["sample_rate"]`` -> enhanced ``[B, T]``."""
        enhancer = self.enhancer
        rate = int((params or {}).get("sample_rate") or enhancer.sample_rate)
        if isinstance(model_input, dict):  # the signature's named tensor: {"audio": ...}
            model_input = model_input["audio"]
        x = np.asarray(model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input, dtype=np.float32)
        if x.ndim == 2:
            x = x[:, None, :]
        check_request(x, rate, max_request_seconds())
        return np.stack([enhancer.enhance_array(item, rate) for item in x]).astype(np.float32)


def max_request_seconds() -> float:
    """Most audio one ``predict`` call takes, summed over its batch: ``$SE_PYFUNC_MAX_SECONDS`` (default
    :data:`MAX_REQUEST_SECONDS`). Longer recordings go through ``se enhance`` (chunked, flat memory)."""
    raw = os.environ.get("SE_PYFUNC_MAX_SECONDS", "")
    try:
        value = float(raw) if raw else MAX_REQUEST_SECONDS
    except ValueError:
        raise ValueError(f"SE_PYFUNC_MAX_SECONDS={raw!r}: expected seconds") from None
    return value


def check_request(x: np.ndarray, rate: int, max_seconds: float) -> None:
    """A request the model can answer: ``[batch, channels, samples]``, samples, finite, a positive rate, at
    most ``max_seconds`` of audio in all. Otherwise an ``MlflowException`` (INVALID_PARAMETER_VALUE: the
    scoring server answers HTTP 400 with this message)."""
    from mlflow.exceptions import MlflowException

    problem = None
    if x.ndim != 3 or x.shape[-1] == 0 or x.shape[0] == 0:
        problem = f"expected recordings [batch, channels, samples] (or [batch, samples]), got shape {x.shape}"
    elif rate <= 0:
        problem = f"params.sample_rate must be positive, got {rate}"
    elif x.shape[0] * x.shape[-1] / rate > max_seconds:
        problem = (
            f"{x.shape[0]} x {x.shape[-1] / rate:.1f} s of audio is more than this endpoint takes per request "
            f"({max_seconds:g} s, $SE_PYFUNC_MAX_SECONDS): send shorter pieces or use `se enhance` for long recordings"
        )
    elif not np.isfinite(x).all():
        problem = "the audio holds non-finite samples (NaN/Inf)"
    if problem:
        raise MlflowException.invalid_parameter_value(problem)


def signature_for(in_channels: int | None, sample_rate: int):
    """Tensor signature: input ``[B, C, T]`` float32 (C fixed for a multichannel network, any for a one-channel
    one), output ``[B, T]``; the param ``sample_rate`` (default the network's)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

    channels = int(in_channels) if in_channels and in_channels > 1 else -1
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, channels, -1), name="audio")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1), name="enhanced")]),
        params=ParamSchema([ParamSpec("sample_rate", "long", int(sample_rate))]),
    )


def _requirements() -> list[str]:
    out = []
    for name in REQUIREMENTS:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def save_pyfunc(checkpoint: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the pyfunc model of ``checkpoint`` into the new folder ``path`` (see the module docstring)."""
    from se_lib.inference.checkpoint import load_network

    loaded = load_network(checkpoint)  # checks the checkpoint before anything is written
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=SpeechEnhancer(),
        artifacts={CHECKPOINT_KEY: str(Path(checkpoint).resolve())},
        code_paths=[str(SE_LIB)],
        signature=signature_for(loaded.in_channels, loaded.sample_rate),
        input_example=np.zeros((1, int(loaded.in_channels or 1), loaded.sample_rate // 10), np.float32),
        pip_requirements=_requirements(),
        metadata={
            "sample_rate": int(loaded.sample_rate),
            "in_channels": int(loaded.in_channels or 1),
            "ref_mic": int(loaded.ref_mic),
            "class_path": loaded.class_path,
            "parameters": int(loaded.parameters),
            "output": "the enhanced reference microphone, mono, at the input's sample_rate",
        },
    )
    return Path(path)


def log_pyfunc(client: Any, run_id: str, checkpoint: str | os.PathLike, artifact_path: str = "model") -> str:
    """Log the pyfunc model of ``checkpoint`` on run ``run_id`` as ``<artifact_path>/``; returns its URI."""
    with tempfile.TemporaryDirectory() as tmp:
        save_pyfunc(checkpoint, Path(tmp) / "model")
        client.log_artifacts(run_id, str(Path(tmp) / "model"), artifact_path=artifact_path)
    return f"runs:/{run_id}/{artifact_path}"
