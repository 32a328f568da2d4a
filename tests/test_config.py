"""Workflow configuration: schema validation names the offending key; Snakemake fails before any job."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from se_lib.config import ConfigError, experiment_name, load_config, schema_default, tracking_uri

ROOT = Path(__file__).resolve().parent.parent


def test_default_config_is_valid_and_defaults_are_filled():
    cfg = load_config()
    assert cfg["experiment"] == "baseline_verification"
    assert cfg["rooms"]["mic_array"]["reference_mic"] == 0  # filled from the schema
    assert cfg["corpus"]["files"]["speaker_pattern"]  # nested default inside a defaulted object
    assert cfg["report"]["curves"] == {"smoothing": 0.0, "log_scale": False, "x_axis": "epoch"}


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
        ({"report": {"curves": {"x_axis": "wallclock"}}}, "report.curves.x_axis"),
        ({"report": {"curves": {"smoothing": 1.0}}}, "report.curves.smoothing"),
        ({"report": {"curves": {"log_scale": "yes"}}}, "report.curves.log_scale"),
    ],
)
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"'{key}'"):
        load_config(overrides=override)


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match="typo_key"):
        load_config(overrides={"typo_key": 1})


def test_a_model_without_config_file_names_the_available_ones():
    with pytest.raises(ConfigError, match=r"'models.1'.*convtasnet.yaml.*available models: conv_tasnet, dprnn"):
        load_config(overrides={"models": ["dprnn", "convtasnet"]})
    assert load_config(overrides={"models": ["dprnn"], "train": {"overlay": "paper"}})["models"] == ["dprnn"]


def test_schema_defaults_are_read_from_the_schema():
    schema = yaml.safe_load((ROOT / "config/schema/config.schema.yaml").read_text())
    assert schema_default("seed") == schema["properties"]["seed"]["default"] == load_config(overrides={})["seed"]
    assert schema_default("train", "threads") == 2
    with pytest.raises(KeyError, match="nosuch"):
        schema_default("train", "nosuch")


def test_experiment_name_has_one_precedence(monkeypatch):
    monkeypatch.setenv("SE_EXPERIMENT", "from_env")
    config = load_config(overrides={"experiment": "from_config"})
    assert experiment_name(config, "explicit") == "explicit"
    assert experiment_name(config) == "from_config"
    assert experiment_name(None) == "from_env"
    monkeypatch.delenv("SE_EXPERIMENT")
    assert experiment_name(None) == schema_default("experiment") == "baseline_verification"


def test_no_fallback_defaults_for_schema_keys_in_code():
    """The schema is the only place a workflow default lives: no `config.get("<key>", default)` for its keys."""
    import re

    schema = yaml.safe_load((ROOT / "config/schema/config.schema.yaml").read_text())
    keys = set()

    def walk(node):
        for key, sub in (node.get("properties") or {}).items():
            keys.add(key)
            walk(sub)

    walk(schema)
    # `<...config/cfg...>[...].get("<schema key>", <default>)` and `(config or {}).get("<key>", <default>)`
    receiver = r"(?:\b\w*(?:config|cfg)\w*(?:\[[^\]]*\])*|\(\w*(?:config|cfg)\w* or \{\}\))"
    names = "|".join(sorted(keys))
    pattern = re.compile(receiver + rf"""\.get\(\s*["']({names})["']\s*,""")
    offenders = []
    for folder in ("se_lib", "rules", "workflow_scripts", "bench"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".smk"):
                for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if pattern.search(line):
                        offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


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
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    assert "mixtures.snr_range.0" in out.stdout + out.stderr


def test_one_rule_names_a_models_config_folders(tmp_path):
    """config/models (+ demo/ for the demo overlay): the same folders for `se`, the rules and the DVC stages."""
    from se_lib.config import model_config_dirs, model_config_files

    assert model_config_dirs("paper") == [Path("config/models")]
    assert model_config_dirs("demo", tmp_path) == [tmp_path, tmp_path / "demo"]
    with pytest.raises(ValueError, match="train.overlay"):
        model_config_dirs("small")
    (tmp_path / "demo").mkdir()
    (tmp_path / "dprnn.yaml").write_text("{}\n")
    assert model_config_files("dprnn", "paper", tmp_path) == [str(tmp_path / "dprnn.yaml")]
    with pytest.raises(FileNotFoundError, match=r"demo/dprnn.yaml not found \(config key 'models' lists 'dprnn'\)"):
        model_config_files("dprnn", "demo", tmp_path)
