"""``se runs``: the runs table of an MLflow experiment (se_lib/tracking/table.py) on a real sqlite store.

The store is filled with MlflowClient the way the workflow's rules fill it (tags of
:func:`se_lib.tracking.runs.standard_tags`, epoch metrics of a training run, test summaries logged onto
it by the scoring rule); the command is checked in-process through the ``se`` entry point and, for its
start-up, in a subprocess that must not import Lightning.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric

from se_lib.tracking.table import COLUMNS, format_table, runs_table
from se_lib.train.cli import main

REPO = Path(__file__).resolve().parent.parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _run(client, exp_id, name, rule, invocation, start_ms, *, model=None, dirty=False, extra_tags=None):
    tags = {
        "mlflow.runName": name,
        "snakemake.rule": rule,
        "se.invocation_id": invocation,
        "mlflow.source.git.commit": COMMIT,
        "se.git.dirty": "true" if dirty else "false",
        **(extra_tags or {}),
    }
    if model:
        tags["snakemake.wildcards.model"] = model
    run = client.create_run(exp_id, start_time=start_ms, tags=tags, run_name=name)
    return run.info.run_id


@pytest.fixture()
def store(tmp_path):
    """A store with two invocations: train + score of two models, the data rule, and an ad-hoc fit."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("exp-runs")
    client.create_experiment("other")
    t0 = 1_700_000_000_000
    ids = {}
    ids["db"] = _run(client, exp, "mixture_db", "mixture_db", "inv-aaaa", t0)
    for i, (model, vals, test) in enumerate((("conv_tasnet", [1.0, 4.5, 3.0], 3.25), ("dprnn", [2.0, 2.5], 3.6))):
        rid = _run(
            client,
            exp,
            f"train[model={model}]",
            "train",
            "inv-aaaa",
            t0 + 1000 * (i + 1),
            model=model,
            extra_tags={"se.model": model, "se.subcommand": "fit", "se.registered_model": f"se-{model}/{i + 1}"},
        )
        metrics = [Metric("val_si_sdr", v, 0, 10 * (e + 1)) for e, v in enumerate(vals)]
        metrics += [Metric("test_si_sdri", test, 0, 0), Metric("test_pesq_wb", 1.25, 0, 0)]
        metrics += [Metric("test_stoi", 0.74, 0, 0), Metric("test_dnsmos_ovrl", 1.5, 0, 0)]
        client.log_batch(rid, metrics=metrics)
        client.set_terminated(rid)
        ids[model] = rid
        ids[f"score_{model}"] = _run(
            client, exp, f"score[model={model},split=test]", "score", "inv-aaaa", t0 + 5000 + i, model=model
        )
    ids["cli"] = _run(client, exp, "cli", "cli", "interactive", t0 + 9000, dirty=True, extra_tags={"se.model": "dprnn"})
    ids["db2"] = _run(client, exp, "mixture_db", "mixture_db", "inv-bbbb", t0 + 20000)
    return uri, ids


def test_runs_table_columns_order_metrics_and_filters(store):
    uri, ids = store
    table = runs_table("exp-runs", tracking_uri=uri)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 7
    assert list(table["run_id"][:2]) == [ids["db2"], ids["cli"]]  # newest first
    assert table["start_time"].iloc[-1] == "2023-11-14 22:13:20"  # UTC of the first run
    train = table[table["rule"] == "train"].set_index("model")
    assert train.loc["conv_tasnet", "best_val_si_sdr"] == 4.5  # the maximum, not the last value
    assert train.loc["dprnn", "test_si_sdri"] == pytest.approx(3.6)
    assert train.loc["dprnn", "model_version"] == "se-dprnn/2"
    assert train.loc["conv_tasnet", "commit"] == COMMIT[:8]
    assert table.set_index("run_id").loc[ids["cli"], "commit"] == COMMIT[:8] + "*"  # dirty tree
    assert pd.isna(table.set_index("run_id").loc[ids["db"], "test_si_sdri"])

    assert set(runs_table("exp-runs", tracking_uri=uri, rule="train")["run_id"]) == {ids["conv_tasnet"], ids["dprnn"]}
    dprnn = runs_table("exp-runs", tracking_uri=uri, model="dprnn")  # tag se.model or the model wildcard
    assert set(dprnn["run_id"]) == {ids["dprnn"], ids["score_dprnn"], ids["cli"]}
    assert list(runs_table("exp-runs", tracking_uri=uri, invocation="inv-b")["run_id"]) == [ids["db2"]]
    both = runs_table("exp-runs", tracking_uri=uri, model="conv_tasnet", rule="score", invocation="inv-aaaa")
    assert list(both["run_id"]) == [ids["score_conv_tasnet"]]
    assert runs_table("exp-runs", tracking_uri=uri, rule="nosuch").empty
    assert "(no runs)" in format_table(runs_table("exp-runs", tracking_uri=uri, rule="nosuch"))


def test_se_runs_command_text_and_csv(store, capsys, monkeypatch, tmp_path):
    uri, ids = store
    monkeypatch.chdir(tmp_path)  # no config/config.yaml here: the experiment comes from the options
    with pytest.raises(SystemExit) as exc:
        main(["runs", "--tracking-uri", uri, "--experiment", "exp-runs", "--rule", "train"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"experiment exp-runs ({uri}): 2 runs"
    assert lines[1].split()[:3] == ["start_time", "run_name", "rule"]
    assert "train[model=dprnn]" in lines[2] and "se-dprnn/2" in lines[2] and "3.60" in lines[2]
    assert "4.50" in lines[3] and COMMIT[:8] in lines[3]

    # defaults from a workflow config file, as Snakemake merges --configfile
    (tmp_path / "a.yaml").write_text("experiment: nope\n")
    (tmp_path / "b.yaml").write_text(f"experiment: exp-runs\ntracking:\n  uri: {uri}\n")
    with pytest.raises(SystemExit) as exc:
        main(["runs", "--configfile", "a.yaml", "--configfile", "b.yaml", "--csv", "--model", "conv_tasnet"])
    assert exc.value.code == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(csv.columns) == list(COLUMNS) and set(csv["rule"]) == {"train", "score"}
    assert csv.set_index("rule").loc["train", "best_val_si_sdr"] == 4.5

    with pytest.raises(SystemExit) as exc:
        main(["runs", "--tracking-uri", uri, "--experiment", "nope"])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and "'nope' not found" in err and "exp-runs, other" in err
    missing = tmp_path / "none" / "mlflow.db"
    with pytest.raises(SystemExit) as exc:
        main(["runs", "--tracking-uri", f"sqlite:///{missing}", "--experiment", "x"])
    assert exc.value.code == 1 and "no MLflow store" in capsys.readouterr().err
    assert not missing.parent.exists()  # nothing created


def test_se_runs_starts_without_lightning():
    """`se runs --help` is dispatched before the LightningCLI module (and Lightning) is imported."""
    code = (
        "import sys; from se_lib.train.cli import main\n"
        "try:\n    main(['runs', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print('LOADED', sorted(m for m in ('lightning', 'torch', 'se_lib.train.secli') if m in sys.modules))"
    )
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert out.returncode == 0, out.stderr
    assert "--invocation" in out.stdout and "LOADED []" in out.stdout
    assert elapsed < 15, elapsed


@pytest.mark.timeout(1800)  # the first user of the session's tiny workflow run starts it
def test_se_runs_on_the_tiny_workflow_run(workflow_run):
    """The shared tiny run: one row per rule job, the training runs with their model version, commit and
    test scores (logged by the scoring rule), all of the run's single invocation."""
    import json

    workdir, _ = workflow_run
    table = runs_table("tiny_smoke", tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    assert len(table) == len(client.search_runs([client.get_experiment_by_name("tiny_smoke").experiment_id]))
    assert table["invocation"].nunique() == 1 and table["status"].eq("FINISHED").all()
    train = table[table["rule"] == "train"].set_index("model")
    assert train.index.is_unique  # one row per system: the models and the sweep points (<model>--<point>)
    for run_json in (workdir / "results" / "models").glob("*/run.json"):
        info = json.loads(run_json.read_text())
        row = train.loc[run_json.parent.name]
        assert row["run_id"] == info["run_id"] and row["commit"].startswith(info["git_commit"][:8])
        version = info.get("registered_version")
        registered = f"{info['registered_model']}/{version}" if version else ""
        assert row["model_version"] == registered, run_json  # sweep points are trials, not model versions
        assert pd.notna(row["best_val_si_sdr"]) and pd.notna(row["test_si_sdri"]) and pd.notna(row["test_stoi"])
    assert set(
        runs_table("tiny_smoke", tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}", rule="score")["model"]
    ) == set(train.index)
