"""Hyper-parameter sweeps: config -> points (se_lib/sweep.py), the LightningCLI override check
(se_lib/train/overrides.py), the sweep views (se_lib/report/sweeps.py) and the workflow's sweep.

The workflow part reuses the session's tiny run (fixture ``workflow_run``): config/tiny.yaml declares a
2-point sweep of conv_tasnet's learning rate, so its points train, predict and are scored in that run;
adding or removing a point is checked with dry runs (``snakemake -n``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from se_lib.config import ConfigError, load_config
from se_lib.sweep import contour_pairs, pair_name, points, systems, value_slug

TINY_POINTS = ("conv_tasnet--lr1em3", "conv_tasnet--lr3em3")  # config/tiny.yaml's sweep
GRID = {"optimizer.init_args.lr": [1.0e-3, 3.0e-3], "data.batch_size": [4, 8]}


def _config(sweeps, **extra):
    return load_config(overrides={"sweeps": sweeps, **extra})


# ------------------------------------------------------------------------------------------ points
def test_grid_points_are_named_from_their_values_and_carry_their_overrides():
    config = _config({"conv_tasnet": {"grid": GRID, "fixed": {"trainer.max_epochs": 3}}})
    pts = {p.system: p for p in points(config)}
    assert sorted(pts) == [
        "conv_tasnet--lr1em3_batchsize4",
        "conv_tasnet--lr1em3_batchsize8",
        "conv_tasnet--lr3em3_batchsize4",
        "conv_tasnet--lr3em3_batchsize8",
    ]
    p = pts["conv_tasnet--lr3em3_batchsize8"]
    assert p.model == "conv_tasnet" and p.origin == "grid"
    assert p.values == {"optimizer.init_args.lr": 3.0e-3, "data.batch_size": 8}
    assert p.overrides == {"trainer.max_epochs": 3, "optimizer.init_args.lr": 3.0e-3, "data.batch_size": 8}
    assert systems(config) == [*config["models"], *pts]
    assert contour_pairs(config["sweeps"]["conv_tasnet"]) == [("optimizer.init_args.lr", "data.batch_size")]
    assert pair_name(config["sweeps"]["conv_tasnet"], "optimizer.init_args.lr", "data.batch_size") == "lr-batchsize"


@pytest.mark.parametrize(
    ("value", "slug"),
    [
        (1e-3, "1em3"),
        (1e-05, "1em5"),
        (2.5e-4, "2p5em4"),
        (0.5, "0p5"),
        (8, "8"),
        (-5, "m5"),
        (4.0, "4"),
        ([-5, 5], "m5x5"),
        ("torch.optim.AdamW", "AdamW"),
        (True, "true"),
        (None, "null"),
    ],
)
def test_values_are_spelled_without_characters_paths_dislike(value, slug):
    assert value_slug(value) == slug


def test_adding_values_or_draws_keeps_the_other_points_names():
    small = {p.system: p.values for p in points(_config({"conv_tasnet": {"grid": {"optimizer.init_args.lr": [1e-3]}}}))}
    big = {
        p.system: p.values for p in points(_config({"conv_tasnet": {"grid": {"optimizer.init_args.lr": [3e-4, 1e-3]}}}))
    }
    assert small.items() <= big.items() and len(big) == 2
    space = {"optimizer.init_args.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "data.batch_size": [4, 8, 16]}
    two = points(_config({"dprnn": {"random": {"n": 2, "seed": 7, "space": space}}}))
    three = points(_config({"dprnn": {"random": {"n": 3, "seed": 7, "space": space}}}))
    assert [p.system for p in two] == [p.system for p in three[:2]] and len(three) == 3
    for p in three:
        lr = p.values["optimizer.init_args.lr"]
        assert 1e-4 <= lr <= 1e-2 and lr == float(f"{lr:.3g}") and p.values["data.batch_size"] in (4, 8, 16)
        assert re.fullmatch(r"dprnn--lr[0-9a-z]+_batchsize\d+", p.system), p.system
    other_seed = points(_config({"dprnn": {"random": {"n": 3, "seed": 8, "space": space}}}))
    assert [p.system for p in other_seed] != [p.system for p in three]


@pytest.mark.parametrize(
    ("sweeps", "key"),
    [
        ({"no_such_model": {"grid": {"data.batch_size": [4]}}}, "sweeps.no_such_model"),
        ({"conv_tasnet": {"grid": {"data.batch_size": 4}}}, "sweeps.conv_tasnet.grid.data.batch_size"),
        ({"conv_tasnet": {"grid": {"data..batch_size": [4]}}}, "sweeps.conv_tasnet.grid"),
        ({"conv_tasnet": {"grid": GRID, "fixed": {"data.batch_size": 2}}}, "sweeps.conv_tasnet.fixed"),
        ({"conv_tasnet": {"fixed": {"data.batch_size": 2}}}, "sweeps.conv_tasnet"),
        ({"conv_tasnet": {"grd": GRID}}, "sweeps.conv_tasnet"),
        ({"conv_tasnet": {"random": {"n": 2, "space": {"x.y": {"low": 0, "high": 1, "log": True}}}}}, "x.y"),
    ],
)
def test_invalid_sweeps_fail_naming_the_key(sweeps, key):
    with pytest.raises(ConfigError) as err:  # the schema's, else the sweep table's (rules/common.smk builds it)
        points(_config(sweeps))
    assert f"config key '{key}" in str(err.value) or key in str(err.value), str(err.value)


# ---------------------------------------------------------------------- the LightningCLI override check
def test_override_check_uses_the_real_parser_names_the_key_and_caches_success(tmp_path):
    from se_lib.train.overrides import check

    base = {"models": ["conv_tasnet"]}
    typo = load_config(overrides={**base, "train": {"extra_args": {"data.batchsize": 4}}})
    problems = check(typo, cache_dir=tmp_path)
    assert problems == [
        "config key 'train.extra_args': data.batchsize: 4 is rejected by the LightningCLI config of conv_tasnet: "
        "Option 'batchsize' is not accepted"  # the parser's own reason
    ]

    wrong_type = _config({"conv_tasnet": {"grid": {"data.batch_size": [4, "four"]}}}, **base)
    problems = check(wrong_type, cache_dir=tmp_path)
    assert problems == [
        "config key 'sweeps.conv_tasnet.grid': data.batch_size: \"four\" is rejected by the LightningCLI config "
        "of conv_tasnet: Expected a int. Got value: four"
    ]
    assert not list(tmp_path.iterdir())  # failures are not cached

    good = _config({"conv_tasnet": {"grid": GRID, "fixed": {"trainer.max_epochs": 1}}}, **base)
    assert check(good, cache_dir=tmp_path) == []
    t0 = time.perf_counter()
    assert check(good, cache_dir=tmp_path) == [] and time.perf_counter() - t0 < 1.0
    assert len(list(tmp_path.iterdir())) == 1


def test_a_bad_override_stops_the_workflow_before_any_job(tmp_path, run_snakemake):
    from conftest import copy_workflow_source

    workdir = copy_workflow_source(tmp_path / "wf")
    tiny = workdir / "config" / "tiny.yaml"
    config = yaml.safe_load(tiny.read_text())
    config["train"]["extra_args"]["data.batchsize"] = 4
    tiny.write_text(yaml.safe_dump(config))
    out = run_snakemake(workdir, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()  # no job started
    # the cause at the end of the output (not 315 lines of a failed training job), once for all models
    tail = "\n".join(text.splitlines()[-8:])
    assert (
        "config key 'train.extra_args': data.batchsize: 4 is rejected by the LightningCLI config of "
        "conv_tasnet, ic_conv_tasnet, dprnn, wave_u_net: Option 'batchsize' is not accepted"
    ) in tail, text[-3000:]


# --------------------------------------------------------------------------------------- the views
def _synthetic_table():
    rows = []
    for lr in (1e-4, 1e-3, 1e-2):
        for bs in (4, 8):
            score = 5 - abs(np.log10(lr) + 3) - 0.1 * bs
            rows.append(
                {
                    "system": f"m--lr{value_slug(lr)}_batchsize{bs}",
                    "optimizer.init_args.lr": lr,
                    "data.batch_size": bs,
                    "best_val_si_sdr": score,
                    "test_si_sdri": score - 1,
                    "test_pesq_wb": 1.2 + score / 10,
                }
            )
    return pd.DataFrame(rows)


def test_sweep_views_draw_parallel_scatter_and_contour(tmp_path):
    from se_lib.report.sweeps import metric_label, plot_sweep_contour, plot_sweep_parallel, plot_sweep_scatter

    table = _synthetic_table()
    keys, metrics = ["optimizer.init_args.lr", "data.batch_size"], ["test_si_sdri", "test_pesq_wb"]
    plot_sweep_parallel(table, keys, "best_val_si_sdr", metrics, tmp_path / "p.png", title="t")
    plot_sweep_scatter(table, keys, ["best_val_si_sdr", *metrics], tmp_path / "s.png", title="t")
    plot_sweep_contour(table, *keys, ["test_si_sdri", "best_val_si_sdr"], tmp_path / "c.png", title="t")
    for name in ("p.png", "s.png", "c.png"):
        assert (tmp_path / name).stat().st_size > 5000, name
    # every figure's data beside it as CSV, ready for a paper
    assert set(pd.read_csv(tmp_path / "s.csv").columns) >= {*keys, "best_val_si_sdr", *metrics}
    contour = pd.read_csv(tmp_path / "c.csv")
    assert len(contour) == table.groupby(keys).ngroups and set(contour.columns) >= {*keys, "test_si_sdri"}
    assert (tmp_path / "p.csv").is_file()
    assert metric_label("test_si_sdri") == "test SI-SDRi [dB]" and metric_label("best_val_si_sdr") == "best val_si_sdr"
    with pytest.raises(ValueError, match="no points"):
        plot_sweep_scatter(table.iloc[:0], keys, metrics, tmp_path / "e.png", title="t")


# ------------------------------------------------------------------------- the workflow's tiny sweep
def test_each_point_is_its_own_training_run_with_the_overrides_as_params(workflow_run):
    workdir, _ = workflow_run
    client = mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    run_ids = set()
    for system, lr in zip(TINY_POINTS, ("0.001", "0.003"), strict=True):
        d = workdir / "results/models" / system
        assert (d / "best.ckpt").stat().st_size > 0
        info = json.loads((d / "run.json").read_text())
        run = client.get_run(info["run_id"])
        tags, params = run.data.tags, run.data.params
        assert tags["se.sweep"] == "conv_tasnet" and tags["se.sweep.point"] == system
        assert tags["snakemake.wildcards.model"] == system and tags["se.model"] == "conv_tasnet"
        assert params["sweep/optimizer.init_args.lr"] == lr and params["sweep/trainer.max_epochs"] == "1"
        assert float(params["optimizer/init_args/lr"]) == float(lr)  # what the optimizer really got
        assert run.data.metrics["epoch"] == 0  # fixed: trainer.max_epochs 1
        assert info["registered_version"] is None  # a trial, not the model's next version
        assert "test_si_sdri" in run.data.metrics  # scored like a model
        assert (workdir / f"results/scores/{system}/test_summary.tsv").is_file()
        run_ids.add(info["run_id"])
    base = json.loads((workdir / "results/models/conv_tasnet/run.json").read_text())["run_id"]
    assert len(run_ids | {base}) == 3
    assert "se.sweep" not in client.get_run(base).data.tags


def test_the_report_compares_the_points(workflow_run):
    workdir, _ = workflow_run
    sweep = workdir / "results/report/sweeps/conv_tasnet"
    table = pd.read_csv(sweep / "points.csv")
    assert list(table["system"]) == list(TINY_POINTS)
    assert table["optimizer.init_args.lr"].tolist() == [1e-3, 3e-3]
    assert np.isfinite(table[["best_val_si_sdr", "test_si_sdri", "test_pesq_wb", "test_stoi"]].to_numpy()).all()
    for png in ("parallel.png", "scatter.png"):
        assert (sweep / png).stat().st_size > 5000, png
    comparison = pd.read_csv(workdir / "results/report/test/comparison.tsv", sep="\t")
    assert set(TINY_POINTS) <= set(comparison["system"])


def _plan(workdir: Path, env: dict, extra: dict) -> dict[str, int]:
    """Job counts per rule of ``snakemake -n`` with ``extra`` as a config file after config/tiny.yaml."""
    overlay = workdir.parent / f"{workdir.name}-sweep-overlay.yaml"
    overlay.write_text(yaml.safe_dump(extra))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--cores", "2", "-n", "--configfile", str(workdir / "config/tiny.yaml"), str(overlay)]
    out = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout + out.stderr
    stats = text.split("Job stats:", 1)[1].split("total", 1)[0] if "Job stats:" in text else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}


def test_adding_a_point_runs_only_that_point_and_removing_one_runs_no_training(workflow_run, snakemake_env):
    workdir, _ = workflow_run
    env = snakemake_env(workdir)
    lrs = {"optimizer.init_args.lr": [1.0e-3, 3.0e-3, 1.0e-2]}
    added = _plan(workdir, env, {"sweeps": {"conv_tasnet": {"grid": lrs}}})
    assert {r: added.pop(r) for r in ("train", "predict", "score")} == {"train": 1, "predict": 1, "score": 1}, added
    assert set(added) <= {"all", "report_table", "report_snr", "report_learning_curves", "report_hparams"} | {
        "report_provenance",
        "report_sweep_table",
        "report_sweep",
    }, added
    removed = _plan(workdir, env, {"sweeps": {"conv_tasnet": {"grid": {"optimizer.init_args.lr": [1.0e-3]}}}})
    assert not {"train", "predict", "score", "score_noisy", "noisy_reference"} & set(removed), removed
    assert removed.get("report_sweep_table") == 1, removed  # the report drops the point
