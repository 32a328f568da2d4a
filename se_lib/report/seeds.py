"""Does a result hold over training seeds? Each model beside its ``seed_everything`` sweep points.

The demo's claim, "every model above the noisy input on every metric", is measured on one training
run per model; training is not bit-identical across CPUs, so a margin smaller than the run-to-run
spread is luck. config/seeds.yaml retrains every model with more ``seed_everything`` values (sweep
points ``<model>--seed<N>``); :func:`seed_table` reads the test scores of the model and of its seed
points (``results/scores/<system>/<split>_summary.tsv``) and gives, per model and metric:

* ``mean``, ``min``, ``max`` and ``spread`` (max - min) over the seeds;
* ``noisy``: the unprocessed reference microphone's score; ``worst_margin``: the lowest seed's score
  minus ``noisy``;
* ``holds``: every seed above the noisy input by more than the spread (``worst_margin > spread``).

``python -m se_lib.report.seeds [--configfile F ...] [--split test]`` prints it as a Markdown table
(README "The demo over training seeds") and exits 1 where the claim does not hold.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from se_lib.report.names import BASELINE, METRIC_LABELS

__all__ = ["SEED_KEY", "main", "markdown", "seed_systems", "seed_table"]

SEED_KEY = "seed_everything"
#: The metrics the demo's claim is about (README "What `make run` gives on the demo data").
CLAIM_METRICS = ("si_sdr", "pesq_wb", "stoi", "estoi", "dnsmos_ovrl")


def seed_systems(config: Mapping[str, Any]) -> dict[str, list[tuple[Any, str]]]:
    """Per model: ``(seed, system)`` of the model itself (the workflow's ``seed``) and of each of its sweep
    points that varies ``seed_everything`` only; models without such points are left out."""
    from se_lib.sweep import points

    out: dict[str, list[tuple[Any, str]]] = {}
    for p in points(config):
        if set(p.values) == {SEED_KEY} and set(p.overrides) == {SEED_KEY}:
            out.setdefault(p.model, [(config["seed"], p.model)]).append((p.values[SEED_KEY], p.system))
    return out


def seed_table(
    config: Mapping[str, Any],
    results: str | os.PathLike = "results",
    split: str = "test",
    metrics: Sequence[str] = CLAIM_METRICS,
) -> Any:
    """The table of the module docstring (a pandas DataFrame, one row per model and metric); a missing
    summary file is a ``FileNotFoundError`` naming it."""
    import pandas as pd

    from se_lib.report.tables import read_summary

    def scores(system: str) -> Any:
        path = Path(results) / "scores" / system / f"{split}_summary.tsv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no score summary (run the workflow with config/seeds.yaml first)")
        return read_summary(path)["mean"]

    groups = seed_systems(config)
    if not groups:
        raise ValueError(f"no sweep of {SEED_KEY} alone in the config (add config/seeds.yaml)")
    noisy = scores(BASELINE)
    rows = []
    for model, members in groups.items():
        per_seed = {seed: scores(system) for seed, system in members}
        for metric in metrics:
            values = [float(s[metric]) for s in per_seed.values()]
            lo, hi = min(values), max(values)
            rows.append(
                {
                    "model": model,
                    "metric": metric,
                    "seeds": len(values),
                    "mean": sum(values) / len(values),
                    "min": lo,
                    "max": hi,
                    "spread": hi - lo,
                    "noisy": float(noisy[metric]),
                    "worst_margin": lo - float(noisy[metric]),
                    "holds": bool(lo - float(noisy[metric]) > hi - lo),
                    "per_seed": " ".join(f"{seed}:{v:.4g}" for seed, v in zip(per_seed, values, strict=True)),
                }
            )
    return pd.DataFrame(rows)


def markdown(table: Any) -> str:
    """One row per model, one column per metric: ``mean (min..max)``, and ``✗`` where the claim fails."""
    metrics = list(dict.fromkeys(table["metric"]))
    lines = [
        "| system | " + " | ".join(METRIC_LABELS.get(m, m) for m in metrics) + " |",
        "|---" * (len(metrics) + 1) + "|",
    ]
    first = table.drop_duplicates("metric").set_index("metric")
    lines.append("| noisy (ref. mic) | " + " | ".join(f"{first.loc[m, 'noisy']:.3f}" for m in metrics) + " |")
    for model, rows in table.groupby("model", sort=False):
        rows = rows.set_index("metric")
        cells = []
        for m in metrics:
            r = rows.loc[m]
            mark = "" if r["holds"] else " ✗"
            cells.append(f"{r['mean']:.3f} ({r['min']:.3f}..{r['max']:.3f}){mark}")
        lines.append(f"| {model} ({int(rows['seeds'].iloc[0])} seeds) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from se_lib.config import DEFAULT_CONFIG, read_config_files, validate_config

    p = argparse.ArgumentParser(prog="python -m se_lib.report.seeds", description=__doc__.splitlines()[0])
    p.add_argument(
        "--configfile",
        nargs="+",
        default=[str(DEFAULT_CONFIG), "config/seeds.yaml"],
        help="workflow config files, as given to snakemake (default: config/config.yaml config/seeds.yaml)",
    )
    p.add_argument("--results", default="results", help="the workflow's results folder")
    p.add_argument("--split", default="test")
    p.add_argument("--tsv", help="also write the long table here")
    args = p.parse_args(argv)
    config = validate_config(read_config_files(args.configfile)[0])
    table = seed_table(config, args.results, args.split)
    if args.tsv:
        table.to_csv(args.tsv, sep="\t", index=False)
    print(markdown(table))
    failed = table[~table["holds"]]
    for _, r in failed.iterrows():
        print(
            f"not held: {r['model']} {r['metric']}: worst seed {r['min']:.4f} vs noisy {r['noisy']:.4f} "
            f"(margin {r['worst_margin']:+.4f}, spread {r['spread']:.4f})"
        )
    return 1 if len(failed) else 0


if __name__ == "__main__":
    sys.exit(main())
