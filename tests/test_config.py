"""Workflow configuration: schema validation names the offending key; Snakemake fails before any job."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from se_lib.config import ConfigError, load_config, tracking_uri

ROOT = Path(__file__).resolve().parent.parent


def test_default_config_is_valid_and_defaults_are_filled():
    cfg = load_config()
    assert cfg["experiment"] == "baseline_verification"
    assert cfg["rooms"]["mic_array"]["reference_mic"] == 0  # filled from the schema
    assert cfg["corpus"]["files"]["speaker_pattern"]  # nested default inside a defaulted object


@pytest.mark.parametrize(
    "override, key",
    [
        ({"mixtures": {"snr_range": [5]}}, "mixtures.snr_range"),
        ({"mixtures": {"snr_range": [10, -5]}}, "mixtures.snr_range"),
        ({"corpus": {"kind": "youtube"}}, "corpus.kind"),
        ({"rooms": {"count": {"train": 0, "val": 1, "test": 1}}}, "rooms.count.train"),
        ({"rooms": {"rt60_range": [0.5, 0.1]}}, "rooms.rt60_range"),
        ({"rooms": {"mic_array": {"preset": "custom"}}}, "rooms.mic_array.coords"),
        ({"sample_rate": 12345}, "sample_rate"),
        ({"corpus": {"kind": "files", "files": {"noise_glob": "x/*.wav"}}}, "corpus.files.speech_glob"),
        ({"models": ["bad name"]}, "models.0"),
    ],
)
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"'{key}'"):
        load_config(overrides=override)


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match="typo_key"):
        load_config(overrides={"typo_key": 1})


def test_tracking_uri_resolution(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri({"tracking": {"uri": None}}) == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri({"tracking": {"uri": None}}) == "http://127.0.0.1:5000"
    assert tracking_uri({"tracking": {"uri": "sqlite:///x.db"}}) == "sqlite:///x.db"


def test_snakemake_rejects_invalid_config_before_any_job(tmp_path):
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg["mixtures"]["snr_range"] = ["low", 5]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode != 0
    assert "mixtures.snr_range.0" in out.stdout + out.stderr
