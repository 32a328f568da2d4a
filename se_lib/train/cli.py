"""The ``se`` command's entry point (console script ``se = se_lib.train.cli:main``), kept import-light.

Only the subcommands that train or evaluate a network import Lightning, and only once one is chosen:

* ``se fit|validate|test|predict ...`` (:data:`TRAINING_SUBCOMMANDS`) go to the LightningCLI
  :class:`se_lib.train.secli.SECLI` (so does anything starting with an option other than ``-h``/``--help``,
  e.g. ``se --config c.yaml fit``);
* ``se``, ``se -h``/``--help`` print the top-level help written here (:func:`help_text`), in about the time
  Python takes to start;
* the subcommands of :data:`LIGHT_SUBCOMMANDS` are called as ``module:function`` with the arguments after
  their name, without Lightning: ``se runs [...]`` (the runs table, :mod:`se_lib.tracking.table`; ``se runs
  delete|gc`` clean up, :mod:`se_lib.tracking.cleanup`) and ``se mlflow start|stop|status`` (the tracking server
  as a background service, :mod:`se_lib.tracking.service`). A new command that trains nothing (``se enhance``,
  ``se models``, ...) is one more entry of that table.

``SECLI``, ``arch_name`` and the other names of :mod:`se_lib.train.secli` are importable from here
too (loaded on first use).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LightSubcommand:
    """A subcommand dispatched without Lightning: ``target`` is ``"module:function"``; the function takes the
    arguments after the subcommand's name and returns the exit status (or raises ``SystemExit``)."""

    target: str
    summary: str


# The LightningCLI's subcommands (SECLI.subcommands(); tests/test_cli.py keeps the two lists equal), with the
# one-line descriptions of the top-level help.
TRAINING_SUBCOMMANDS: dict[str, str] = {
    "fit": "train a model, tracked in MLflow (--resume true continues a killed run)",
    "validate": "evaluate a checkpoint on the validation split (--ckpt_path)",
    "test": "evaluate a checkpoint on the test split (--ckpt_path)",
    "predict": "write enhanced/noisy/target wavs named after their mixture (--ckpt_path)",
}

# Subcommands that train nothing: never import Lightning. Add one line per new command.
LIGHT_SUBCOMMANDS: dict[str, LightSubcommand] = {
    "runs": LightSubcommand(
        "se_lib.train.cli:runs_main", "the runs table of an MLflow experiment; se runs delete|gc clean up"
    ),
    "mlflow": LightSubcommand(
        "se_lib.tracking.service:main", "the MLflow tracking server as a background service: start|stop|status"
    ),
    "enhance": LightSubcommand(
        "se_lib.inference.enhance:main",
        "enhance your own recordings with a checkpoint or registered model (docs/enhance.md)",
    ),
    "models": LightSubcommand(
        "se_lib.tracking.models:main", "registered networks se-<model>: versions, aliases, scores; promote an alias"
    ),
}

HELP = """\
usage: se <subcommand> [options]        (se <subcommand> --help: its options)

se: train, evaluate and apply the speech-enhancement models of this project.

Training and evaluation (LightningCLI; config/models/_shared.yaml is read first, then each --config):
{training}

Runs and tools:
{light}

Models: --config config/models/<model>.yaml ({models}),
plus config/models/demo/<model>.yaml for the small demo sizes; override any key on the command line,
e.g. --data.batch_size 16 --trainer.max_epochs 100.

  se fit --config config/models/conv_tasnet.yaml --trainer.max_epochs 10
  se predict --config config/models/conv_tasnet.yaml --ckpt_path results/models/conv_tasnet/best.ckpt
  se fit --help | se fit --data.help MixtureDataModule | se fit --config ... --print_config
  se runs                                 (the runs of this project's MLflow store; se runs --help)
  se mlflow start                         (a shared tracking server on 127.0.0.1:5000)
"""


def help_text() -> str:
    """The top-level help of ``se``: every subcommand with its one-line description (no Lightning needed)."""
    from se_lib.config import available_models

    names = [*TRAINING_SUBCOMMANDS, *LIGHT_SUBCOMMANDS]
    width = max(map(len, names)) + 2

    def rows(items: dict[str, str]) -> str:
        return "\n".join(f"  {name:<{width}}{summary}" for name, summary in items.items())

    models = ", ".join(available_models()) or "none found"
    return HELP.format(
        training=rows(TRAINING_SUBCOMMANDS),
        light=rows({name: sub.summary for name, sub in LIGHT_SUBCOMMANDS.items()}),
        models=models,
    )


def runs_main(argv: Sequence[str]) -> int:
    """``se runs ...``: ``delete``/``gc`` (:func:`se_lib.tracking.cleanup.main`), else the runs table
    (:func:`se_lib.tracking.table.main`)."""
    argv = list(argv)
    if argv[:1] in (["delete"], ["gc"]):
        from se_lib.tracking.cleanup import main as cleanup_main

        return cleanup_main(argv)
    from se_lib.tracking.table import main as table_main

    return table_main(argv)


def run_light(name: str, argv: Sequence[str]) -> Any:
    """Run light subcommand ``name`` of :data:`LIGHT_SUBCOMMANDS` with ``argv``; return its exit status."""
    module, _, func = LIGHT_SUBCOMMANDS[name].target.partition(":")
    return getattr(importlib.import_module(module), func)(list(argv))


def main(args: Sequence[str] | None = None) -> None:
    """Console script ``se``: the top-level help, a subcommand of :data:`LIGHT_SUBCOMMANDS`, else
    :class:`SECLI` (``fit``, ``validate``, ``test``, ``predict``). Bare ``se`` prints the help and exits 2
    (no subcommand); an unknown subcommand is named (exit 2) without importing Lightning."""
    argv = list(args) if args is not None else sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(help_text(), end="")
        raise SystemExit(0 if argv else 2)
    if argv[0] in LIGHT_SUBCOMMANDS:
        raise SystemExit(run_light(argv[0], argv[1:]))
    if not argv[0].startswith("-") and argv[0] not in TRAINING_SUBCOMMANDS:
        choices = ", ".join([*TRAINING_SUBCOMMANDS, *LIGHT_SUBCOMMANDS])
        sys.stderr.write(f"error: unknown subcommand {argv[0]!r} (choose from {choices})\nhint: se --help\n")
        raise SystemExit(2)
    from se_lib.train.secli import SECLI

    SECLI(args=argv if args is not None else None)


def __getattr__(name: str) -> Any:
    """``from se_lib.train.cli import SECLI`` (and the other names of :mod:`se_lib.train.secli`)."""
    if name.startswith("__"):
        raise AttributeError(name)
    from se_lib.train import secli

    try:
        return getattr(secli, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


if __name__ == "__main__":
    main()
