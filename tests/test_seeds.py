"""se_lib/report/seeds.py: a model's score over its seed_everything sweep points, against the noisy input."""

from __future__ import annotations

from pathlib import Path

import pytest

from se_lib.config import read_config_files, validate_config
from se_lib.report.seeds import CLAIM_METRICS, main, markdown, seed_systems, seed_table

REPO = Path(__file__).resolve().parent.parent


def _config() -> dict:
    return validate_config(read_config_files([REPO / "config/config.yaml", REPO / "config/seeds.yaml"])[0])


def _summary(results: Path, system: str, value: float, estoi: float | None = None) -> None:
    path = results / "scores" / system / "test_summary.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["metric\tmean\tci95\tcount\tnan_count"]
    for m in CLAIM_METRICS:
        v = estoi if (m == "estoi" and estoi is not None) else value
        rows.append(f"{m}\t{v}\t0.1\t20\t0")
    path.write_text("\n".join(rows) + "\n")


def test_seed_systems_are_each_model_and_its_seed_points():
    config = _config()
    groups = seed_systems(config)
    assert set(groups) == set(config["models"])
    assert groups["dprnn"] == [(config["seed"], "dprnn"), (1, "dprnn--seedeverything1"), (2, "dprnn--seedeverything2")]


def test_claim_holds_only_where_every_seed_clears_the_noisy_input_by_more_than_the_spread(tmp_path, capsys):
    config = _config()
    _summary(tmp_path, "noisy", 1.0)
    for model in config["models"]:
        for i, (_, system) in enumerate(seed_systems(config)[model]):
            # wave_u_net's ESTOI: seeds 1.02 / 1.05 / 1.08 -> margin 0.02 < spread 0.06
            _summary(tmp_path, system, 2.0 + 0.1 * i, estoi=1.02 + 0.03 * i if model == "wave_u_net" else None)
    table = seed_table(config, tmp_path)
    assert len(table) == len(config["models"]) * len(CLAIM_METRICS)
    row = table.set_index(["model", "metric"]).loc[("conv_tasnet", "si_sdr")]
    assert row["mean"] == pytest.approx(2.1) and row["spread"] == pytest.approx(0.2)
    assert row["worst_margin"] == pytest.approx(1.0) and row["holds"]
    failed = table[~table["holds"]]
    assert list(zip(failed["model"], failed["metric"], strict=True)) == [("wave_u_net", "estoi")]
    text = markdown(table)
    assert "| noisy (ref. mic) | 1.000 |" in text and "1.050 (1.020..1.080) ✗" in text
    assert (
        main(
            [
                "--configfile",
                str(REPO / "config/config.yaml"),
                str(REPO / "config/seeds.yaml"),
                "--results",
                str(tmp_path),
            ]
        )
        == 1
    )
    assert "not held: wave_u_net estoi" in capsys.readouterr().out
    (tmp_path / "scores" / "dprnn--seedeverything2" / "test_summary.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"dprnn--seedeverything2/test_summary\.tsv"):
        seed_table(config, tmp_path)
