"""AudioPredictionWriter: names that parse back, padding undone exactly, atomic files, run statistics."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn
from torch.utils.data import DataLoader

import se_lib.data.audio as audio_mod
from se_lib.data.datamodule import collate_mixtures
from se_lib.data.naming import mixture_filename, parse_mixture_filename
from se_lib.train.jobs import predict_args
from se_lib.train.module import EnhancementModule
from se_lib.train.prediction_writer import AudioPredictionWriter, ItemWriter, predict_to_dir
from se_lib.train.trainers import bare_trainer

SR = 8000
MICS = 3


class ContextNet(nn.Module):
    """Output depends on a wide neighbourhood (a moving sum over 65 samples of the reference mic).

    With zero padding on the right a padded item's valid region equals the unpadded output only
    because the kernel looks at the past alone (causal); the test compares with per-item inference.
    """

    ref_mic = 1
    in_channels = MICS

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(0.5))
        self.k = 65

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        x = noisy[:, self.ref_mic : self.ref_mic + 1]
        y = nn.functional.conv1d(nn.functional.pad(x, (self.k - 1, 0)), torch.ones(1, 1, self.k) / self.k)
        return self.gain * y.squeeze(1) + 0.1 * noisy[:, 0]


def make_items(lengths: list[int], seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    items = []
    for i, n in enumerate(lengths):
        meta = {
            "sid": f"spk{i}-u1",
            "nid1": f"n{i}a",
            "nid2": f"n{i}b",
            "rid": "room-3",
            "snr_db": [-2.5, 0.0, 5.0, 12.3][i % 4],
            "split": "test",
            "mid": f"m{i}",
        }
        items.append(
            {
                "noisy": torch.rand(MICS, n, generator=g) * 1.6 - 0.8,  # values beyond PCM range kept
                "target": torch.rand(n, generator=g) - 0.5,
                "length": n,
                "mid": f"m{i}",
                "meta": meta,
            }
        )
    return items


def run_predict(tmp_path: Path, items: list[dict], batch_size: int, **writer_kw) -> tuple[AudioPredictionWriter, Path]:
    out = tmp_path / "pred"
    module = EnhancementModule(ContextNet(), sample_rate=SR)
    loader = DataLoader(items, batch_size=batch_size, collate_fn=collate_mixtures)
    return predict_to_dir(module, loader, out, sample_rate=SR, **writer_kw), out


def test_files_named_cropped_and_exact(tmp_path):
    lengths = [1200, 777, 1500, 64, 1001]
    items = make_items(lengths)
    writer, out = run_predict(tmp_path, items, batch_size=3)
    files = sorted(p.name for p in out.glob("*.wav"))
    assert len(files) == 3 * len(items)
    net = ContextNet()
    for it in items:
        meta = it["meta"]
        for kind in ("noisy", "enhanced", "target"):
            name = mixture_filename(meta, kind)
            assert name in files
            parsed = parse_mixture_filename(name)
            assert {k: parsed[k] for k in ("sid", "nid1", "nid2", "rid")} == {
                k: meta[k] for k in ("sid", "nid1", "nid2", "rid")
            }
            assert parsed["snr_db"] == pytest.approx(meta["snr_db"]) and parsed["kind"] == kind
        noisy, sr = sf.read(out / mixture_filename(meta, "noisy"), dtype="float32", always_2d=True)
        enhanced, _ = sf.read(out / mixture_filename(meta, "enhanced"), dtype="float32")
        target, _ = sf.read(out / mixture_filename(meta, "target"), dtype="float32")
        n = it["length"]
        assert sr == SR and noisy.shape == (n, MICS) and enhanced.shape == (n,) and target.shape == (n,)
        np.testing.assert_array_equal(noisy.T, it["noisy"].numpy())  # FLOAT: exact, unclipped
        np.testing.assert_array_equal(target, it["target"].numpy())
        with torch.no_grad():
            alone = net(it["noisy"][None])[0].numpy()  # inference on the unpadded item
        np.testing.assert_allclose(enhanced, alone, atol=1e-6)
    stats = json.loads((out / "predict_stats.json").read_text())
    assert stats["n_files"] == len(items) and stats["n_wavs"] == 3 * len(items)
    assert stats["audio_seconds"] == pytest.approx(sum(lengths) / SR)
    assert stats["parameters"] == 1 and stats["device"] == "cpu"
    assert stats["inference_mode"] is True  # Lightning's predict loop runs under torch.inference_mode
    assert 0 < stats["inference_seconds"] <= stats["wall_seconds"]
    assert stats["real_time_factor"] == pytest.approx(stats["inference_seconds"] / stats["audio_seconds"])
    assert not list(out.glob(".*.tmp"))


def test_only_enhanced_and_stats_elsewhere(tmp_path):
    items = make_items([300, 200])
    stats_file = tmp_path / "stats" / "test_predict_stats.json"
    _, out = run_predict(
        tmp_path, items, batch_size=2, write_noisy=False, write_target=False, stats_file=str(stats_file)
    )
    assert sorted(parse_mixture_filename(p)["kind"] for p in out.glob("*.wav")) == ["enhanced", "enhanced"]
    assert json.loads(stats_file.read_text())["n_wavs"] == 2 and not (out / "predict_stats.json").exists()


def test_default_output_dir_named_after_checkpoint(tmp_path):
    w = AudioPredictionWriter()
    ckpt = tmp_path / "models" / "best.ckpt"
    assert (
        w.resolve_output_dir(SimpleNamespace(ckpt_path=str(ckpt), default_root_dir="x"))
        == ckpt.parent / "best_predictions"
    )
    assert (
        w.resolve_output_dir(SimpleNamespace(ckpt_path=None, default_root_dir=str(tmp_path)))
        == tmp_path / "predictions"
    )
    assert AudioPredictionWriter(output_dir="o").resolve_output_dir(SimpleNamespace(ckpt_path=str(ckpt))) == Path("o")


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    """A failure in the middle of writing a wav leaves neither a final file nor a temp file behind."""
    items = make_items([400, 500])
    meta = [it["meta"] for it in items]
    w = ItemWriter(tmp_path, SR)
    real_write = audio_mod.sf.SoundFile.write
    calls = {"n": 0}

    def failing_write(self, data, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # second file: write half of it, then die
            real_write(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError("disk full (simulated)")
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(audio_mod.sf.SoundFile, "write", failing_write)
    batch = collate_mixtures(items)
    with pytest.raises(OSError, match="disk full"):
        w.write_batch(meta, batch["lengths"], enhanced=batch["target"], noisy=batch["noisy"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [mixture_filename(meta[0], "enhanced")]  # the first finished file only, no partial one
    monkeypatch.setattr(audio_mod.sf.SoundFile, "write", real_write)
    w2 = ItemWriter(tmp_path, SR)
    w2.write_batch(meta, batch["lengths"], enhanced=batch["target"], noisy=batch["noisy"])
    assert len(list(tmp_path.glob("*.wav"))) == 4 and not list(tmp_path.glob(".*"))


def test_bad_predictions_named(tmp_path):
    items = make_items([100, 100])
    meta = [it["meta"] for it in items]
    batch = collate_mixtures(items)
    bad = batch["target"].clone()
    bad[1, 5] = float("nan")
    with pytest.raises(ValueError, match="non-finite") as err:
        ItemWriter(tmp_path, SR).write_batch(meta, batch["lengths"], enhanced=bad)
    assert mixture_filename(meta[1], "enhanced") in str(err.value)
    assert not (tmp_path / mixture_filename(meta[1], "enhanced")).exists()
    dup = [meta[0], dict(meta[0], mid="other")]
    with pytest.raises(ValueError, match="same file name"):
        ItemWriter(tmp_path / "d", SR).write_batch(
            dup, batch["lengths"], enhanced=batch["target"], mids=["m0", "other"]
        )
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        ItemWriter(tmp_path / "e", SR).write_batch(meta, batch["lengths"], enhanced=batch["noisy"])


def test_sample_rate_mismatch_is_refused(tmp_path):
    module = EnhancementModule(ContextNet(), sample_rate=16000)
    loader = DataLoader(make_items([100]), batch_size=1, collate_fn=collate_mixtures)
    with pytest.raises(ValueError, match="sample_rate"):
        predict_to_dir(module, loader, tmp_path, sample_rate=SR)
    assert not list(tmp_path.glob("*.wav"))


def test_writer_takes_the_model_sample_rate_by_default(tmp_path):
    module = EnhancementModule(ContextNet(), sample_rate=SR)
    predict_to_dir(module, DataLoader(make_items([100]), batch_size=1, collate_fn=collate_mixtures), tmp_path)
    wavs = sorted(tmp_path.glob("*.wav"))
    assert len(wavs) == 3 and {sf.info(str(p)).samplerate for p in wavs} == {SR}


def test_predict_args_follow_the_workflow_config():
    from se_lib.config import load_config

    cfg = load_config(
        overrides={
            "seed": 7,
            "db": {"url": "sqlite:///x.sqlite"},
            "predict": {"batch_size": 2},
            "train": {"extra_args": {"data.init_args.num_workers": 0, "trainer.max_epochs": 3}},
        }
    )
    args = predict_args(
        "dprnn",
        "test",
        cfg,
        ckpt_path="results/models/dprnn/best.ckpt",
        output_dir="results/predictions/dprnn/test",
        stats_file="s.json",
        config_files=["config/models/dprnn.yaml"],
    )
    assert args[:3] == ["predict", "--config", "config/models/dprnn.yaml"]

    def value(flag: str) -> str:
        return args[len(args) - 1 - args[::-1].index(flag) + 1]

    assert value("--ckpt_path") == "results/models/dprnn/best.ckpt"
    assert value("--data.init_args.predict_split") == "test"
    assert value("--data.init_args.batch_size") == "2"
    assert value("--data.init_args.num_workers") == "0"
    assert value("--return_predictions") == "false"
    assert value("--seed_everything") == "7"
    assert value("--prediction_writer.output_dir") == "results/predictions/dprnn/test"
    assert value("--prediction_writer.stats_file") == "s.json"
    assert "--trainer.max_epochs" not in args  # only data./model. extra args apply to prediction


# ------------------------------------------------------------------------ through `se predict`
TINY_NET = {
    "class_path": "se_lib.models.conv_tasnet.ConvTasNet",
    "init_args": {"N": 16, "L": 8, "B": 8, "H": 16, "Sc": 8, "P": 3, "X": 2, "R": 1},
}


def test_predict_job_through_lightning_cli_matches_references(tmp_path):
    """`se predict --ckpt_path` (in-process, as the workflow's rule runs it) on a tiny mixture DB: one
    file set per test mixture, noisy/target identical to the model-free reference export."""
    import sys

    import yaml

    from se_lib.config import load_config
    from se_lib.models.conv_tasnet import ConvTasNet
    from se_lib.train.jobs import predict_job
    from se_lib.train.prediction_writer import export_references

    sys.path.insert(0, str(Path(__file__).parent))
    from worlds import build_world, tiny_config

    root = tmp_path / "world"
    root.mkdir()
    cfg, url = build_world(
        root, tiny_config(root, count={"train": 2, "val": 1, "test": 3}), speech_per_split=1, noise_per_split=2
    )
    module = EnhancementModule(ConvTasNet(**TINY_NET["init_args"]), sample_rate=cfg["sample_rate"])
    trainer = bare_trainer()
    trainer.strategy.connect(module)
    ckpt = tmp_path / "best.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)  # hyper-parameters as a LightningCLI-trained checkpoint has them
    state["hyper_parameters"] = {
        "_class_path": "se_lib.train.module.EnhancementModule",
        "net": TINY_NET,
        **state["hyper_parameters"],
    }
    torch.save(state, ckpt)
    model_cfg = tmp_path / "tiny.yaml"
    model_cfg.write_text(
        yaml.safe_dump(
            {
                "model": {"class_path": "se_lib.train.module.EnhancementModule", "init_args": {"net": TINY_NET}},
                "data": {"class_path": "se_lib.data.datamodule.MixtureDataModule", "init_args": {"db_url": url}},
                "trainer": {"accelerator": "cpu", "devices": 1, "enable_model_summary": False},
                "mlflow": {"enabled": False},
            }
        )
    )
    cfg = load_config(
        overrides={
            "sample_rate": cfg["sample_rate"],
            "predict": {"batch_size": 2},
            "train": {"extra_args": {"data.init_args.corpus_root": str(root), "data.init_args.num_workers": 0}},
        }
    )
    out, stats_file = tmp_path / "pred" / "test", tmp_path / "pred" / "test_predict_stats.json"
    stats = predict_job(
        "tiny",
        "test",
        cfg,
        ckpt_path=ckpt,
        output_dir=out,
        stats_file=stats_file,
        config_files=[str(model_cfg)],
        db_url=url,
    )
    assert (
        stats["n_files"] == 3
        and stats["inference_mode"]
        and stats["parameters"] == sum(p.numel() for p in module.parameters())
    )
    refs = export_references(
        url,
        "test",
        tmp_path / "refs",
        sample_rate=cfg["sample_rate"],
        batch_size=cfg["predict"]["batch_size"],
        corpus_root=str(root),
    )
    assert refs["n_files"] == 3
    kinds = sorted(parse_mixture_filename(p)["kind"] for p in out.glob("*.wav"))
    assert kinds == ["enhanced"] * 3 + ["noisy"] * 3 + ["target"] * 3
    for ref in sorted((tmp_path / "refs").glob("*.wav")):
        a, _ = sf.read(ref, dtype="float32")
        b, _ = sf.read(out / ref.name, dtype="float32")
        np.testing.assert_array_equal(a, b)
    with torch.inference_mode():  # enhanced = the checkpoint's network on the unpadded noisy input
        for enh in sorted(out.glob("*_enhanced.wav")):
            noisy, _ = sf.read(str(enh).replace("_enhanced", "_noisy"), dtype="float32", always_2d=True)
            want = module.net(torch.from_numpy(noisy.T.copy())[None])[0].numpy()
            got, _ = sf.read(enh, dtype="float32")
            np.testing.assert_allclose(got, want, atol=1e-5)
