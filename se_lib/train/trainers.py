"""Plain Lightning trainers for in-process work outside the ``se`` command (benchmarks, tests, notebooks)."""

from __future__ import annotations

from typing import Any

__all__ = ["bare_trainer"]


def bare_trainer(**kwargs: Any) -> Any:
    """A Lightning ``Trainer`` without the ``se`` command's extras, for in-process fits and predictions.

    No logger, checkpoints, progress bar or model summary, on one CPU device; ``kwargs`` are further
    ``Trainer`` arguments and override these (e.g. ``accelerator="auto"``, ``logger=...``).
    """
    import lightning.pytorch as pl

    settings: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return pl.Trainer(**{**settings, **kwargs})
