"""LightningModule wrapping any enhancement network ``net: [B, C, T] -> [B, T]``.

Training minimises the negative SI-SDR (Le Roux et al., "SDR – half-baked or well done?", ICASSP
2019), the objective of Conv-TasNet (Luo & Mesgarani, TASLP 2019); the plain negative SDR is
selectable.  Padding beyond each item's ``lengths`` is excluded.  Validation reports ``val_loss``,
``val_si_sdr`` and ``val_si_sdri`` (improvement over the unprocessed reference microphone); under
DDP the logged values are averaged over the ranks (``sync_dist``), so checkpointing, early stopping
and the LR scheduler decide alike on every rank.
Optimisation the LightningCLI way: the ``se`` command's standard ``optimizer:`` / ``lr_scheduler:``
sections (defaults :data:`DEFAULT_OPTIMIZER`, Adam with lr 1e-3, and :data:`DEFAULT_LR_SCHEDULER`,
``lightning.pytorch.cli.ReduceLROnPlateau`` on ``val_loss`` with patience 5 and factor 0.5) replace
:meth:`EnhancementModule.configure_optimizers`, which builds the same defaults for a plain
``Trainer``. Early stopping, checkpointing and gradient clipping are configured in the trainer (see
:mod:`se_lib.train.cli`).

Batches follow the data-module contract (docs/contracts.md): a dict with ``noisy [B, C, T]``,
``target [B, T]``, ``lengths [B]``, ``mid`` (list of str) and ``meta`` (list of dict).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import ReduceLROnPlateau, instantiate_class
from torch import nn

from se_lib.train.losses import LOSSES, MRSTFT_WEIGHT, get_loss, si_sdr

# The defaults of the `se` command's `optimizer:` and `lr_scheduler:` sections (se_lib.train.cli).
DEFAULT_OPTIMIZER: dict[str, Any] = {"class_path": "torch.optim.Adam", "init_args": {"lr": 1.0e-3}}
DEFAULT_LR_SCHEDULER: dict[str, Any] = {
    "class_path": "lightning.pytorch.cli.ReduceLROnPlateau",
    "init_args": {"monitor": "val_loss", "mode": "min", "factor": 0.5, "patience": 5},
}


def optimizer_config(optimizer: torch.optim.Optimizer, lr_scheduler: Any = None) -> Any:
    """What ``configure_optimizers`` returns for ``optimizer`` and an optional scheduler.

    A :class:`lightning.pytorch.cli.ReduceLROnPlateau` steps on its ``monitor`` metric once per epoch;
    ``strict=False`` lets epochs without validation (``check_val_every_n_epoch`` > 1) skip the step.
    """
    if lr_scheduler is None:
        return optimizer
    if isinstance(lr_scheduler, ReduceLROnPlateau):
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": lr_scheduler,
                "monitor": lr_scheduler.monitor,
                "interval": "epoch",
                "strict": False,
            },
        }
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr_scheduler}}


class EnhancementModule(pl.LightningModule):
    """Train/validate/test/predict a speech-enhancement network.

    Args:
        net: the network; ``forward(noisy [B, C, T]) -> enhanced [B, T]``. Its optional attributes
            ``ref_mic`` (reference channel, default 0) and ``in_channels`` are used for the input
            SI-SDR baseline and for checking the data's channel count.
        loss: ``"si_sdr"`` (negative SI-SDR, default), ``"sdr"`` (negative plain SDR),
            ``"si_sdr_preemph"`` (negative SI-SDR of pre-emphasised signals) or ``"si_sdr+mrstft"``
            (negative SI-SDR + multi-resolution STFT loss); see :mod:`se_lib.train.losses`.
        mrstft_weight: weight of the STFT term of ``si_sdr+mrstft`` (dB of SI-SDR per unit of the STFT
            loss; 0 leaves plain SI-SDR); the other losses do not use it.
        num_val_samples_to_log: validation examples kept each epoch for
            :class:`se_lib.train.callbacks.AudioSampleLogger` (wavs + spectrogram).
        sample_rate: sampling rate (Hz) the network is trained at; must match the data module's.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: str = "si_sdr",
        mrstft_weight: float = MRSTFT_WEIGHT,
        num_val_samples_to_log: int = 4,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"EnhancementModule: unknown loss {loss!r}; expected one of {LOSSES}")
        if num_val_samples_to_log < 0:
            raise ValueError(f"EnhancementModule: num_val_samples_to_log must be >= 0, got {num_val_samples_to_log}")
        if sample_rate <= 0:
            raise ValueError(f"EnhancementModule: sample_rate must be > 0, got {sample_rate}")
        # The network object is saved with the weights, never pickled into hparams; the `se` command
        # records the *config* of ``net`` in hparams (SECLI.instantiate_classes), so that its
        # checkpoints rebuild the network (`se predict --ckpt_path`).
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.loss_name = loss
        self.loss_fn = get_loss(loss, mrstft_weight)
        self.num_val_samples_to_log = num_val_samples_to_log
        self.sample_rate = sample_rate
        self.val_examples: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ helpers
    @property
    def ref_mic(self) -> int:
        return int(getattr(self.net, "ref_mic", 0))

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        return self.net(noisy)

    def _enhance(self, batch: dict[str, Any]) -> torch.Tensor:
        noisy = batch["noisy"]
        enhanced = self.net(noisy)
        if enhanced.shape != batch["target"].shape:
            raise RuntimeError(
                f"{type(self.net).__name__} returned shape {tuple(enhanced.shape)} for noisy input "
                f"{tuple(noisy.shape)}; expected the target's shape {tuple(batch['target'].shape)}"
            )
        return enhanced

    def setup(self, stage: str) -> None:
        """Check the data module agrees with the model (sample rate, channel count) before training."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        data_sr = getattr(datamodule, "sample_rate", None)
        if data_sr is not None and int(data_sr) != int(self.sample_rate):
            raise ValueError(
                f"sample-rate mismatch: data.init_args.sample_rate={data_sr} but "
                f"model.init_args.sample_rate={self.sample_rate}; set both to the same value"
            )
        data_ch = getattr(datamodule, "num_channels", None)
        net_ch = getattr(self.net, "in_channels", None)
        if data_ch is not None and net_ch is not None and int(net_ch) > 1 and int(data_ch) != int(net_ch):
            raise ValueError(
                f"channel mismatch: the data has {data_ch} microphones but "
                f"model.init_args.net.init_args.in_channels={net_ch}"
            )
        if data_ch is not None and self.ref_mic >= int(data_ch):
            raise ValueError(
                f"model.init_args.net.init_args.ref_mic={self.ref_mic} but the data has only {data_ch} microphones"
            )

    # ----------------------------------------------------------------- training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        enhanced = self._enhance(batch)
        loss = self.loss_fn(enhanced, batch["target"], batch.get("lengths"))
        self.log(
            "train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=enhanced.shape[0], sync_dist=True
        )
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_examples = []

    def _evaluate(self, batch: dict[str, Any], prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        enhanced = self._enhance(batch)
        target, lengths = batch["target"], batch.get("lengths")
        loss = self.loss_fn(enhanced, target, lengths)
        out_sdr = si_sdr(enhanced, target, lengths)
        in_sdr = si_sdr(batch["noisy"][:, self.ref_mic], target, lengths)
        per_epoch = {"on_step": False, "on_epoch": True, "batch_size": enhanced.shape[0], "sync_dist": True}
        self.log(f"{prefix}_loss", loss, prog_bar=True, **per_epoch)
        self.log(f"{prefix}_loss_epoch", loss, **per_epoch)
        self.log(f"{prefix}_si_sdr", out_sdr.mean(), **per_epoch)
        self.log(f"{prefix}_si_sdri", (out_sdr - in_sdr).mean(), **per_epoch)
        return enhanced, loss

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        """``{"loss", "enhanced"}``: the enhanced batch is what callbacks score (e.g.
        :class:`se_lib.train.live_metrics.SpeechMetricsMonitor`); Lightning keeps no step outputs."""
        enhanced, loss = self._evaluate(batch, "val")
        if dataloader_idx == 0 and len(self.val_examples) < self.num_val_samples_to_log:
            self._keep_examples(batch, enhanced)
        return {"loss": loss, "enhanced": enhanced.detach()}

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self._evaluate(batch, "test")[1]

    def _keep_examples(self, batch: dict[str, Any], enhanced: torch.Tensor) -> None:
        lengths = batch.get("lengths")
        mids = batch.get("mid") or [None] * enhanced.shape[0]
        for i in range(enhanced.shape[0]):
            if len(self.val_examples) >= self.num_val_samples_to_log:
                break
            n = int(lengths[i]) if lengths is not None else enhanced.shape[-1]
            self.val_examples.append(
                {
                    "mid": mids[i],
                    "noisy": batch["noisy"][i, self.ref_mic, :n].detach().float().cpu(),
                    "enhanced": enhanced[i, :n].detach().float().cpu(),
                    "target": batch["target"][i, :n].detach().float().cpu(),
                }
            )

    # --------------------------------------------------------------- prediction
    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Enhanced signals plus the batch's tensors and metadata (on CPU) for a prediction writer."""
        enhanced = self.net(batch["noisy"])
        out: dict[str, Any] = {"enhanced": enhanced.detach().float().cpu()}
        for key in ("noisy", "target", "lengths"):
            if key in batch and batch[key] is not None:
                out[key] = batch[key].detach().cpu()
        for key in ("mid", "meta"):
            if key in batch:
                out[key] = batch[key]
        out["sample_rate"] = self.sample_rate
        return out

    # ---------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> Any:
        """:data:`DEFAULT_OPTIMIZER` + :data:`DEFAULT_LR_SCHEDULER` for a plain ``Trainer``; the ``se``
        command replaces this method by its ``optimizer:`` / ``lr_scheduler:`` sections."""
        optimizer = instantiate_class(self.parameters(), DEFAULT_OPTIMIZER)
        return optimizer_config(optimizer, instantiate_class(optimizer, DEFAULT_LR_SCHEDULER))
