"""The ``se`` command's entry point (console script ``se = se_lib.train.cli:main``), kept import-light.

* ``se runs [...]`` - the runs table of an MLflow experiment (:mod:`se_lib.tracking.table`); it is
  dispatched before anything imports Lightning, so it starts in about a second; ``se runs delete`` and
  ``se runs gc`` clean up (:mod:`se_lib.tracking.cleanup`);
* ``se mlflow start|stop|status`` - the tracking server as a background service
  (:mod:`se_lib.tracking.service`, ``make mlflow-start|stop|status``);
* everything else (``se fit|validate|test|predict ...``, ``se --help``) goes to the LightningCLI
  :class:`se_lib.train.secli.SECLI`.

``SECLI``, ``arch_name`` and the other names of :mod:`se_lib.train.secli` are importable from here
too (loaded on first use).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

LIGHT_SUBCOMMANDS = ("runs", "mlflow")


def main(args: Sequence[str] | None = None) -> None:
    """Console script ``se``: ``se runs ...`` (:func:`se_lib.tracking.table.main`), ``se mlflow ...``
    (:func:`se_lib.tracking.service.main`), else :class:`SECLI`."""
    argv = list(args) if args is not None else sys.argv[1:]
    if argv[:1] == ["runs"] and argv[1:2] in (["delete"], ["gc"]):
        from se_lib.tracking.cleanup import main as cleanup_main

        raise SystemExit(cleanup_main(argv[1:]))
    if argv and argv[0] == "runs":
        from se_lib.tracking.table import main as runs_main

        raise SystemExit(runs_main(argv[1:]))
    if argv and argv[0] == "mlflow":
        from se_lib.tracking.service import main as service_main

        raise SystemExit(service_main(argv[1:]))
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
