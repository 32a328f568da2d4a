"""``se models``: the registry of trained networks (``se-<model>``) -- what is there, and which version a team uses.

* ``se models`` (``list``): every registered ``se-*`` model's versions, newest first: version, aliases, the run
  it came from, the commit and DB digest it was trained on (version tags), its test scores (tags
  ``test_<metric>``) and its source (``runs:/<run>/model``: an MLflow pyfunc model; an older ``checkpoints``
  source loads in ``se enhance`` only).
* ``se models promote NAME VERSION [--alias champion]``: point an alias at a version (``models:/NAME@champion``
  then loads it; moving the alias is how a team deploys another version); ``--remove`` drops the alias;
  ``--if-better METRIC`` moves it only when the version's test metric beats the aliased version's
  (:mod:`se_lib.tracking.promotion`, what the workflow's ``registry.promote`` does after each test scoring).

The store is ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` (as every ``se``
command). Serving a version: ``docs/enhance.md`` (``mlflow models serve -m models:/se-dprnn@champion``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

PREFIX = "se-"
SCORE_TAGS = ("test_si_sdr", "test_pesq_wb", "test_stoi", "test_dnsmos_ovrl")


def versions_table(client: Any, prefix: str = PREFIX) -> list[dict[str, str]]:
    """One row per version of every registered model whose name starts with ``prefix``, by name then newest."""
    rows = []
    for model in sorted(client.search_registered_models(), key=lambda m: m.name):
        if not model.name.startswith(prefix):
            continue
        aliases: dict[str, list[str]] = {}
        for alias, version in (getattr(model, "aliases", None) or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        versions = client.search_model_versions(f"name='{model.name}'")
        for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
            tags = dict(v.tags or {})
            rows.append(
                {
                    "model": model.name,
                    "version": str(v.version),
                    "aliases": ",".join(sorted(aliases.get(str(v.version), []))),
                    "run": (v.run_id or "")[:8],
                    "commit": tags.get("git_commit", "")[:8] + ("*" if tags.get("git_dirty") == "true" else ""),
                    "db": tags.get("db_digest", "")[:8],
                    **{t.removeprefix("test_"): _short(tags.get(t, "")) for t in SCORE_TAGS},
                    "source": "pyfunc" if str(v.source).rstrip("/").endswith("/model") else str(v.source),
                }
            )
    return rows


def _short(value: str) -> str:
    try:
        return f"{float(value):.3f}"
    except ValueError:
        return value


def format_table(rows: Sequence[dict[str, str]]) -> str:
    if not rows:
        return "no registered models named se-* in this store (a training registers se-<model>)"
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from se_lib.config import tracking_uri

    ap = argparse.ArgumentParser(prog="se models", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"
    )
    sub = ap.add_subparsers(dest="cmd")
    sub.add_parser("list", help="registered versions, aliases, lineage and test scores (the default)")
    p = sub.add_parser("promote", help="point an alias at a version (models:/NAME@ALIAS)")
    p.add_argument("name", help="registered model, e.g. se-dprnn")
    p.add_argument("version", help="its version number")
    p.add_argument("--alias", default="champion", help="alias to set (default: champion)")
    p.add_argument("--remove", action="store_true", help="remove the alias instead (the version is ignored)")
    p.add_argument(
        "--if-better",
        metavar="METRIC",
        help="move the alias only if the version's tag METRIC (e.g. test_si_sdri) beats the aliased version's "
        "(as the workflow's registry.promote); the decision is printed and tagged promotion.<alias>",
    )
    p.add_argument(
        "--mode", choices=("max", "min"), help="with --if-better: max = higher is better (default: from the metric)"
    )
    a = ap.parse_args(argv)
    uri = a.tracking_uri or tracking_uri(None)
    client = MlflowClient(uri, registry_uri=uri)
    try:
        if a.cmd == "promote":
            if a.remove:
                client.delete_registered_model_alias(a.name, a.alias)
                print(f"{a.name}@{a.alias} removed")
            elif a.if_better:
                from se_lib.tracking.promotion import promote_if_better

                decision = promote_if_better(client, a.name, a.version, a.alias, a.if_better, a.mode)
                print(f"{a.name}: {decision.message}")
            else:
                client.get_model_version(a.name, a.version)  # a clear error for a missing model/version
                client.set_registered_model_alias(a.name, a.alias, a.version)
                print(f"{a.name}@{a.alias} -> version {a.version}  (models:/{a.name}@{a.alias})")
            return 0
        print(format_table(versions_table(client)))
        return 0
    except MlflowException as exc:
        print(f"error: se models {a.cmd or 'list'} ({uri}): {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
