"""The ``mlflow server`` command line and environment, one home for ``make mlflow-ui``
(:mod:`se_lib.tracking.ui`, foreground) and the background service (:mod:`se_lib.tracking.service`,
which adds its options: artifacts, auth, allowed hosts)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from se_lib.tracking.urls import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["server_command", "server_env"]


def server_command(
    tracking_uri: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = 1
) -> list[str]:
    """``mlflow server`` over the store ``tracking_uri`` on ``host:port`` (one worker unless ``workers``);
    the background service (:mod:`se_lib.tracking.service`) adds its options to it."""
    exe = Path(sys.executable).with_name("mlflow")
    mlflow = str(exe) if exe.exists() else (shutil.which("mlflow") or "mlflow")
    return [
        mlflow,
        "server",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def server_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with the server's job runner off unless set there."""
    env = dict(os.environ if base is None else base)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env
