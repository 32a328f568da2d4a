"""A recording as the JSON body ``mlflow models serve`` takes, and its answer back as a wav: the two ends of
the ``curl`` call in docs/enhance.md ("Serve a model").

::

    mkdir -p scratch    # git-ignored
    uv run python -m se_lib.inference.http_payload request /usr/share/sounds/alsa/Front_Center.wav \
        > scratch/request.json
    curl -s 127.0.0.1:5001/invocations -H 'Content-Type: application/json' \
        -d @scratch/request.json > scratch/response.json
    uv run python -m se_lib.inference.http_payload response scratch/response.json \
        --request scratch/request.json -o scratch/enhanced.wav

``request``: ``{"inputs": [[channel, ...]], "params": {"sample_rate": <the file's rate>}}`` -- one recording
``[1, C, T]`` at its own rate (the served model resamples in and out), the channels of the file or those
``--channels`` picks (1-based, in the order the network expects, as ``se enhance --channels``). ``response``:
the server's ``{"predictions": [[...]]}`` written as a mono wav at the request's rate (atomically); an error
answer (``{"error_code": ..., "message": ...}``) is printed and exits 1.
Needs no MLflow: a client machine with this repository's environment (or just numpy + soundfile for the functions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["request_body", "response_audio", "main"]


def request_body(path: str | os.PathLike, channels: list[int] | None = None) -> dict[str, Any]:
    """The ``/invocations`` body for the recording ``path``: ``[1, C, T]`` float32 samples at its own rate;
    ``channels``: 0-based channels to send, in order (default all). Bad audio raises ``AudioError`` naming it."""
    from se_lib.data.audio import AudioError, read_audio

    x, sr = read_audio(path, mono=False, min_peak=None)  # [C, T], checked: readable, not empty, finite
    if channels is not None:
        wrong = [c + 1 for c in channels if c >= x.shape[0]]
        if wrong:
            raise AudioError(path, f"has {x.shape[0]} channel(s), --channels names {wrong}")
        x = x[channels]
    return {"inputs": [x.tolist()], "params": {"sample_rate": int(sr)}}


def response_audio(response: dict[str, Any]) -> np.ndarray:
    """The enhanced signal ``[T]`` float32 of a ``/invocations`` answer for one recording; an error answer (or
    anything else) raises ``ValueError`` with the server's message."""
    if "predictions" not in response:
        message = response.get("message") or json.dumps(response)[:500]
        raise ValueError(f"the server answered an error: {response.get('error_code', '?')}: {message[:2000]}")
    y = np.asarray(response["predictions"], dtype=np.float32)
    if y.ndim != 2 or y.shape[0] != 1:
        raise ValueError(f"expected predictions [1, samples] for one recording, got shape {y.shape}")
    return y[0]


def main(argv: list[str] | None = None) -> int:
    from se_lib.inference.enhance import parse_channels

    ap = argparse.ArgumentParser(prog="python -m se_lib.inference.http_payload", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    req = sub.add_parser("request", help="print the JSON body for a recording")
    req.add_argument("audio", help="wav/flac/ogg recording")
    req.add_argument("--channels", help="1-based channels to send, in the network's order (default: all)")
    res = sub.add_parser("response", help="write the server's answer as a wav")
    res.add_argument("response", help="the JSON the server answered ('-': standard input)")
    res.add_argument("--request", required=True, help="the request.json it answers (for the sample rate)")
    res.add_argument("-o", "--output", required=True, help="the wav to write")
    a = ap.parse_args(argv)
    from se_lib.data.audio import AudioError, write_wav_atomic

    try:
        if a.cmd == "request":
            channels = parse_channels(a.channels) if a.channels else None
            json.dump(request_body(a.audio, channels), sys.stdout, separators=(",", ":"))
            sys.stdout.write("\n")
            return 0
        text = sys.stdin.read() if a.response == "-" else Path(a.response).read_text()
        rate = int(json.loads(Path(a.request).read_text())["params"]["sample_rate"])
        y = response_audio(json.loads(text))
        write_wav_atomic(a.output, y, rate, subtype="FLOAT")
        print(f"{a.output}: {len(y)} samples at {rate} Hz", file=sys.stderr)
        return 0
    except (AudioError, ValueError, KeyError, OSError) as exc:
        print(f"http_payload: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
