"""Published results as cited data (config/published/*.yaml, se_lib/report/published.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from se_lib.report.names import METRICS
from se_lib.report.published import (
    METRIC_KEYS,
    PESQ_IMPLEMENTATIONS,
    PUBLISHED_DIR,
    PublishedTable,
    load_published,
    published_for,
    published_frame,
)

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "config" / "published").glob("*.yaml"))
PAPER = "Macartney & Weyde, Improved Speech Enhancement with the Wave-U-Net, arXiv:1811.11307, 2018"


def good_row(**over) -> dict:
    row = {
        "system": "Wave-U-Net",
        "metrics": {"pesq": 2.40, "csig": 3.52},
        "paper": PAPER,
        "table": "Table 1",
        "pesq_implementation": "matlab_composite",
    }
    row.update(over)
    return row


def write(tmp_path: Path, doc, name: str = "voicebank_demand.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- real files


def test_the_repository_has_the_published_folder():
    assert PUBLISHED_DIR == ROOT / "config" / "published"
    names = {p.stem for p in FILES}
    assert {"voicebank_demand", "dns2020_no_reverb"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_real_files_load_and_cite_every_row(path):
    table = load_published(path)
    assert table.test_set == path.stem, "a file is named after its test set"
    assert table.rows
    for row in table.rows:
        assert row.paper.strip() and row.table.strip(), row.system
        assert row.table.startswith("Table "), row
        assert row.pesq_implementation in PESQ_IMPLEMENTATIONS
        assert row.metrics and set(row.metrics) <= set(METRIC_KEYS)
        assert all(isinstance(v, float) and math.isfinite(v) for v in row.metrics.values())
        assert row.source == f"{row.paper}, {row.table}"
    assert len(set(table.systems)) == len(table.systems)


def test_voicebank_demand_has_noisy_and_wave_u_net():
    table = published_for("voicebank_demand")
    assert table is not None
    noisy = table.row("Noisy input")
    assert noisy.metrics == {"pesq": 1.97, "csig": 3.35, "cbak": 2.44, "covl": 2.63, "ssnr": 1.68}
    assert "1811.11307" in noisy.paper
    wun = table.row("Wave-U-Net")
    assert wun.metrics["pesq"] == pytest.approx(2.40)
    assert {"csig", "cbak", "covl"} <= set(wun.metrics)
    assert "Macartney" in wun.paper and wun.table == "Table 1"


def test_dns_no_reverb_has_noisy_and_conv_tasnet():
    table = published_for("dns2020_no_reverb")
    assert table is not None
    noisy = table.row("Noisy input")
    assert noisy.metrics["pesq"] == pytest.approx(1.582)
    assert 0 < noisy.metrics["stoi"] <= 1, "STOI stored on 0..1"
    conv = table.row("Conv-TasNet")
    assert conv.metrics["pesq"] == pytest.approx(2.730)
    assert conv.paper and conv.table


def test_file_comments_say_which_pesq_gives_1_97():
    text = (ROOT / "config" / "published" / "voicebank_demand.yaml").read_text(encoding="utf-8")
    assert "P.862.2" in text and "composite.m" in text


def test_published_for_absent_test_set_is_none(tmp_path):
    assert published_for("no_such_test_set") is None
    assert published_for("voicebank_demand", folder=tmp_path) is None


def test_published_for_relative_folder_falls_back_to_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = published_for("voicebank_demand", folder="config/published")
    assert table is not None and table.path.parent == PUBLISHED_DIR


def test_published_for_checks_the_name_matches(tmp_path):
    write(tmp_path, {"test_set": "dns2020_no_reverb", "rows": [good_row()]}, name="voicebank_demand.yaml")
    with pytest.raises(ValueError, match=r"voicebank_demand\.yaml.*dns2020_no_reverb"):
        published_for("voicebank_demand", folder=tmp_path)


def test_module_is_import_light():
    code = (
        "import sys, se_lib.report.published as p; "
        "heavy = [m for m in ('torch', 'matplotlib', 'mlflow', 'lightning') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        (good_row(metrics={"pesq": 2.4, "mos": 3.0}), r"rows\[0\] \(Wave-U-Net\): metrics\.mos: unknown metric"),
        (good_row(metrics={"pesq": "2.40"}), r"rows\[0\] \(Wave-U-Net\): metrics\.pesq: not a number"),
        (good_row(metrics={"pesq": True}), r"metrics\.pesq: not a number"),
        (good_row(metrics={"stoi": 91.52}), r"metrics\.stoi: 91\.52 is outside 0\.\.1 \(give STOI as 0\.\.1"),
        (good_row(metrics={"pesq": float("nan")}), r"metrics\.pesq: not a finite number"),
        (good_row(metrics={}), r"rows\[0\] \(Wave-U-Net\): metrics must be a non-empty mapping"),
        (good_row(paper=None), r"rows\[0\] \(Wave-U-Net\): paper must be non-empty text \(missing\)"),
        (good_row(paper="  "), r"rows\[0\] \(Wave-U-Net\): paper must be non-empty text"),
        (good_row(table=1), r"rows\[0\] \(Wave-U-Net\): table must be non-empty text \(int 1\)"),
        (good_row(pesq_implementation="matlab"), r"pesq_implementation 'matlab' is unknown"),
        (good_row(pesq_implementation=None), r"pesq_implementation is missing"),
        (good_row(sytem="x"), r"rows\[0\] \(Wave-U-Net\): unknown key\(s\) \['sytem'\]"),
        (good_row(system=""), r"rows\[0\]: system must be non-empty text"),
    ],
)
def test_bad_rows_name_file_row_and_key(tmp_path, row, pattern):
    if row.get("pesq_implementation", "x") is None:
        del row["pesq_implementation"]
    if row.get("paper", "x") is None:
        del row["paper"]
    path = write(tmp_path, {"test_set": "voicebank_demand", "rows": [row]})
    with pytest.raises(ValueError, match=pattern) as err:
        load_published(path)
    assert str(path) in str(err.value)


def test_row_without_pesq_may_omit_the_implementation(tmp_path):
    row = good_row(metrics={"si_sdr": 12.5})
    del row["pesq_implementation"]
    table = load_published(write(tmp_path, {"test_set": "t", "rows": [row]}))
    assert table.rows[0].pesq_implementation == "unknown"


def test_second_row_errors_name_that_row(tmp_path):
    rows = [good_row(system="Noisy input"), good_row(metrics={"pesq": 2.4, "sisdr": 1.0})]
    path = write(tmp_path, {"test_set": "voicebank_demand", "rows": rows})
    with pytest.raises(ValueError, match=r"rows\[1\] \(Wave-U-Net\): metrics\.sisdr"):
        load_published(path)


def test_duplicate_systems_are_refused(tmp_path):
    path = write(tmp_path, {"test_set": "voicebank_demand", "rows": [good_row(), good_row()]})
    with pytest.raises(ValueError, match=r"rows\[1\] \(Wave-U-Net\): system 'Wave-U-Net' appears twice"):
        load_published(path)


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ("test_set: [unclosed\n", r"not valid YAML"),
        ("- just\n- a list\n", r"expected a mapping with test_set and rows"),
        ({"rows": [good_row()]}, r"test_set must be non-empty text \(missing\)"),
        ({"test_set": "voicebank_demand"}, r"rows must be a non-empty list"),
        ({"test_set": "voicebank_demand", "rows": []}, r"rows must be a non-empty list"),
        ({"test_set": "voicebank_demand", "rows": ["Wave-U-Net"]}, r"rows\[0\]: a row must be a mapping"),
        ({"test_set": "voicebank_demand", "rows": [good_row()], "source": "x"}, r"unknown top-level key"),
    ],
)
def test_bad_files_name_the_file(tmp_path, doc, pattern):
    path = write(tmp_path, doc)
    with pytest.raises(ValueError, match=pattern) as err:
        load_published(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_published(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------------------------- the frame


def test_published_frame_shape_and_columns():
    table = published_for("voicebank_demand")
    metrics = ["si_sdr", "pesq_wb", "csig", "cbak", "covl", "ssnr", "stoi"]
    frame = published_frame(table, metrics)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["system", *metrics, "source", "pesq_implementation"]
    assert frame.shape == (len(table.rows), len(metrics) + 3)
    assert list(frame["system"]) == list(table.systems)
    noisy = frame.set_index("system").loc["Noisy input"]
    assert noisy["pesq_wb"] == pytest.approx(1.97), "our pesq_wb reads the published wide-band pesq"
    assert math.isnan(noisy["si_sdr"]) and math.isnan(noisy["stoi"])
    assert noisy["source"].endswith(", Table 1") and "Macartney" in noisy["source"]
    assert noisy["pesq_implementation"] == "itu_p862_2"
    assert all(frame[m].dtype == float for m in metrics)


def test_published_frame_with_the_report_metrics_appends_under_our_rows():
    table = published_for("dns2020_no_reverb")
    ours = pd.DataFrame([{"system": "noisy", **{m: 1.0 for m in METRICS}}])
    frame = published_frame(table, METRICS)
    both = pd.concat([ours, frame], ignore_index=True)
    assert len(both) == 1 + len(table.rows)
    conv = both.set_index("system").loc["Conv-TasNet"]
    assert conv["pesq_wb"] == pytest.approx(2.730)
    assert math.isnan(conv["si_sdri"]) and math.isnan(conv["dnsmos_p808"])


def test_published_frame_drop_empty_and_empty_metric_list():
    table = PublishedTable(
        test_set="t",
        rows=(
            load_published(PUBLISHED_DIR / "dns2020_no_reverb.yaml").row("DCCRN-E"),
            load_published(PUBLISHED_DIR / "dns2020_no_reverb.yaml").row("FullSubNet"),
        ),
    )
    assert list(published_frame(table, ["pesq_wb"], drop_empty=True)["system"]) == ["FullSubNet"]
    assert list(published_frame(table, ["pesq_wb"])["system"]) == ["DCCRN-E", "FullSubNet"]
    frame = published_frame(table, [])
    assert list(frame.columns) == ["system", "source", "pesq_implementation"]
    assert frame.shape == (2, 3)
