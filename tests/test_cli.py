"""The ``se`` command's dispatch (se_lib/train/cli.py): the top-level help and every subcommand that trains
nothing start without Lightning; the training subcommands still reach the LightningCLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fresh import modules_after
from se_lib.train.cli import LIGHT_SUBCOMMANDS, TRAINING_SUBCOMMANDS, main

REPO = Path(__file__).resolve().parent.parent
SE = Path(sys.executable).with_name("se")
# What a command that trains nothing must not import (Lightning and what only training or plots need).
HEAVY = ("lightning", "lightning.pytorch", "mlflow.pytorch", "matplotlib", "se_lib.train.secli")


def se(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The installed ``se`` command (``python -m se_lib.train.cli`` without one), output captured."""
    cmd = [str(SE)] if SE.exists() else [sys.executable, "-m", "se_lib.train.cli"]
    return subprocess.run([*cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def loaded_after(*argvs: list[str]) -> dict:
    """Run ``se`` with each of ``argvs`` in one fresh interpreter; its exit statuses and which of
    :data:`HEAVY` it had imported at the end."""
    code = (
        "import json\n"
        "from se_lib.train.cli import main\n"
        "codes = []\n"
        f"for argv in {list(argvs)!r}:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "print(json.dumps(codes))\n"
    )
    printed, loaded = modules_after(code, HEAVY)
    return {"codes": json.loads(printed.strip().splitlines()[-1]), "loaded": loaded}


def test_help_lists_every_subcommand_without_lightning():
    out = se("--help")
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert set(TRAINING_SUBCOMMANDS) | set(LIGHT_SUBCOMMANDS) <= listed
    assert {"fit", "validate", "test", "predict", "runs", "mlflow"} <= listed
    assert "speech-enhancement" in out.stdout and "conv_tasnet" in out.stdout
    assert se("-h").stdout == out.stdout
    bare = se()
    assert bare.returncode == 2 and bare.stdout == out.stdout  # no subcommand: the help, as a usage error
    assert loaded_after(["--help"], ["-h"], []) == {"codes": [0, 0, 2], "loaded": []}


def test_commands_that_train_nothing_start_without_lightning():
    result = loaded_after(
        ["runs", "--help"],
        ["runs", "delete", "--help"],
        ["runs", "gc", "--help"],
        ["mlflow", "--help"],
        ["enhance", "--help"],
        ["models", "--help"],
        ["models", "promote", "--help"],
    )
    assert result == {"codes": [0, 0, 0, 0, 0, 0, 0], "loaded": []}


def test_unknown_subcommand_is_named_without_lightning():
    out = se("frobnicate", "--x")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "'frobnicate'" in out.stderr and "fit" in out.stderr and "runs" in out.stderr
    assert loaded_after(["frobnicate"]) == {"codes": [2], "loaded": []}


CALLS: list[list[str]] = []


def record(argv: list[str]) -> int:
    """A light subcommand for the test below: records its arguments."""
    CALLS.append(argv)
    return 0


def test_light_subcommands_table_can_be_extended(monkeypatch, capsys):
    """A new command that trains nothing is one entry of the table: listed in the help, dispatched."""
    from se_lib.train.cli import LightSubcommand

    monkeypatch.setitem(LIGHT_SUBCOMMANDS, "record", LightSubcommand(f"{__name__}:record", "record its arguments"))
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "  record " in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["record", "a", "--b"])
    assert exc.value.code == 0 and CALLS == [["a", "--b"]]


@pytest.mark.slow  # imports Lightning, in a fresh process and here
def test_training_subcommands_still_reach_the_lightning_cli():
    """``se fit --help`` imports Lightning when asked; the hand-written list matches the LightningCLI's."""
    out = se("fit", "--help")
    assert out.returncode == 0, out.stderr
    assert "--trainer.max_epochs" in out.stdout and "--mlflow.experiment" in out.stdout
    from se_lib.train.secli import SECLI

    assert list(SECLI.subcommands()) == list(TRAINING_SUBCOMMANDS)
