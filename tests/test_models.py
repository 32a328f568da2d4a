"""Tests of the enhancement networks in se_lib.models (shapes, sizes, gradients, configs, learning)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from jsonargparse import ActionConfigFile, ArgumentParser
from torch import nn

from se_lib.models import ARCHITECTURES, DPRNN, ConvTasNet, ICConvTasNet, ReferenceMicNet, WaveUNet, count_parameters
from se_lib.models.common import CumulativeLayerNorm, GlobalLayerNorm, frame_padding
from se_lib.models.dprnn import overlap_add, segment

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "config" / "models"
ARCHS = sorted(ARCHITECTURES)
MICS = 4


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """These networks run on small tensors: one intra-op thread avoids OpenMP spin-waiting on the
    2-core CI machine (two threads were 3-10x slower under load); the setting is restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _net_section(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)["model"]["init_args"]["net"]


def _init_args(arch: str, demo: bool = True) -> dict[str, Any]:
    args = dict(_net_section(MODELS_DIR / f"{arch}.yaml")["init_args"])
    if demo:
        args.update(_net_section(MODELS_DIR / "demo" / f"{arch}.yaml")["init_args"])
    return args


def _build(arch: str, demo: bool = True, seed: int = 0, **overrides: Any) -> nn.Module:
    torch.manual_seed(seed)
    return ARCHITECTURES[arch](**{**_init_args(arch, demo), **overrides})


def _noisy(batch: int, mics: int, length: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, mics, length, generator=gen) * 0.1


def _neg_si_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    proj = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + 1e-8) * ref
    ratio = proj.pow(2).sum(-1) / ((est - proj).pow(2).sum(-1) + 1e-8)
    return -(10 * torch.log10(ratio + 1e-8)).mean()


# --------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("length", [16000, 12345, 1000])
@pytest.mark.parametrize("arch", ARCHS)
def test_output_shape_any_length(arch: str, length: int) -> None:
    net = _build(arch).eval()
    with torch.no_grad():
        out = net(_noisy(2, MICS, length))
    assert out.shape == (2, length)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("length", [1, 7, 33])
@pytest.mark.parametrize("arch", ARCHS)
def test_output_shape_tiny_lengths(arch: str, length: int) -> None:
    with torch.no_grad():
        out = _build(arch).eval()(_noisy(1, MICS, length))
    assert out.shape == (1, length)


@pytest.mark.parametrize("arch", ["ic_conv_tasnet", "wave_u_net", "conv_tasnet", "dprnn"])
def test_six_microphones(arch: str) -> None:
    """chime3_tablet has 6 mics: the multichannel models take them via ``in_channels``."""
    net = _build(arch, in_channels=6, ref_mic=4).eval()
    with torch.no_grad():
        assert net(_noisy(2, 6, 4000)).shape == (2, 4000)


def test_wrong_channel_count_is_rejected() -> None:
    net = _build("ic_conv_tasnet")
    with pytest.raises(ValueError, match="in_channels=4"):
        net(_noisy(1, 6, 1000))
    with pytest.raises(ValueError, match="ref_mic=5"):
        _build("conv_tasnet", ref_mic=5)(_noisy(1, 4, 1000))
    with pytest.raises(ValueError, match=r"\[batch, mics, time\]"):
        _build("dprnn")(torch.zeros(1, 1000))


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="norm"):
        ConvTasNet(N=8, B=8, H=8, Sc=8, X=1, R=1, norm="BN")
    with pytest.raises(ValueError, match="mask_activation"):
        DPRNN(N=8, B=8, H=8, num_blocks=1, mask_activation="softmax")
    with pytest.raises(ValueError, match="ref_mic"):
        WaveUNet(in_channels=2, num_layers=2, Fc=2, ref_mic=2)
    with pytest.raises(ValueError, match="'X'"):
        ICConvTasNet(X=0)


def test_wave_u_net_difference_output() -> None:
    """Stoller et al.'s difference output layer: the network estimates the noise, the output is the
    reference microphone minus it (same weights, same input: the two outputs add up to that microphone)."""
    torch.manual_seed(0)
    plain = WaveUNet(in_channels=2, num_layers=2, Fc=2, ref_mic=1).eval()
    diff = WaveUNet(in_channels=2, num_layers=2, Fc=2, ref_mic=1, difference_output=True).eval()
    diff.load_state_dict(plain.state_dict())  # no extra parameters
    x = _noisy(2, 2, 1000)
    with torch.no_grad():
        torch.testing.assert_close(diff(x), x[:, 1] - plain(x))


class _Doubler(ReferenceMicNet):
    """Smallest model on the template: pads 3 + 5 samples, returns twice its first channel."""

    def __init__(self, in_channels: int = 1, ref_mic: int = 0, width: int = 1) -> None:
        super().__init__(in_channels, ref_mic, width=width)
        self.seen: tuple[int, ...] = ()

    def padding(self, length: int) -> tuple[int, int]:
        return 3, 5

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = tuple(x.shape)
        return 2 * x[:, 0]


def test_template_selects_pads_and_crops() -> None:
    x = _noisy(2, MICS, 100)
    single, multi = _Doubler(ref_mic=2), _Doubler(in_channels=MICS, ref_mic=1)
    assert torch.equal(single(x), 2 * x[:, 2]) and single.seen == (2, 1, 108)
    assert torch.equal(multi(x), 2 * x[:, 1]) and multi.seen == (2, MICS, 108)  # rolled: mic 1 first
    with pytest.raises(ValueError, match="_Doubler: argument 'width' must be a positive integer"):
        _Doubler(width=0)
    with pytest.raises(ValueError, match="_Doubler: ref_mic=4 is not one of in_channels=4"):
        _Doubler(in_channels=MICS, ref_mic=4)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_model_fills_in_the_one_template(arch: str) -> None:
    """The input checks live once (ReferenceMicNet.forward); every model's errors name the model."""
    cls = ARCHITECTURES[arch]
    assert issubclass(cls, ReferenceMicNet) and cls.forward is ReferenceMicNet.forward
    net = _build(arch)
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"^{name}: expected noisy input of shape \[batch, mics, time\]"):
        net(torch.zeros(2, 1000))
    with pytest.raises(ValueError, match=f"^{name}: empty input"):
        net(torch.zeros(2, MICS, 0))
    with pytest.raises(TypeError, match=f"^{name}: expected a floating-point"):
        net(torch.zeros(2, MICS, 100, dtype=torch.int16))
    with pytest.raises(ValueError, match=f"^{name}: .*ref_mic=7"):
        _build(arch, ref_mic=7)(_noisy(1, MICS, 100))


# ------------------------------------------------------------------------------ parameter counts


def test_conv_tasnet_matches_torchaudio_and_paper() -> None:
    torchaudio = pytest.importorskip("torchaudio")
    ours = count_parameters(ConvTasNet(N=512, L=16, B=128, H=512, Sc=128, P=3, X=8, R=3))
    reference = count_parameters(
        torchaudio.models.ConvTasNet(
            num_sources=1,
            enc_kernel_size=16,
            enc_num_feats=512,
            msk_kernel_size=3,
            msk_num_feats=128,
            msk_num_hidden_feats=512,
            msk_num_layers=8,
            msk_num_stacks=3,
        )
    )
    assert abs(ours - reference) <= 0.01 * reference
    # The paper's 5.1 M counts two output masks (N*Sc more weights); one source gives 4.92 M.
    assert abs(ours - 5.1e6) <= 0.05 * 5.1e6


def test_conv_tasnet_multichannel_encoder_size() -> None:
    single = count_parameters(ConvTasNet())
    multi = count_parameters(ConvTasNet(in_channels=MICS))
    assert multi - single == (MICS - 1) * 512 * 16  # only the encoder's input channels grow


def test_dprnn_paper_size() -> None:
    n = count_parameters(DPRNN(N=64, L=2, B=64, H=128, K=250, num_blocks=6))
    assert abs(n - 2.6e6) <= 0.10 * 2.6e6


def test_docs_table_lists_the_actual_parameter_counts() -> None:
    docs = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    for arch in ARCHS:
        for demo in (False, True):
            n = count_parameters(ARCHITECTURES[arch](**_init_args(arch, demo)))
            assert f"{n:,}" in docs, f"docs/models.md lacks {arch} ({'demo' if demo else 'paper'}) size {n:,}"


# ------------------------------------------------------------------------ gradients & determinism


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_every_parameter(arch: str) -> None:
    net = _build(arch)
    noisy = _noisy(2, MICS, 3000).requires_grad_(True)
    _neg_si_sdr(net(noisy), noisy[:, 0].detach()).backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, f"{arch}: no gradient for {name}"
        assert torch.isfinite(param.grad).all(), f"{arch}: non-finite gradient for {name}"
        assert param.grad.abs().sum() > 0, f"{arch}: zero gradient for {name}"
    assert noisy.grad is not None and noisy.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_deterministic_given_seed(arch: str) -> None:
    x = _noisy(2, MICS, 2000)
    a, b, c = _build(arch, seed=3).eval(), _build(arch, seed=3).eval(), _build(arch, seed=4).eval()
    with torch.no_grad():
        ya, yb, yc = a(x), b(x), c(x)
    assert torch.equal(ya, yb)
    assert not torch.allclose(ya, yc)


# ------------------------------------------------------------------------- reference microphone


def test_single_channel_conv_tasnet_uses_only_the_reference_mic() -> None:
    x = _noisy(2, MICS, 4000)
    torch.manual_seed(0)
    net = ConvTasNet(N=32, B=16, H=32, Sc=16, X=3, R=1).eval()
    with torch.no_grad():
        y0 = net(x)
        net.ref_mic = 2
        y2 = net(x)
        y2_direct = net(x[:, 2:3].clone().repeat(1, 3, 1))  # same mic 2 content, other mics differ
        x_other = x.clone()
        x_other[:, 0] += 1.0  # mic 0 changes: a ref_mic=2 model must not care
        y2_other = net(x_other)
    assert not torch.allclose(y0, y2, atol=1e-4)
    assert torch.allclose(y2, y2_direct, atol=1e-6)
    assert torch.allclose(y2, y2_other, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_multichannel_models_use_every_mic(arch: str) -> None:
    net = _build(arch, in_channels=MICS).eval()
    x = _noisy(1, MICS, 3000)
    x_changed = x.clone()
    x_changed[:, MICS - 1] = _noisy(1, 1, 3000, seed=9)[:, 0]
    with torch.no_grad():
        assert not torch.allclose(net(x), net(x_changed), atol=1e-5)


def test_ref_mic_rolls_channels_for_multichannel_models() -> None:
    """ref_mic=k on x equals ref_mic=0 on x rolled so that mic k comes first."""
    x = _noisy(1, MICS, 2000)
    for arch in ("ic_conv_tasnet", "wave_u_net"):
        net = _build(arch).eval()
        with torch.no_grad():
            y_rolled = net(torch.roll(x, -1, dims=1))
            net.ref_mic = 1
            assert torch.allclose(net(x), y_rolled, atol=1e-6)


@pytest.mark.parametrize("arch", ["conv_tasnet", "ic_conv_tasnet"])
def test_causal_models_ignore_the_future(arch) -> None:
    torch.manual_seed(0)
    if arch == "conv_tasnet":
        net, mics = ConvTasNet(N=16, L=16, B=8, H=16, Sc=8, X=3, R=2, norm="cLN", causal=True), 1
    else:
        net, mics = ICConvTasNet(in_channels=3, N=16, L=16, B=8, Cs=4, H=8, X=3, R=2, norm="cLN", causal=True), 3
    net.eval()
    x = _noisy(1, mics, 4000)
    x_future = x.clone()
    x_future[..., 2000:] += 1.0
    with torch.no_grad():
        y, y_future = net(x), net(x_future)
    # an encoder frame spans L=16 samples, so samples before 2000 - 16 cannot see the change
    assert torch.allclose(y[..., : 2000 - 16], y_future[..., : 2000 - 16], atol=1e-6)
    assert not torch.allclose(y[..., 2000:], y_future[..., 2000:], atol=1e-4)
    if arch == "ic_conv_tasnet":  # the feature axis is padded symmetrically, time on the left only
        assert net.blocks[1].pad == (4, 0, 1, 1)


def test_non_causal_blocks_pad_inside_the_convolution() -> None:
    """Symmetric ("same") padding is the depthwise conv's own: no separate F.pad copy per block."""
    net = ConvTasNet(N=16, L=16, B=8, H=16, Sc=8, X=3, R=2)
    ic = ICConvTasNet(in_channels=2, N=16, L=16, B=8, Cs=4, H=8, X=3, R=2)
    assert all(b.pad is None for b in net.separator.blocks) and all(b.pad is None for b in ic.blocks)
    assert net.separator.blocks[2].depthwise.padding == (4,) and ic.blocks[2].depthwise.padding == (1, 4)


# ------------------------------------------------------------------------------ building blocks


@pytest.mark.parametrize("length", [1, 5, 8, 100, 12345])
@pytest.mark.parametrize("kernel", [2, 16, 32])
def test_frame_padding_tiles_the_signal(length: int, kernel: int) -> None:
    stride = kernel // 2
    left, right = frame_padding(length, kernel, stride)
    padded = left + length + right
    assert padded >= kernel and (padded - kernel) % stride == 0
    assert left == kernel - stride and right >= kernel - stride


@pytest.mark.parametrize("frames", [1, 79, 250, 1001])
def test_dprnn_segment_overlap_add_round_trip(frames: int) -> None:
    x = torch.randn(2, 3, frames)
    chunks, left = segment(x, 80)
    assert chunks.shape[:3] == (2, 3, 80)
    # every frame lies in exactly two 50 %-overlapping chunks
    assert torch.allclose(overlap_add(chunks, frames, left), 2 * x, atol=1e-6)


def test_cumulative_layer_norm_last_frame_equals_global() -> None:
    x = torch.randn(2, 5, 3, 40)
    cln, gln = CumulativeLayerNorm(5), GlobalLayerNorm(5)
    assert torch.allclose(cln(x)[..., -1], gln(x)[..., -1], atol=1e-4)
    y = cln(x)
    x2 = x.clone()
    x2[..., 20:] *= 3.0
    assert torch.allclose(cln(x2)[..., :20], y[..., :20])  # causal statistics


# ------------------------------------------------------------------------------ LightningCLI yaml


def _arch_class_paths() -> dict[str, str]:
    return {arch: f"{cls.__module__}.{cls.__name__}" for arch, cls in ARCHITECTURES.items()}


@pytest.mark.parametrize("arch", ARCHS)
def test_yaml_overlay_merges_into_paper_config(arch: str, tmp_path: Path) -> None:
    """Base config then demo overlay through jsonargparse: overlay sizes win, the rest is kept."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_subclass_arguments(nn.Module, "net")
    files = []
    for name, src in (("base", MODELS_DIR / f"{arch}.yaml"), ("demo", MODELS_DIR / "demo" / f"{arch}.yaml")):
        dst = tmp_path / f"{name}.yaml"
        dst.write_text(yaml.safe_dump({"net": _net_section(src)}), encoding="utf-8")
        files += ["--config", str(dst)]
    cfg = parser.parse_args(files)
    assert cfg.net.class_path == _arch_class_paths()[arch]
    overlay = _net_section(MODELS_DIR / "demo" / f"{arch}.yaml")
    assert "class_path" not in overlay, "the demo overlay must only change sizes"
    merged = dict(cfg.net.init_args)
    assert {k: merged[k] for k in overlay["init_args"]} == overlay["init_args"]
    assert merged == _init_args(arch, demo=True)
    net = parser.instantiate(cfg).net
    assert isinstance(net, ARCHITECTURES[arch])
    if getattr(net, "in_channels", 1) > 1:
        assert net.in_channels == MICS  # the yaml defaults to the circular4 preset
    with torch.no_grad():
        assert net.eval()(_noisy(1, MICS, 1000)).shape == (1, 1000)


@pytest.mark.parametrize("arch", ARCHS)
def test_yaml_model_section_instantiates_the_lightning_module(arch: str, tmp_path: Path) -> None:
    module = pytest.importorskip("se_lib.train.module")
    import lightning.pytorch as pl

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_subclass_arguments(pl.LightningModule, "model")
    files = []
    for name, src in (("base", MODELS_DIR / f"{arch}.yaml"), ("demo", MODELS_DIR / "demo" / f"{arch}.yaml")):
        with open(src, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        dst = tmp_path / f"{name}.yaml"
        dst.write_text(yaml.safe_dump({"model": doc["model"]}), encoding="utf-8")
        files += ["--config", str(dst)]
    model = parser.instantiate(parser.parse_args(files)).model
    assert isinstance(model, module.EnhancementModule)
    assert count_parameters(model.net) == count_parameters(ARCHITECTURES[arch](**_init_args(arch, True)))


def test_yaml_headers_cite_the_paper() -> None:
    for arch in ARCHS:
        text = (MODELS_DIR / f"{arch}.yaml").read_text(encoding="utf-8")
        assert re.search(r"^# .*\(.*(19|20)\d\d", text, flags=re.MULTILINE), f"{arch}.yaml: no paper citation"


# ----------------------------------------------------------------------------------- learning


def _toy_example(length: int = 4000, mics: int = MICS) -> tuple[torch.Tensor, torch.Tensor]:
    """A harmonic 'voice' with a syllable-rate envelope, reaching the mics with small delays, in noise."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(length + 8) / 16000.0
    phase = 2 * torch.pi * 140.0 * t + 3.0 * torch.sin(2 * torch.pi * 3.0 * t)
    voice = sum(torch.sin(k * phase) / k for k in range(1, 12)) * torch.sin(2 * torch.pi * 4.0 * t).clamp_min(0)
    noise = torch.randn(length + 8, generator=gen) * voice.std()
    noisy = torch.stack([voice[4 + d : 4 + d + length] + noise[4 - d : 4 - d + length] for d in range(mics)]).unsqueeze(
        0
    )
    return noisy, voice[4 : 4 + length].unsqueeze(0)


@pytest.mark.parametrize("arch", ARCHS)
def test_demo_model_overfits_one_noisy_example(arch: str) -> None:
    noisy, clean = _toy_example()
    net = _build(arch)
    # the demo overlay's own learning rate (Wave-U-Net's tanh noise estimate saturates for good at 3e-3 here)
    with open(MODELS_DIR / "demo" / f"{arch}.yaml", encoding="utf-8") as fh:
        lr = float(yaml.safe_load(fh)["optimizer"]["init_args"]["lr"])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(20):
        loss = _neg_si_sdr(net(noisy), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < losses[0] - 1.0, f"{arch}: SI-SDR loss did not decrease: {losses}"
    # and it beats the unprocessed reference mic (about 0 dB here) by 2 dB: real enhancement
    baseline = _neg_si_sdr(noisy[:, 0], clean).item()
    assert min(losses[-3:]) < baseline - 2.0, f"{arch}: no SI-SDR gain over the noisy input ({baseline:.2f}): {losses}"
