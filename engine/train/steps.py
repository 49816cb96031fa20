"""One optimisation step per kind of model. Each returns its statistics as one device tensor (no
host sync) in the order of its ``names``; the loop averages them between log lines."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

import torch

from engine.models.losses import WassersteinGPLoss

if TYPE_CHECKING:
    from engine.train.loop import Trainer


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@contextlib.contextmanager
def _frozen(module: torch.nn.Module) -> Iterator[None]:
    """No gradients for ``module``'s parameters inside the block (D while G learns to fool it)."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


def _probe(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """Mean D output as shown to users: a probability for BCE, the raw score otherwise."""
    logits = logits.detach().float()
    return (torch.sigmoid(logits) if kind == "bce" else logits).mean()


class AdversarialStep:
    """n_critic D updates then one G update; D judges images (DCGAN, WGAN-GP, SNGAN, …).

    A discriminator with ``forward_with_aux`` (FastGAN's self-supervised decoders) adds its
    auxiliary loss on real images to the D loss."""

    def __init__(self, trainer: "Trainer") -> None:
        self.t = trainer
        self.has_aux = hasattr(trainer.D, "forward_with_aux")
        self.names = ("loss_g", "loss_d", "d_real", "d_fake") + (("d_aux",) if self.has_aux else ())

    def __call__(self) -> torch.Tensor:
        t = self.t
        n_critic = t.config.optim.n_critic
        for i in range(n_critic):
            real, labels = t.real_batch()
            z = t.z()
            with t.autocast():
                if i == n_critic - 1:
                    fake = t.G_train(z, labels)
                else:
                    with torch.no_grad():
                        fake = t.G_train(z, labels)
                real_in, fake_in = t.aug.diff(real), t.aug.diff(fake.detach())
                mixed = None
                if isinstance(t.loss, WassersteinGPLoss):
                    mixed = t.loss.interpolates(real_in, fake_in, t.noise.uniform((len(real_in), 1, 1, 1)))
                out = t.D_train(real_in, fake_in, labels, mixed)
                loss_d = t.loss.d_loss(out["real"].float(), out["fake"].float())
                if mixed is not None:
                    loss_d = loss_d + t.loss.penalty(mixed, out["mixed"].float())
                if self.has_aux:
                    loss_d = loss_d + out["aux"].float()
            _update(t.opt_d, loss_d)
        with _frozen(t.D):
            with t.autocast():
                loss_g = t.loss.g_loss(t.D_judge(t.aug.diff(fake), labels).float())
            _update(t.opt_g, loss_g)
        kind = t.config.loss.kind
        with torch.no_grad():
            stats = [loss_g.detach().float(), loss_d.detach().float(), _probe(kind, out["real"]),
                     _probe(kind, out["fake"])]
            if self.has_aux:
                stats.append(out["aux"].detach().float())
            return torch.stack(stats)


class AutoencoderStep:
    """Adversarial autoencoder: D learns prior draws (real) from codes of real images (fake); then
    encoder + decoder minimise reconstruction + weight · (fool D), pulling codes toward the prior."""

    names = ("loss_g", "loss_d", "d_real", "d_fake", "recon")

    def __init__(self, trainer: "Trainer") -> None:
        self.t = trainer
        self.encoder = trainer.E

    def __call__(self) -> torch.Tensor:
        t = self.t
        real, labels = t.real_batch()
        with t.autocast():
            code, recon = t.G_train(real, labels)
            prior = t.z()
            out = t.D_train(prior, code.detach(), labels)
            loss_d = t.loss.d_loss(out["real"].float(), out["fake"].float())
        _update(t.opt_d, loss_d)
        with _frozen(t.D):
            with t.autocast():
                loss_rec = self.encoder.reconstruction_loss(recon.float(), real.float())
                loss_adv = t.loss.g_loss(t.D_judge(code, labels).float())
                loss_g = loss_rec + self.encoder.adversarial_weight * loss_adv
            _update(t.opt_g, loss_g)
        kind = t.config.loss.kind
        with torch.no_grad():
            return torch.stack([loss_g.detach().float(), loss_d.detach().float(), _probe(kind, out["real"]),
                                _probe(kind, out["fake"]), loss_rec.detach().float()])
