"""Paper-size training on one GPU, checked on the CPU: mixed precision (losses in fp32 under bf16 autocast),
activation checkpointing (same gradients, less saved activation memory), ``torch.compile`` (same loss),
and how the workflow's ``train.precision`` / ``train.compile`` reach ``se fit``. Tiny shapes throughout."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from se_lib.config import ConfigError, load_config
from se_lib.models import DPRNN, ConvTasNet, ICConvTasNet
from se_lib.train.jobs import train_args
from se_lib.train.losses import LOSSES, get_loss, si_sdr
from se_lib.train.memory import saved_activation_bytes
from se_lib.train.module import EnhancementModule
from se_lib.train.precision import PRECISIONS, compile_network, resolve_precision
from se_lib.train.trainers import bare_trainer

MICS = 4
# Small networks with the structure of the paper configs (2 TCN repeats / 3 DPRNN blocks, dropout on).
TINY: dict[str, tuple[type, dict[str, Any]]] = {
    "conv_tasnet": (ConvTasNet, {"N": 32, "L": 16, "B": 16, "H": 32, "Sc": 16, "X": 3, "R": 2}),
    "ic_conv_tasnet": (ICConvTasNet, {"in_channels": MICS, "N": 32, "L": 32, "B": 8, "Cs": 8, "H": 16, "X": 3, "R": 2}),
    "dprnn": (DPRNN, {"N": 32, "L": 16, "B": 16, "H": 16, "K": 20, "num_blocks": 3, "dropout": 0.1}),
}


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(length: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed noisy batch ``[2, MICS, length]`` and its target: a harmonic tone in noise (about 5 dB)."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 16000.0
    target = torch.stack([torch.sin(2 * torch.pi * f * t) * 0.3 for f in (220.0, 310.0)])
    noisy = target[:, None] + 0.17 * torch.randn(2, MICS, length, generator=gen)
    return noisy, target


def _tiny(arch: str, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    cls, kwargs = TINY[arch]
    torch.manual_seed(seed)
    return cls(**{**kwargs, **overrides})


# ------------------------------------------------------------------------------ checkpointing
@pytest.mark.parametrize("arch", sorted(TINY))
def test_checkpointed_blocks_give_the_plain_gradients_with_less_saved_memory(arch: str) -> None:
    noisy, target = _batch()
    grads, saved, outputs = {}, {}, {}
    for flag in (False, True):
        net = _tiny(arch, checkpoint_blocks=flag).train()
        torch.manual_seed(1)  # the same dropout draws (checkpointing restores the RNG state to recompute)
        saved[flag], loss = saved_activation_bytes(
            lambda net=net: -si_sdr(net(noisy), target).mean(), exclude=list(net.parameters())
        )
        loss.backward()
        grads[flag] = {name: p.grad for name, p in net.named_parameters()}
        with torch.no_grad():
            outputs[flag] = net.eval()(noisy)
    assert grads[True].keys() == grads[False].keys()
    for name, grad in grads[False].items():
        assert grad is not None and grads[True][name] is not None, f"{arch}: no gradient for {name}"
        diff = (grads[True][name] - grad).abs().max().item()
        assert diff <= 1e-6, f"{arch}: gradient of {name} differs by {diff} with checkpoint_blocks"
    assert torch.equal(outputs[True], outputs[False])  # inference: the flag changes nothing
    # The stack's activations are no longer kept: at most half of the plain step's saved memory here.
    assert saved[True] < 0.5 * saved[False], f"{arch}: saved {saved[True]} B with vs {saved[False]} B without"


def test_saved_activation_bytes_counts_what_autograd_keeps() -> None:
    weight = torch.randn(64, 64, requires_grad=True)
    x = torch.randn(32, 64)
    saved, out = saved_activation_bytes(lambda: (x @ weight).tanh().sum(), exclude=[weight])
    # x for the matmul's weight gradient and tanh's output (32 x 64 float32 each); the weight left out
    assert saved == 2 * 32 * 64 * 4
    out.backward()
    assert weight.grad is not None


# ---------------------------------------------------------------------------- mixed precision
@pytest.mark.parametrize("loss", LOSSES)
def test_losses_are_computed_in_fp32_under_bf16_autocast(loss: str) -> None:
    """A fixed bf16 batch (what a bf16-mixed network returns) gives the fp32 loss within 1e-2 dB."""
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(4, 16000, generator=gen)
    estimate = target + 0.1 * torch.randn(4, 16000, generator=gen)  # about 20 dB
    estimate, target = estimate.bfloat16(), target.bfloat16()
    fn = get_loss(loss)
    reference = fn(estimate.double(), target.double()).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = fn(estimate, target)
    assert value.dtype == torch.float32, f"{loss}: computed in {value.dtype}"
    assert torch.isfinite(value)
    assert abs(value.item() - reference) < 1e-2, f"{loss}: {value.item()} vs fp32 {reference}"


@pytest.mark.parametrize("arch", sorted(TINY))
def test_bf16_autocast_training_step_is_finite_and_close_to_fp32(arch: str) -> None:
    noisy, target = _batch()
    module = EnhancementModule(_tiny(arch, dropout=0.0) if arch == "dprnn" else _tiny(arch))
    fp32 = module.loss_fn(module(noisy), target, None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        enhanced = module(noisy)
        loss = module.loss_fn(enhanced, target, None)
    assert enhanced.dtype == torch.bfloat16  # the network did run in bf16
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    # the difference is the network's own bf16 rounding (measured 0.03-0.05 dB), not the loss's
    assert abs(loss.item() - fp32.item()) < 0.2
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


def test_lightning_bf16_mixed_fit_on_the_cpu() -> None:
    noisy, target = _batch(length=2000)
    batches = [{"noisy": noisy, "target": target, "lengths": torch.tensor([2000, 1500])}] * 2
    module = EnhancementModule(_tiny("conv_tasnet"))
    trainer = bare_trainer(precision="bf16-mixed", max_steps=2, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))
    assert trainer.precision == "bf16-mixed"
    assert torch.isfinite(trainer.logged_metrics["train_loss_step"])
    assert all(p.dtype == torch.float32 for p in module.parameters())  # mixed: fp32 master weights


# ------------------------------------------------------------------------------------ compile
def _compiled_loss_matches_eager(**options: Any) -> None:
    noisy, target = _batch(length=2000)
    net = _tiny("conv_tasnet")
    compiled = compile_network(copy.deepcopy(net), **options)
    assert compiled.state_dict().keys() == net.state_dict().keys()  # checkpoints stay those of the plain net
    eager = -si_sdr(net(noisy), target).mean()
    loss = -si_sdr(compiled(noisy), target).mean()
    assert abs(loss.item() - eager.item()) < 1e-5
    loss.backward()
    assert all(p.grad is not None for p in compiled.parameters())


def test_compiled_network_gives_the_same_loss() -> None:
    """The graph capture (TorchDynamo + AOTAutograd) without code generation: a few seconds on the CPU."""
    _compiled_loss_matches_eager(backend="aot_eager")


@pytest.mark.slow
def test_compiled_network_gives_the_same_loss_with_inductor() -> None:
    """What ``train.compile: true`` runs (the default inductor backend): C++ code generation on the CPU
    takes one to three minutes here, hence ``slow``."""
    _compiled_loss_matches_eager()


# ------------------------------------------------------------------------------- the workflow
def test_precision_auto_resolves_per_machine_and_bad_values_name_the_key() -> None:
    assert resolve_precision("auto", "cpu") == "32-true"
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    assert resolve_precision("auto") == ("bf16-mixed" if gpu_bf16 else "32-true")
    for value in PRECISIONS[1:]:
        assert resolve_precision(value) == value
    with pytest.raises(ValueError, match="train.precision"):
        resolve_precision("fp8")
    with pytest.raises(ConfigError, match=r"'train.precision'"):
        load_config(overrides={"train": {"precision": "fp8"}})
    with pytest.raises(ConfigError, match=r"'train.compile'"):
        load_config(overrides={"train": {"compile": "yes"}})


def _flag(args: list[str], name: str) -> str:
    return args[len(args) - 1 - args[::-1].index(name) + 1]


def test_train_args_pass_the_resolved_precision_and_compile() -> None:
    config = load_config()
    assert config["train"]["precision"] == "auto" and config["train"]["compile"] is False
    args = train_args("conv_tasnet", config, "out")
    assert _flag(args, "--trainer.precision") == resolve_precision("auto", config["train"]["accelerator"])
    assert _flag(args, "--compile") == "false"
    chosen = load_config(overrides={"train": {"precision": "bf16-mixed", "compile": True}})
    args = train_args("dprnn", chosen, "out")
    assert _flag(args, "--trainer.precision") == "bf16-mixed" and _flag(args, "--compile") == "true"
    cpu = load_config(overrides={"train": {"accelerator": "cpu"}})
    assert _flag(train_args("dprnn", cpu, "out"), "--trainer.precision") == "32-true"
