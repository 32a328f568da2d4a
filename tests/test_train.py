"""Training: losses/metrics, EnhancementModule, the ``se`` LightningCLI and what a fit leaves in MLflow.

The end-to-end test runs ``se fit`` in a subprocess on a tiny synthetic mixture DB (the world
helpers of test_db.py) with a tiny Conv-TasNet, against a temporary MLflow sqlite store, then runs
``se predict --ckpt_path`` on the best checkpoint in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from se_lib.train.cli import SECLI, arch_name, main
from se_lib.train.jobs import train_args
from se_lib.train.losses import (
    MRSTFT_WEIGHT,
    get_loss,
    multi_resolution_stft,
    negative_si_sdr,
    preemphasis,
    sdr,
    si_sdr,
)
from se_lib.train.module import EnhancementModule
from se_lib.train.resume import config_digest
from se_lib.train.trainers import bare_trainer

REPO = Path(__file__).resolve().parent.parent
ARCHS = ("conv_tasnet", "ic_conv_tasnet", "dprnn", "wave_u_net")


# ------------------------------------------------------------------------------------ losses
def test_si_sdr_matches_torchmetrics_and_is_scale_invariant():
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as tm_si_sdr

    g = torch.Generator().manual_seed(0)
    target = torch.randn(3, 2000, generator=g)
    estimate = target + 0.3 * torch.randn(3, 2000, generator=g) + 0.2
    ours = si_sdr(estimate, target)
    ref = tm_si_sdr(estimate, target, zero_mean=True)
    torch.testing.assert_close(ours, ref, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(si_sdr(7.5 * estimate, target), ours, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(negative_si_sdr(estimate, target), -ours.mean())


def test_plain_sdr_closed_form_and_not_scale_invariant():
    g = torch.Generator().manual_seed(1)
    target = torch.randn(2, 1000, generator=g)
    err = torch.randn(2, 1000, generator=g)
    err = err * torch.sqrt(target.pow(2).sum(-1, keepdim=True) / (10.0 * err.pow(2).sum(-1, keepdim=True)))
    torch.testing.assert_close(sdr(target + err, target), torch.full((2,), 10.0), atol=1e-4, rtol=0)
    assert float(sdr(0.5 * target, target).mean()) < float(si_sdr(0.5 * target, target).mean())


def test_padding_is_excluded_by_lengths():
    g = torch.Generator().manual_seed(2)
    lengths = torch.tensor([1000, 600, 250])
    target = torch.randn(3, 1000, generator=g)
    estimate = target + 0.5 * torch.randn(3, 1000, generator=g)
    garbage_t, garbage_e = target.clone(), estimate.clone()
    for i, n in enumerate(lengths.tolist()):
        garbage_t[i, n:] = 100.0
        garbage_e[i, n:] = -55.0
    for fn in (si_sdr, sdr):
        masked = fn(garbage_e, garbage_t, lengths)
        per_item = torch.stack(
            [fn(estimate[i : i + 1, :n], target[i : i + 1, :n])[0] for i, n in enumerate(lengths.tolist())]
        )
        torch.testing.assert_close(masked, per_item, atol=1e-4, rtol=1e-5)
    with pytest.raises(ValueError, match="lengths"):
        si_sdr(estimate, target, torch.tensor([1000, 0, 5]))


def test_preemphasised_si_sdr_weighs_the_upper_bands():
    """The same error energy costs more at 4 kHz than at 200 Hz under si_sdr_preemph, while plain
    SI-SDR cannot tell them apart; still scale-invariant; padding beyond lengths is ignored."""
    t = torch.arange(16000) / 16000
    g = torch.Generator().manual_seed(7)
    target = torch.randn(1, 16000, generator=g)
    low, high = (0.1 * torch.sin(2 * torch.pi * f * t)[None] for f in (200.0, 4000.0))
    plain, pre = get_loss("si_sdr"), get_loss("si_sdr_preemph")
    assert float(plain(target + low, target)) == pytest.approx(float(plain(target + high, target)), abs=0.05)
    assert float(pre(target + high, target)) > float(pre(target + low, target)) + 10.0  # dB
    torch.testing.assert_close(pre(3.0 * (target + high), target), pre(target + high, target))
    x = torch.randn(2, 50, generator=g)
    torch.testing.assert_close(preemphasis(x)[:, 1:], x[:, 1:] - 0.95 * x[:, :-1])
    padded_e, padded_t = (target + high).repeat(2, 1), target.repeat(2, 1)
    padded_e[1, 12000:], padded_t[1, 12000:] = 9.0, -9.0
    per_item = pre(padded_e[1:, :12000], padded_t[1:, :12000])
    masked = -si_sdr(preemphasis(padded_e), preemphasis(padded_t), torch.tensor([16000, 12000]))[1]
    torch.testing.assert_close(masked, per_item)


def test_multi_resolution_stft_loss():
    """Zero for identical signals, grows with noise, counts a weak high band that SI-SDR hardly sees,
    ignores padding, is not scale-invariant; si_sdr+mrstft is their weighted sum and trains."""
    g = torch.Generator().manual_seed(5)
    t = torch.arange(16000) / 16000
    target = (torch.sin(2 * torch.pi * 200 * t) + 0.01 * torch.sin(2 * torch.pi * 5000 * t)).repeat(2, 1)
    assert float(multi_resolution_stft(target, target)) == pytest.approx(0.0, abs=1e-5)
    noise = torch.randn(2, 16000, generator=g)
    small, large = (multi_resolution_stft(target + a * noise, target) for a in (0.01, 0.1))
    assert 0 < float(small) < float(large)
    weak_band_lost = torch.sin(2 * torch.pi * 200 * t).repeat(2, 1)  # the 5 kHz tone (-40 dB) removed
    assert float(si_sdr(weak_band_lost, target).mean()) > 39.0  # SI-SDR: nearly perfect
    assert float(multi_resolution_stft(weak_band_lost, target)) > 0.1  # log magnitudes: clearly not (0.3)
    assert float(multi_resolution_stft(0.5 * target, target)) > 0.5  # the level counts
    padded_t, padded_e = target.clone(), (target + 0.05 * noise).clone()
    padded_t[:, 12000:], padded_e[:, 12000:] = 3.0, -3.0
    lengths = torch.tensor([12000, 12000])
    torch.testing.assert_close(
        multi_resolution_stft(padded_e, padded_t, lengths),
        multi_resolution_stft(
            torch.nn.functional.pad((target + 0.05 * noise)[:, :12000], (0, 4000)),
            torch.nn.functional.pad(target[:, :12000], (0, 4000)),
        ),
    )
    estimate = target + 0.05 * noise
    torch.testing.assert_close(
        get_loss("si_sdr+mrstft")(estimate, target),
        negative_si_sdr(estimate, target) + MRSTFT_WEIGHT * multi_resolution_stft(estimate, target),
    )
    torch.testing.assert_close(  # the weight is a setting (EnhancementModule mrstft_weight); 0: SI-SDR alone
        get_loss("si_sdr+mrstft", mrstft_weight=1.5)(estimate, target),
        negative_si_sdr(estimate, target) + 1.5 * multi_resolution_stft(estimate, target),
    )
    torch.testing.assert_close(get_loss("si_sdr+mrstft", 0.0)(estimate, target), negative_si_sdr(estimate, target))
    module = EnhancementModule(torch.nn.Identity(), loss="si_sdr+mrstft", mrstft_weight=2.0)
    torch.testing.assert_close(module.loss_fn(estimate, target), get_loss("si_sdr+mrstft", 2.0)(estimate, target))
    with pytest.raises(ValueError, match="mrstft_weight must be >= 0"):
        EnhancementModule(torch.nn.Identity(), loss="si_sdr+mrstft", mrstft_weight=-1.0)
    w = torch.zeros(2, 16000, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = get_loss("si_sdr+mrstft")(target + 0.3 * noise + w, target)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]


def test_loss_names():
    assert get_loss("si_sdr") is negative_si_sdr
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        get_loss("l1")
    with pytest.raises(ValueError, match="unknown loss"):
        EnhancementModule(nn.Identity(), loss="mse")


# ------------------------------------------------------------------------------------ module
class PickMic(nn.Module):
    """Returns microphone ``ref_mic`` times a learnable gain (an 'unprocessed' baseline)."""

    def __init__(self, ref_mic: int = 1, in_channels: int = 3) -> None:
        super().__init__()
        self.ref_mic, self.in_channels = ref_mic, in_channels
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, noisy):
        return noisy[:, self.ref_mic] * self.gain


def _batches(n: int = 3, seed: int = 0, channels: int = 3) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b in range(n):
        target = torch.randn(2, 800, generator=g)
        noisy = target[:, None].repeat(1, channels, 1) + torch.linspace(0.2, 0.8, channels)[
            None, :, None
        ] * torch.randn(2, channels, 800, generator=g)
        lengths = torch.tensor([800, 500])
        noisy[1, :, 500:] = 0
        target[1, 500:] = 0
        out.append(
            {
                "noisy": noisy,
                "target": target,
                "lengths": lengths,
                "mid": [f"m{b}a", f"m{b}b"],
                "meta": [{"split": "val"}, {"split": "val"}],
            }
        )
    return out


def test_validation_metrics_against_unprocessed_reference_mic():
    batches = _batches()
    module = EnhancementModule(PickMic(ref_mic=1), num_val_samples_to_log=3)
    metrics = bare_trainer().validate(module, DataLoader(batches, batch_size=None), verbose=False)[0]
    expected = torch.cat([si_sdr(b["noisy"][:, 1], b["target"], b["lengths"]) for b in batches])
    assert metrics["val_si_sdr"] == pytest.approx(float(expected.mean()), abs=1e-4)
    assert metrics["val_si_sdri"] == pytest.approx(0.0, abs=1e-5)  # enhanced == reference mic
    assert metrics["val_loss"] == pytest.approx(-float(expected.mean()), abs=1e-4)
    assert metrics["val_loss_epoch"] == metrics["val_loss"]
    # kept examples: trimmed to their lengths, reference channel of the noisy input
    assert [e["mid"] for e in module.val_examples] == ["m0a", "m0b", "m1a"]
    assert module.val_examples[1]["noisy"].shape == (500,)
    torch.testing.assert_close(module.val_examples[0]["noisy"], batches[0]["noisy"][0, 1])


class FastModule(EnhancementModule):
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def test_training_logs_step_and_epoch_loss_and_learns():
    batches = _batches(4, seed=3)
    module = FastModule(PickMic(ref_mic=0), loss="sdr")
    start = float(module.net.gain)
    module.net.gain.data.fill_(0.3)  # plain SDR penalises the wrong scale; training must fix it
    trainer = bare_trainer(max_epochs=3, log_every_n_steps=1, limit_val_batches=0, gradient_clip_val=5.0)
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))
    assert {"train_loss_step", "train_loss_epoch"} <= set(trainer.logged_metrics)
    assert float(module.net.gain) > 0.5 and start == 1.0


def test_plain_trainer_gets_the_cli_default_optimizer_and_plateau_scheduler():
    conf = EnhancementModule(PickMic()).configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 1e-3 and opt.defaults["weight_decay"] == 0
    assert isinstance(sched["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert sched["monitor"] == "val_loss" and sched["scheduler"].patience == 5 and sched["scheduler"].factor == 0.5
    assert sched["strict"] is False  # epochs without validation skip the step


def test_optimizer_and_scheduler_from_the_command_line():
    """`--optimizer AdamW --optimizer.lr 5e-4` as in any LightningCLI project; they replace the module's."""
    demo = REPO / "config" / "models" / "demo" / "conv_tasnet.yaml"
    base = [
        "--config",
        str(REPO / "config" / "models" / "conv_tasnet.yaml"),
        "--config",
        str(demo),
        "--trainer.accelerator",
        "cpu",
    ]
    cli = SECLI(
        args=base + ["--optimizer", "AdamW", "--optimizer.lr", "5e-4", "--lr_scheduler.patience", "2"], run=False
    )
    conf = cli.model.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]
    assert type(opt) is torch.optim.AdamW and opt.defaults["lr"] == 5e-4
    assert sched["monitor"] == "val_loss" and sched["scheduler"].patience == 2 and sched["strict"] is False
    # the demo overlay's learning rate; another scheduler by its short name
    cli = SECLI(args=base + ["--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "3"], run=False)
    conf = cli.model.configure_optimizers()
    assert type(conf["optimizer"]) is torch.optim.Adam and conf["optimizer"].defaults["lr"] == 3e-3
    assert type(conf["lr_scheduler"]["scheduler"]) is torch.optim.lr_scheduler.StepLR


def test_predict_step_returns_enhanced_and_metadata():
    batch = _batches(1)[0]
    out = EnhancementModule(PickMic(ref_mic=2)).predict_step(batch, 0)
    torch.testing.assert_close(out["enhanced"], batch["noisy"][:, 2])
    assert out["mid"] == batch["mid"] and out["meta"] == batch["meta"]
    assert torch.equal(out["lengths"], batch["lengths"]) and out["sample_rate"] == 16000
    assert out["noisy"].shape == batch["noisy"].shape and out["target"].shape == batch["target"].shape


class _DM(pl.LightningDataModule):
    def __init__(self, sample_rate: int, num_channels: int) -> None:
        super().__init__()
        self.sample_rate, self.num_channels = sample_rate, num_channels

    def val_dataloader(self):
        return DataLoader(_batches(1), batch_size=None)


def test_data_model_mismatch_is_named():
    with pytest.raises(ValueError, match=r"sample-rate mismatch: data.init_args.sample_rate=8000"):
        bare_trainer().validate(EnhancementModule(PickMic()), datamodule=_DM(8000, 3), verbose=False)
    with pytest.raises(ValueError, match=r"channel mismatch: the data has 2 microphones.*in_channels=3"):
        bare_trainer().validate(EnhancementModule(PickMic(ref_mic=0)), datamodule=_DM(16000, 2), verbose=False)


# --------------------------------------------------------------------------------------- CLI
def _print_config(args: list[str], capsys) -> dict:
    with pytest.raises(SystemExit) as exc:
        main(args + ["--print_config"])
    assert exc.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_model_configs_exist():
    from se_lib.config import SHARED_MODEL_CONFIG, available_models

    assert set(ARCHS) <= set(available_models()) and SHARED_MODEL_CONFIG.is_file()
    assert SHARED_MODEL_CONFIG.stem not in available_models()
    assert {p.stem for p in (REPO / "config" / "models" / "demo").glob("*.yaml")} >= set(ARCHS)


@pytest.mark.parametrize("arch", ARCHS)
def test_print_config_of_model_configs(arch, capsys):
    paper = REPO / "config" / "models" / f"{arch}.yaml"
    demo = REPO / "config" / "models" / "demo" / f"{arch}.yaml"
    cfg = _print_config(
        [
            "fit",
            "--config",
            str(paper),
            "--data.batch_size",
            "16",
            "--data.snr_range",
            "[-5, 5]",
            "--trainer.max_epochs",
            "100",
        ],
        capsys,
    )
    assert cfg["model"]["class_path"] == "se_lib.train.module.EnhancementModule"
    assert arch_name(cfg["model"]["init_args"]["net"]["class_path"]) == arch
    assert cfg["model"]["init_args"]["loss"] == "si_sdr"  # from config/models/_shared.yaml, read unnamed
    assert cfg["data"]["class_path"] == "se_lib.data.datamodule.MixtureDataModule"
    assert cfg["data"]["init_args"]["batch_size"] == 16
    assert cfg["data"]["init_args"]["snr_range"] == [-5.0, 5.0]
    assert cfg["trainer"]["max_epochs"] == 100 and cfg["trainer"]["gradient_clip_val"] == 5.0
    assert cfg["early_stopping"]["monitor"] == "val_loss" and cfg["early_stopping"]["patience"] == 10
    assert cfg["checkpoint"]["monitor"] == "val_loss" and cfg["checkpoint"]["save_last"] is True
    names = [c["class_path"].rsplit(".", 1)[-1] for c in cfg["trainer"]["callbacks"]]
    assert {"GPUStatsMonitor", "AudioSampleLogger"} <= set(names)
    assert cfg["trainer"]["default_root_dir"] == f"results/cli/{arch}"  # the model file's own
    assert cfg["optimizer"] == {**cfg["optimizer"], "class_path": "torch.optim.Adam"}
    assert cfg["optimizer"]["init_args"]["lr"] == 1e-3
    assert cfg["lr_scheduler"]["class_path"] == "lightning.pytorch.cli.ReduceLROnPlateau"
    sched = cfg["lr_scheduler"]["init_args"]
    assert (sched["monitor"], sched["mode"], sched["patience"], sched["factor"]) == ("val_loss", "min", 5, 0.5)
    assert cfg["prediction_writer"]["output_dir"] is None and cfg["prediction_writer"]["subtype"] == "FLOAT"
    assert cfg["mlflow"]["register"] is False  # registering a version is opt-in for ad-hoc runs
    demo_cfg = _print_config(["fit", "--config", str(paper), "--config", str(demo)], capsys)
    assert demo_cfg["model"]["init_args"]["net"]["class_path"] == cfg["model"]["init_args"]["net"]["class_path"]
    overlay = yaml.safe_load(demo.read_text())  # the overlay's own values win over the paper config's
    assert demo_cfg["optimizer"]["init_args"]["lr"] == overlay["optimizer"]["init_args"]["lr"]
    assert demo_cfg["trainer"]["max_epochs"] == overlay["trainer"]["max_epochs"] < 100
    assert demo_cfg["data"]["init_args"]["segment_seconds"] == overlay["data"]["init_args"]["segment_seconds"]
    assert demo_cfg["model"]["init_args"]["loss"] == overlay["model"]["init_args"].get("loss", "si_sdr")
    assert demo_cfg != _print_config(["fit", "--config", str(paper)], capsys)  # the overlay changes something


def test_workflow_args_parse(tmp_path, capsys):
    from se_lib.config import load_config

    config = load_config(
        REPO / "config" / "config.yaml",
        {
            "train": {
                "max_epochs": 3,
                "batch_size": 4,
                "num_workers": 0,
                "accelerator": "cpu",
                "extra_args": {"data.snr_range": [-5, 5], "optimizer.lr": 0.0005},
            }
        },
    )
    args = train_args("ic_conv_tasnet", config, tmp_path / "out")
    assert args[:5] == [
        "fit",
        "--config",
        "config/models/ic_conv_tasnet.yaml",
        "--config",
        "config/models/demo/ic_conv_tasnet.yaml",
    ]
    cfg = _print_config(args, capsys)
    assert cfg["trainer"]["max_epochs"] == 3 and cfg["trainer"]["accelerator"] == "cpu"
    assert cfg["data"]["init_args"]["batch_size"] == 4 and cfg["data"]["init_args"]["num_workers"] == 0
    assert cfg["data"]["init_args"]["snr_range"] == [-5.0, 5.0] and cfg["optimizer"]["init_args"]["lr"] == 0.0005
    assert cfg["data"]["init_args"]["db_url"] == "sqlite:///results/db/mixtures.sqlite"
    assert cfg["seed_everything"] == config["seed"] and cfg["data"]["init_args"]["seed"] == config["seed"]
    assert cfg["mlflow"]["experiment"] == "baseline_verification" and cfg["resume"] is True
    assert cfg["mlflow"]["register"] is True  # the workflow's jobs register; ad-hoc fits do not by default
    assert cfg["trainer"]["default_root_dir"] == str(tmp_path / "out")
    paper = train_args("dprnn", {**config, "train": {**config["train"], "overlay": "paper"}}, "x")
    assert "config/models/demo/dprnn.yaml" not in paper
    with pytest.raises(FileNotFoundError, match="config/models/nosuch.yaml"):
        train_args("nosuch", config, "x")


def test_resume_digest_covers_model_data_optimizer_seed_and_db_not_trainer():
    a = {
        "seed_everything": 1,
        "model": {"N": 1},
        "data": {"b": 2},
        "trainer": {"max_epochs": 3},
        "optimizer": {"lr": 1},
        "lr_scheduler": {"patience": 5},
    }
    assert config_digest(a) == config_digest({**a, "trainer": {"max_epochs": 9}})
    assert config_digest(a) != config_digest({**a, "model": {"N": 2}})
    assert config_digest(a) != config_digest({**a, "optimizer": {"lr": 2}})
    assert config_digest(a) != config_digest({**a, "lr_scheduler": {"patience": 2}})
    assert config_digest(a, "db1") != config_digest(a, "db2")


# ------------------------------------------------------------------- what a user meets first
def _se(args: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed ``se`` command (``python -m se_lib.train.cli`` without one) with ``args``, output captured."""
    se = Path(sys.executable).with_name("se")
    cmd = [str(se)] if se.exists() else [sys.executable, "-m", "se_lib.train.cli"]
    return subprocess.run(cmd + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # four `se` commands that import Lightning, in fresh processes
def test_help_and_mistakes_read_well():
    """`se --help` describes the project; short class names resolve; a mistake is named before anything else."""
    out = _se(["--help"])
    assert out.returncode == 0 and "speech-enhancement" in out.stdout
    assert all(word in out.stdout for word in ("fit", "validate", "test", "predict", "conv_tasnet"))
    assert "se runs" in out.stdout  # the runs table (tests/test_runs_table.py)
    out = _se(["fit", "--data.help", "MixtureDataModule"])
    assert out.returncode == 0 and "--data.db_url" in out.stdout and "--data.predict_split" in out.stdout
    out = _se(["fit", "--config", "config/models/convtasnet.yaml"])
    assert out.returncode == 2 and "Traceback" not in out.stderr
    first = out.stderr.splitlines()
    assert first[0].startswith("error:") and "convtasnet.yaml" in first[0]
    assert first[1].startswith("hint:") and "conv_tasnet" in first[1] and len(first) == 2
    out = _se(["fit", "--config", "config/models/conv_tasnet.yaml", "--trainer.epochs", "3"])
    first = out.stderr.splitlines()
    assert out.returncode == 2 and first[0].startswith("error:") and "trainer.epochs" in first[0]
    assert first[1].startswith("hint:") and len(first) == 2


# ------------------------------------------------------------------------- end to end (subprocess)
TINY_NET = {
    "class_path": "se_lib.models.conv_tasnet.ConvTasNet",
    "init_args": {"N": 16, "L": 16, "B": 8, "H": 16, "Sc": 8, "P": 3, "X": 2, "R": 1, "in_channels": 4},
}


def tiny_fit_config(root: Path, url: str, out: Path, max_epochs: int = 2, callbacks: list | None = None) -> dict:
    """A complete ``se fit`` config: tiny Conv-TasNet on the synthetic world under ``root``."""
    return {
        "seed_everything": 3,
        "trainer": {
            "max_epochs": max_epochs,
            "accelerator": "cpu",
            "devices": 1,
            "log_every_n_steps": 1,
            "gradient_clip_val": 5.0,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "default_root_dir": str(out),
            "callbacks": callbacks
            if callbacks is not None
            else [
                {"class_path": "se_lib.train.callbacks.GPUStatsMonitor", "init_args": {"interval_steps": 1}},
                {"class_path": "se_lib.train.callbacks.AudioSampleLogger"},
            ],
        },
        "model": {
            "class_path": "se_lib.train.module.EnhancementModule",
            "init_args": {"net": TINY_NET, "num_val_samples_to_log": 2},
        },
        "optimizer": {"init_args": {"lr": 0.003}},
        "data": {
            "class_path": "se_lib.data.datamodule.MixtureDataModule",
            "init_args": {
                "db_url": url,
                "batch_size": 2,
                "num_workers": 0,
                "segment_seconds": 0.5,
                "max_items": 4,
                "corpus_root": str(root),
                "seed": 5,
            },
        },
    }


def test_se_fit_end_to_end(train_world, tmp_path):
    from mlflow import MlflowClient

    root, _, url = train_world
    out = tmp_path / "run"
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_fit_config(root, url, out)), encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "SE_EXPERIMENT": "train_e2e"}
    proc = _se(
        ["fit", "--config", str(cfg_path), "--data.batch_size", "2", "--mlflow.register", "true"], cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("train_e2e")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    run_id = run.info.run_id
    # the command ends by saying where everything went
    summary = proc.stdout[proc.stdout.index("se fit finished: 2 epochs") :].splitlines()
    assert summary[1].startswith(f"  checkpoints:   {(out / 'checkpoints').resolve()}/ (best best-epoch")
    assert summary[2] == f"  MLflow run:    {run_id}, experiment 'train_e2e', store {uri}"
    assert summary[3].endswith(f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs/{run_id}")
    assert summary[4] == "  model version: se-conv_tasnet/1 (registered)"
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["snakemake.rule"] == "cli" and tags["mlflow.runName"] == "cli"
    assert len(tags["mlflow.source.git.commit"]) in (40, 7) or tags["mlflow.source.git.commit"] == "unknown"
    assert tags["se.git.dirty"] in ("true", "false") and "se.env.torch" in tags and "se.invocation_id" in tags
    assert tags["se.model"] == "conv_tasnet" and tags["se.registered_model"] == "se-conv_tasnet/1"

    def steps(key):
        return [m.step for m in client.get_metric_history(run_id, key)]

    assert steps("train_loss_step") == [0, 1, 2, 3]  # 2 batches x 2 epochs, logged every step
    for key in ("train_loss_epoch", "val_loss_epoch", "val_loss", "val_si_sdr", "val_si_sdri"):
        assert steps(key) == [1, 3], key
    assert not any(k.startswith("system/") for k in run.data.metrics)  # no GPU here
    params = run.data.params
    assert params["net/class_path"] == TINY_NET["class_path"] and params["loss"] == "si_sdr"
    assert params["batch_size"] == "2" and params["trainer/gradient_clip_val"] == "5.0"
    assert params["optimizer/class_path"] == "torch.optim.Adam" and params["optimizer/init_args/lr"] == "0.003"
    assert params["lr_scheduler/init_args/monitor"] == "val_loss"

    def listing(path=None):
        return {a.path for a in client.list_artifacts(run_id, path)}

    assert {"config.yaml", "audio_samples", "checkpoints"} <= listing()
    assert listing("audio_samples") == {"audio_samples/info.json", "audio_samples/sample_0", "audio_samples/sample_1"}
    assert listing("audio_samples/sample_0") == {
        f"audio_samples/sample_0/{n}" for n in ("noisy.wav", "enhanced.wav", "target.wav", "spectrogram.png")
    }
    assert {"checkpoints/best.ckpt", "checkpoints/config.yaml"} <= listing("checkpoints")
    local = Path(client.download_artifacts(run_id, "", str(tmp_path / "dl")))
    logged_cfg = yaml.safe_load((local / "config.yaml").read_text())
    assert logged_cfg["model"]["init_args"]["net"]["init_args"]["N"] == 16
    # complete: the shared file's settings and the optimizer/scheduler sections are in it
    assert logged_cfg["early_stopping"]["patience"] == 10 and logged_cfg["checkpoint"]["save_last"] is True
    assert logged_cfg["optimizer"]["init_args"]["lr"] == 0.003
    assert logged_cfg["lr_scheduler"]["init_args"]["monitor"] == "val_loss"
    import soundfile as sf

    info = sf.info(str(local / "audio_samples" / "sample_0" / "enhanced.wav"))
    assert info.samplerate == 16000 and info.frames == 8000
    assert (local / "audio_samples" / "sample_0" / "spectrogram.png").read_bytes()[:4] == b"\x89PNG"
    best_meta = json.loads((local / "checkpoints" / "best.json").read_text())
    assert best_meta["monitor"] == "val_loss"
    # the samples shown are those of the best epoch (logged on improvement)
    val_losses = [m.value for m in client.get_metric_history(run_id, "val_loss")]
    samples_info = json.loads((local / "audio_samples" / "info.json").read_text())
    assert samples_info["val_loss"] == pytest.approx(min(val_losses), abs=1e-5)
    assert best_meta["score"] == pytest.approx(min(val_losses), abs=1e-5)

    versions = client.search_model_versions("name='se-conv_tasnet'")
    assert [(str(v.version), v.run_id, v.source) for v in versions] == [("1", run_id, f"runs:/{run_id}/model")]
    # the version is an MLflow pyfunc model of the best checkpoint: MLflow's own loader runs it
    import mlflow.pyfunc
    import numpy as np

    from se_lib.inference.checkpoint import download_model

    served = mlflow.pyfunc.load_model(str(download_model("models:/se-conv_tasnet/1", uri)))
    assert served.metadata.metadata["sample_rate"] == 16000
    channels = served.metadata.metadata["in_channels"]
    assert served.predict(np.zeros((1, channels, 4000), np.float32)).shape == (1, 4000)
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and any(n.startswith("best-") for n in ckpts)
    assert (out / "checkpoints" / "mlflow_run_id").read_text().strip() == run_id

    # se predict --ckpt_path on the best checkpoint (in-process): weights_only loading, predict_step output
    best = next(p for p in (out / "checkpoints").glob("best-*.ckpt"))
    cli = SECLI(
        args=[
            "predict",
            "--config",
            str(cfg_path),
            "--ckpt_path",
            str(best),
            "--prediction_writer.output_dir",
            str(tmp_path / "pred"),
        ]
    )
    predictions = cli.trainer.predict_loop.predictions
    assert sum(len(p["mid"]) for p in predictions) == 3  # the test split
    first = predictions[0]
    assert first["enhanced"].shape == first["target"].shape and first["noisy"].shape[1] == 4
    assert first["meta"][0]["split"] == "test"
    assert len(list((tmp_path / "pred").glob("*_enhanced.wav"))) == 3

    # as a user would: the paper config + the checkpoint (its network config wins), wavs by default
    # beside the checkpoint
    proc = _se(
        [
            "predict",
            "--config",
            str(REPO / "config/models/conv_tasnet.yaml"),
            "--ckpt_path",
            str(best),
            "--data.init_args.db_url",
            url,
            "--data.init_args.corpus_root",
            str(root),
            "--data.init_args.num_workers",
            "0",
            "--trainer.accelerator",
            "cpu",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    written = best.parent / f"{best.stem}_predictions"
    kinds = sorted(p.name.rsplit("_", 1)[-1] for p in written.glob("*.wav"))
    assert kinds == ["enhanced.wav"] * 3 + ["noisy.wav"] * 3 + ["target.wav"] * 3
    assert json.loads((written / "predict_stats.json").read_text())["n_files"] == 3


def test_same_seed_and_config_give_identical_validation_metrics(train_world, tmp_path, capsys):
    """Determinism on the CPU: two ad-hoc fits with the same seed and config log the same validation
    curves, bit for bit. Ad-hoc fits register no model version unless asked (--mlflow.register true),
    and each ends by saying where its checkpoints and MLflow run went."""
    from mlflow import MlflowClient

    root, _, url = train_world
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    histories, run_ids = [], []
    for i in range(2):
        out = tmp_path / f"run{i}"
        cfg_path = tmp_path / f"fit{i}.yaml"
        cfg_path.write_text(yaml.safe_dump(tiny_fit_config(root, url, out, callbacks=[])), encoding="utf-8")
        cli = SECLI(args=["fit", "--config", str(cfg_path), "--mlflow.tracking_uri", uri, "--mlflow.experiment", "det"])
        client = MlflowClient(uri)
        run_ids.append(cli.run_id)
        histories.append(
            {
                key: [(m.step, m.value) for m in client.get_metric_history(cli.run_id, key)]
                for key in ("val_loss", "val_si_sdr", "val_si_sdri", "train_loss_epoch")
            }
        )
        summary = capsys.readouterr().out
        assert f"  MLflow run:    {cli.run_id}, experiment 'det', store {uri}" in summary
        assert "  model version: none (--mlflow.register true registers the best checkpoint as se-conv_tasnet)" in (
            summary
        )
        assert f"  checkpoints:   {(out / 'checkpoints').resolve()}/ (best best-epoch" in summary
    assert run_ids[0] != run_ids[1]
    assert len(histories[0]["val_si_sdr"]) == 2 and histories[0] == histories[1]
    assert MlflowClient(uri).search_registered_models() == []  # ad-hoc runs register nothing by default


def test_audio_samples_of_the_best_epoch_are_written_once_when_training_ends(tmp_path, monkeypatch):
    """On improvement the examples are kept, not plotted: one write of the best epoch's at the end (or on a
    failure); a periodic epoch is written at once; a resumed fit that improves no more writes its latest."""
    from types import SimpleNamespace

    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow import MlflowClient

    import se_lib.train.callbacks as callbacks

    written: list[int] = []
    real_write = callbacks.write_example

    def counting_write(folder, example, sample_rate):
        written.append(example["mid"])
        real_write(folder, example, sample_rate)

    monkeypatch.setattr(callbacks, "write_example", counting_write)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def run(callback, losses, fail=False):
        logger = MLFlowLogger(experiment_name="samples", tracking_uri=uri)
        trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, loggers=[logger], callback_metrics={})
        module = SimpleNamespace(sample_rate=16000, val_examples=[])
        for epoch, loss in enumerate(losses):
            signal = torch.full((800,), 0.01 * (epoch + 1))
            module.val_examples = [
                {"mid": 10 * epoch + i, "noisy": signal, "enhanced": signal, "target": signal} for i in range(2)
            ]
            trainer.current_epoch, trainer.global_step = epoch, 5 * (epoch + 1)
            trainer.callback_metrics = {"val_loss": torch.tensor(loss)}
            callback.on_validation_end(trainer, module)
        client = MlflowClient(uri)
        assert client.list_artifacts(logger.run_id, "audio_samples") == [] or callback.every_n_epochs
        if fail:
            callback.on_exception(trainer, module, RuntimeError("boom"))
        else:
            callback.on_train_end(trainer, module)
        local = Path(client.download_artifacts(logger.run_id, "audio_samples", str(tmp_path / logger.run_id)))
        return json.loads((local / "info.json").read_text()), sorted(p.name for p in local.glob("sample_*"))

    # best at epoch 1 of 3: nothing plotted while training, then epoch 1's two examples once
    info, samples = run(callbacks.AudioSampleLogger(), [-1.0, -3.0, -2.0])
    assert written == [10, 11] and samples == ["sample_0", "sample_1"]
    assert (info["epoch"], info["reason"], info["val_loss"], info["mids"]) == (1, "improvement", -3.0, [10, 11])
    # a failed fit still leaves the best epoch's examples
    written.clear()
    info, _ = run(callbacks.AudioSampleLogger(), [-1.0, -0.5], fail=True)
    assert written == [0, 1] and info["epoch"] == 0
    # periodic epochs (every 2nd) are written when they happen; the last improvement after them at the end
    written.clear()
    callback = callbacks.AudioSampleLogger(every_n_epochs=2)
    info, _ = run(callback, [-1.0, -0.5, -2.0])
    assert written == [10, 11, 20, 21] and callback.logged_epochs == [1, 2]
    assert (info["epoch"], info["reason"]) == (2, "improvement")
    # resumed after its best epoch (state from the checkpoint, nothing written before the kill), no better
    # epoch since: the latest epoch's examples, so that the run is not left without any
    written.clear()
    callback = callbacks.AudioSampleLogger()
    callback.load_state_dict({"best": -5.0, "logged_epochs": []})
    info, _ = run(callback, [-1.0, -2.0])
    assert written == [10, 11] and (info["epoch"], info["reason"], info["val_loss"]) == (1, "latest", -2.0)
