"""Inference without Lightning (se_lib/inference/): the network from a checkpoint with plain torch, the
workflow's predict job, and what the predict/score entry points import.

* unit: :func:`se_lib.inference.checkpoint.load_network` rebuilds a network from a checkpoint laid out as
  ``se fit`` writes it (same outputs as the original), and names the file and the key for every way a
  checkpoint can be wrong; :func:`se_lib.inference.predict.data_args` merges the config files as ``se``;
* fresh interpreter: importing the predict / score / noisy_reference entry points (and the modules
  their ``main`` imports) loads no ``lightning``, ``mlflow.pytorch`` or ``matplotlib``;
* the tiny workflow (session fixture ``workflow_run``): its predict jobs ran without Lightning (MLflow
  tag) and wrote wavs byte-identical to ``se predict`` (LightningCLI) on the same checkpoint and data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from fresh import modules_after
from se_lib.inference.checkpoint import CheckpointError, load_network
from se_lib.inference.predict import data_args, inference_device, model_config, writer_args
from se_lib.models.conv_tasnet import ConvTasNet

REPO = Path(__file__).resolve().parent.parent
NET = {
    "class_path": "se_lib.models.conv_tasnet.ConvTasNet",
    "init_args": {"N": 16, "L": 16, "B": 8, "H": 16, "Sc": 8, "P": 3, "X": 2, "R": 1, "in_channels": 4},
}


def _checkpoint(path: Path, net: torch.nn.Module, hparams: dict | None = None, extra: dict | None = None) -> Path:
    """A checkpoint laid out as ``se fit`` writes one (module state under ``net.``, a loss buffer beside)."""
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    state["loss_fn.window"] = torch.ones(4)  # a loss's buffer: not the network's
    ckpt = {
        "epoch": 1,
        "state_dict": state,
        "hyper_parameters": hparams if hparams is not None else {"net": NET, "sample_rate": 16000, "loss": "si_sdr"},
        **(extra or {}),
    }
    torch.save(ckpt, path)
    return path


def test_load_network_rebuilds_the_trained_network(tmp_path):
    torch.manual_seed(0)
    net = ConvTasNet(**NET["init_args"]).eval()
    loaded = load_network(_checkpoint(tmp_path / "best.ckpt", net))
    assert type(loaded.net) is ConvTasNet and not loaded.net.training
    assert loaded.sample_rate == 16000 and loaded.in_channels == 4 and loaded.ref_mic == 0
    assert loaded.parameters == sum(p.numel() for p in net.parameters())
    x = torch.randn(2, 4, 3000)
    with torch.inference_mode():
        assert torch.equal(loaded.net(x), net(x))


def test_load_network_names_the_file_and_what_is_wrong(tmp_path):
    net = ConvTasNet(**NET["init_args"])
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_network(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.ckpt.*weights_only"):
        load_network(tmp_path / "junk.ckpt")
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"net": NET, "sample_rate": 16000}, "obj": object()}, tmp_path / "o.ckpt"
    )
    with pytest.raises(CheckpointError, match=r"o\.ckpt.*weights_only"):  # pickled objects are refused
        load_network(tmp_path / "o.ckpt")
    _checkpoint(tmp_path / "nonet.ckpt", net, {"sample_rate": 16000})
    with pytest.raises(CheckpointError, match=r"nonet\.ckpt: hyper_parameters has no 'net'"):
        load_network(tmp_path / "nonet.ckpt")
    bad_class = {"net": {**NET, "class_path": "se_lib.models.conv_tasnet.Gone"}, "sample_rate": 16000}
    _checkpoint(tmp_path / "gone.ckpt", net, bad_class)
    with pytest.raises(CheckpointError, match=r"gone\.ckpt: hyper_parameters\.net\.class_path.*Gone"):
        load_network(tmp_path / "gone.ckpt")
    not_module = {"net": {"class_path": "collections.OrderedDict", "init_args": {}}, "sample_rate": 16000}
    _checkpoint(tmp_path / "notmod.ckpt", net, not_module)
    with pytest.raises(CheckpointError, match="not a torch.nn.Module"):
        load_network(tmp_path / "notmod.ckpt")
    wider = {"net": {**NET, "init_args": {**NET["init_args"], "N": 32}}, "sample_rate": 16000}
    _checkpoint(tmp_path / "wider.ckpt", net, wider)
    with pytest.raises(CheckpointError, match=r"wider\.ckpt: the weights do not fit"):
        load_network(tmp_path / "wider.ckpt")
    _checkpoint(tmp_path / "norate.ckpt", net, {"net": NET})
    with pytest.raises(CheckpointError, match=r"norate\.ckpt: hyper_parameters has no 'sample_rate'"):
        load_network(tmp_path / "norate.ckpt")


def test_data_and_writer_args_merge_the_config_files_as_se_does(tmp_path):
    model = REPO / "config/models/conv_tasnet.yaml"
    demo = REPO / "config/models/demo/conv_tasnet.yaml"
    args = data_args(model_config([model, demo]), {"data.batch_size": 4, "data.init_args.num_workers": 0, "model.x": 1})
    shared = yaml.safe_load((REPO / "config/models/_shared.yaml").read_text())["data"]["init_args"]
    assert args["db_url"] == shared["db_url"] and args["seed"] == shared["seed"]  # from the shared file
    assert args["segment_seconds"] == 0.5 and args["eval_segment_seconds"] is None  # the demo overlay
    assert args["batch_size"] == 4 and args["num_workers"] == 0  # overrides, both spellings
    assert writer_args(model_config([model])) == {"write_noisy": True, "write_target": True, "subtype": "FLOAT"}
    other = tmp_path / "other.yaml"
    other.write_text("data:\n  class_path: my.DataModule\n")
    with pytest.raises(ValueError, match=r"data\.class_path 'my\.DataModule'"):
        data_args(model_config([model, other]))
    assert inference_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="accelerator 'tpu'"):
        inference_device("tpu")


# Entry points of the jobs that must start without Lightning, and the modules their main() imports.
LIGHT_ENTRY_POINTS = {
    "workflow_scripts/predict.py": ["se_lib.inference.predict", "se_lib.train.gpu_slots"],
    "workflow_scripts/score.py": ["se_lib.metrics.scorer"],
    "workflow_scripts/noisy_reference.py": ["se_lib.inference.writer", "se_lib.data.mixtures"],
    "workflow_scripts/enhance_recordings.py": ["se_lib.inference.enhance", "se_lib.train.gpu_slots"],
}
HEAVY = ("lightning", "lightning.pytorch", "lightning.fabric", "mlflow.pytorch", "matplotlib")


@pytest.mark.parametrize("script", sorted(LIGHT_ENTRY_POINTS))
def test_inference_entry_points_do_not_import_lightning(script):
    code = (
        "import runpy, importlib\n"
        f"runpy.run_path({str(REPO / script)!r}, run_name='entry_point_import_check')\n"
        f"for m in {LIGHT_ENTRY_POINTS[script]!r}: importlib.import_module(m)\n"
    )
    _, loaded = modules_after(code, HEAVY)
    assert loaded == [], f"{script} imports {loaded}"


# ----------------------------------------------------------------------------- the tiny workflow
MODELS = ("conv_tasnet", "ic_conv_tasnet", "dprnn", "wave_u_net")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first test to ask for it runs the tiny workflow (session fixture)
def test_workflow_predict_ran_without_lightning_and_matches_se_predict(workflow_run, tmp_path, monkeypatch):
    """Each model's predict job (plain torch) wrote the same bytes as ``se predict`` (LightningCLI) on the same
    checkpoint, config and data; the job's MLflow run says Lightning was never imported."""
    import mlflow

    from se_lib.config import read_config_files, validate_config
    from se_lib.train.jobs import predict_job as lightning_predict_job

    workdir, _ = workflow_run
    client = mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    exp = client.get_experiment_by_name("tiny_smoke")
    runs = client.search_runs([exp.experiment_id], "tags.`snakemake.rule` = 'predict'", max_results=100)
    assert runs and {r.data.tags.get("se.lightning_imported") for r in runs} == {"false"}

    monkeypatch.chdir(workdir)  # the DB and corpus paths of the config are relative to the workflow's root
    config = validate_config(read_config_files(["config/config.yaml", "config/tiny.yaml"])[0])
    for model in MODELS:
        job_dir = workdir / "results/predictions" / model / "test"
        out = tmp_path / model
        files = [f"config/models/{model}.yaml", f"config/models/demo/{model}.yaml"]
        stats = lightning_predict_job(
            model,
            "test",
            config,
            ckpt_path=f"results/models/{model}/best.ckpt",
            output_dir=out,
            stats_file=tmp_path / f"{model}_stats.json",
            config_files=files,
            threads=1,  # the tiny workflow's predict threads (tests/conftest.py TINY_SCHEDULING)
        )
        names = sorted(p.name for p in job_dir.glob("*.wav"))
        assert names == sorted(p.name for p in out.glob("*.wav")) and len(names) == 9  # 3 mixtures x 3 kinds
        for name in names:
            assert (job_dir / name).read_bytes() == (out / name).read_bytes(), f"{model}: {name} differs"
        job_stats = json.loads((workdir / "results/predictions" / model / "test_predict_stats.json").read_text())
        assert set(job_stats) == set(stats) - {"cli_args"}
        for key in ("n_files", "n_wavs", "audio_seconds", "parameters", "sample_rate", "subtype", "inference_mode"):
            assert job_stats[key] == stats[key], key
