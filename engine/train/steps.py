"""One optimisation step per kind of model (``Capabilities.step``), given everything explicitly.

The loop draws the batches (real images, labels, latents, a penalty's interpolation noise) and
hands a step its networks, optimisers, loss and augmentation once (``StepParts``); a step touches
no loop state. Each call returns its statistics as one device tensor (no host sync) in the order
of its ``names``; the loop averages them between log lines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ContextManager

import torch
import torch.nn.functional as F
from torch import nn

from engine.base import records
from engine.config import ConfigError
from engine.models import Loss
from engine.models.losses import interpolates


@dataclass
class Batch:
    """What one D update trains on: augmented real images, their labels, latents drawn for the
    generator (or the prior, for an autoencoder), and the U[0, 1) interpolation weights a loss with
    a penalty uses (None otherwise); ``penalize``: whether a loss that penalizes_inputs adds its penalty on
    this update (False between the lazy penalty's updates)."""

    real: torch.Tensor
    labels: torch.Tensor
    z: torch.Tensor
    mix: torch.Tensor | None = None
    penalize: bool = True


@dataclass
class StepParts:
    """The networks, optimisers, loss and augmentation a step works with.

    ``G`` is what ``opt_g`` trains and the step calls (the encoder and decoder together for an
    autoencoder); ``D_pair`` calls D on real and fake (and interpolates) at once; ``D_judge`` is D
    alone for the G update and ``D`` the bare module whose gradients are frozen meanwhile. Under
    torchrun ``G`` and ``D_pair`` are DistributedDataParallel wrappers."""

    G: nn.Module
    D_pair: nn.Module
    D_judge: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: Loss
    augment: Callable[[torch.Tensor], torch.Tensor]  # DiffAugment of real and fake (identity when off)
    autocast: Callable[[], ContextManager[Any]]
    probabilities: bool  # D outputs shown as probabilities (BCE logits), else raw scores
    objective: dict[str, Any] = field(default_factory=dict)  # the model's own step settings


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for ``module``'s parameters inside the block (D while G learns to fool it)."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


def _probe(probabilities: bool, logits: torch.Tensor) -> torch.Tensor:
    """Mean D output as shown to users: a probability for BCE, the raw score otherwise."""
    logits = logits.detach().float()
    return (torch.sigmoid(logits) if probabilities else logits).mean()


class AdversarialStep:
    """n_critic D updates then one G update; D judges images (DCGAN, WGAN-GP, SNGAN, R3GAN, …). An
    AuxDiscriminator's loss on real images (FastGAN) is added to the D loss. A loss that
    ``penalizes_inputs`` (R1 + R2) gets the real and fake images D judged, requiring grad; a
    ``relativistic`` one gets D's scores of the last real batch in the G update too."""

    def __init__(self, parts: StepParts, n_critic: int, aux_loss: bool) -> None:
        self.parts, self.batches, self.aux_loss = parts, n_critic, aux_loss
        self.names = records.ADVERSARIAL_STATS + ((records.D_AUX,) if aux_loss else ())

    def __call__(self, batches: Sequence[Batch]) -> torch.Tensor:
        p = self.parts
        for i, batch in enumerate(batches):
            with p.autocast():
                if i == len(batches) - 1:
                    fake = p.G(batch.z, batch.labels)
                else:
                    with torch.no_grad():
                        fake = p.G(batch.z, batch.labels)
                real_in, fake_in = p.augment(batch.real), p.augment(fake.detach())
                penalize = p.loss.penalizes_inputs and batch.penalize
                if penalize:
                    real_in, fake_in = real_in.detach().requires_grad_(True), fake_in.detach().requires_grad_(True)
                mixed = interpolates(real_in, fake_in, batch.mix) if batch.mix is not None else None
                out = p.D_pair(real_in, fake_in, batch.labels, mixed)
                real_logits, fake_logits = out["real"].float(), out["fake"].float()
                loss_d = p.loss.d_loss(real_logits, fake_logits)
                if mixed is not None:
                    loss_d = loss_d + p.loss.penalty(mixed, out["mixed"].float())
                if penalize:
                    loss_d = loss_d + p.loss.input_penalty(real_in, real_logits, fake_in, fake_logits)
                if self.aux_loss:
                    loss_d = loss_d + out["aux"].float()
            _update(p.opt_d, loss_d)
        with _frozen(p.D):
            with p.autocast():
                judged = p.D_judge(p.augment(fake), batch.labels).float()
                if p.loss.relativistic:
                    loss_g = p.loss.relativistic_g_loss(judged, p.D_judge(real_in.detach(), batch.labels).float())
                else:
                    loss_g = p.loss.g_loss(judged)
            _update(p.opt_g, loss_g)
        with torch.no_grad():
            stats = [loss_g.detach().float(), loss_d.detach().float(), _probe(p.probabilities, out["real"]),
                     _probe(p.probabilities, out["fake"])]
            if self.aux_loss:
                stats.append(out["aux"].detach().float())
            return torch.stack(stats)


class Autoencoder(nn.Module):
    """Encoder and decoder as one module, so one forward (and one DDP wrapper) covers both."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(code, reconstruction) of a batch of images."""
        code = self.encoder(x)
        return code, self.decoder(code, labels)


RECONSTRUCTION_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


class AutoencoderStep:
    """Adversarial autoencoder: D learns prior draws (``Batch.z``, real) from codes of real images
    (fake); then encoder + decoder minimise reconstruction + adversarial_weight · (fool D), pulling
    codes toward the prior. ``objective`` holds "reconstruction" (mse | l1) and "adversarial_weight"."""

    names = records.AUTOENCODER_STATS
    batches = 1  # one D and one G update per step: optim.n_critic does not apply

    def __init__(self, parts: StepParts, n_critic: int, aux_loss: bool) -> None:
        if parts.loss.relativistic or parts.loss.penalizes_inputs:
            raise ConfigError(f"{type(parts.loss).__name__} compares or penalises images D judges; the adversarial "
                              "autoencoder's D judges latent codes: choose another loss.kind")
        self.parts = parts
        self.reconstruction = RECONSTRUCTION_LOSSES[parts.objective["reconstruction"]]
        self.adversarial_weight = float(parts.objective["adversarial_weight"])

    def __call__(self, batches: Sequence[Batch]) -> torch.Tensor:
        p, (batch,) = self.parts, batches
        with p.autocast():
            code, recon = p.G(batch.real, batch.labels)
            out = p.D_pair(batch.z, code.detach(), batch.labels)
            loss_d = p.loss.d_loss(out["real"].float(), out["fake"].float())
        _update(p.opt_d, loss_d)
        with _frozen(p.D):
            with p.autocast():
                loss_rec = self.reconstruction(recon.float(), batch.real.float())
                loss_adv = p.loss.g_loss(p.D_judge(code, batch.labels).float())
                loss_g = loss_rec + self.adversarial_weight * loss_adv
            _update(p.opt_g, loss_g)
        with torch.no_grad():
            return torch.stack([loss_g.detach().float(), loss_d.detach().float(), _probe(p.probabilities, out["real"]),
                                _probe(p.probabilities, out["fake"]), loss_rec.detach().float()])


TrainingStep = AdversarialStep | AutoencoderStep
STEPS: dict[str, type[TrainingStep]] = {"adversarial": AdversarialStep, "autoencoder": AutoencoderStep}
"""The step class for each ``Capabilities.step`` (engine.models.registry.TRAINING_STEPS)."""
