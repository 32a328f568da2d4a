"""Resume state of a training job: what a killed ``se fit`` leaves beside its checkpoints.

``<checkpoint dir>/mlflow_run_id`` and ``<checkpoint dir>/config_digest`` are written when the
trainer starts; ``se fit --resume true`` (:class:`se_lib.train.cli.SECLI`) continues that MLflow
run from ``last.ckpt`` only when the digest of the new job's config (:func:`config_digest`: model,
data, optimizer, scheduler, seed and the mixture DB's digest) is the same.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from se_lib.io import write_text_atomic

RUN_ID_FILE = "mlflow_run_id"
DIGEST_FILE = "config_digest"
# Config sections whose change makes an interrupted run's checkpoint/run unsuitable for resuming.
DIGEST_KEYS = ("seed_everything", "model", "data", "optimizer", "lr_scheduler")


@dataclass(frozen=True)
class ResumeState:
    run_id: str
    config_digest: str


def config_digest(dumped: Mapping[str, Any], db_digest: str = "") -> str:
    """SHA-256 of what defines the trained model: the config sections of :data:`DIGEST_KEYS` and the
    mixture DB's digest (a rebuilt DB with other content must not continue an old run)."""
    payload: dict[str, Any] = {key: dumped.get(key) for key in DIGEST_KEYS}
    payload["db_digest"] = db_digest
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def read_resume_state(ckpt_dir: str | os.PathLike) -> ResumeState | None:
    """Run id (empty without MLflow) + config digest stored beside the checkpoints by an earlier job."""
    folder = Path(ckpt_dir)
    values = []
    for name in (RUN_ID_FILE, DIGEST_FILE):
        try:
            values.append((folder / name).read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            values.append(None)
    if values == [None, None]:
        return None
    return ResumeState(values[0] or "", values[1] or "")


def write_resume_state(ckpt_dir: str | os.PathLike, run_id: str, digest: str) -> None:
    folder = Path(ckpt_dir)
    write_text_atomic(folder / DIGEST_FILE, digest + "\n")
    write_text_atomic(folder / RUN_ID_FILE, run_id + "\n")


def clear_checkpoint_dir(ckpt_dir: str | os.PathLike) -> None:
    """Remove checkpoints and resume state of a superseded run (only files this module writes)."""
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_file() and (path.suffix == ".ckpt" or path.name in (RUN_ID_FILE, DIGEST_FILE)):
            path.unlink()
