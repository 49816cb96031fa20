"""Adversarial losses, one class each, registered by name with what the studio shows about them.

A loss has a D phase and a G phase on D's raw outputs. One that adds a penalty on images between
real and fake (WGAN-GP) says so with ``uses_interpolates = True``: the training step then makes
interpolates from the loop's noise (``interpolates``) and adds ``penalty`` on them to the D loss.
One whose G loss compares fakes with reals (RpGAN) says ``relativistic = True``: the G step then also
scores the real batch under the frozen D and calls ``relativistic_g_loss``. One with a penalty on D's
gradients at the real and fake images it judges (R1 + R2) says ``penalizes_inputs = True``: the D step
then makes those images require grad and adds ``input_penalty`` to the D loss.

Penalty weights (``gp_weight``, ``gamma``) are plain float attributes that may change between steps
(a schedule sets them); each call reads the current value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
import torch.nn.functional as F

from engine.config import ConfigError, LossConfig


class Loss:
    """The interface every registered loss implements."""

    uses_interpolates = False  # True: the D step adds penalty() on interpolates between real and fake
    probability_logits = False  # True: D's outputs are logits of a probability (shown through a sigmoid)
    relativistic = False  # True: the G step scores the real batch too and uses relativistic_g_loss()
    penalizes_inputs = False  # True: the D step adds input_penalty() on D's gradients at its real and fake inputs

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def relativistic_g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} is not relativistic")

    def penalty(self, mixed: torch.Tensor, mixed_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no interpolate penalty")

    def input_penalty(self, real_in: torch.Tensor, real_logits: torch.Tensor, fake_in: torch.Tensor,
                      fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no penalty on D's inputs")

    @classmethod
    def from_config(cls, cfg: LossConfig) -> "Loss":
        return cls()


@dataclass(frozen=True)
class LossInfo:
    """A registered loss as shown to users."""

    name: str  # the loss.kind value
    label: str
    description: str
    uses_interpolates: bool
    build: Callable[[LossConfig], Loss]


_LOSSES: dict[str, LossInfo] = {}
L = TypeVar("L", bound=type[Loss])


def register_loss(name: str, label: str, description: str) -> Callable[[L], L]:
    """Class decorator: make a Loss subclass available as ``loss.kind=name``."""

    def add(cls: L) -> L:
        _LOSSES[name] = LossInfo(name, label, description, cls.uses_interpolates, cls.from_config)
        return cls

    return add


def list_losses() -> list[LossInfo]:
    return list(_LOSSES.values())


def get_loss(name: str) -> LossInfo:
    if name not in _LOSSES:
        raise ConfigError(f"loss.kind must be one of {', '.join(_LOSSES)}, got {name!r}")
    return _LOSSES[name]


def build_loss(cfg: LossConfig) -> Loss:
    return get_loss(cfg.kind).build(cfg)


@register_loss("bce", "Non-saturating (BCE)", "Binary cross-entropy on D's logits with the non-saturating G loss "
               "(Goodfellow et al. 2014); loss.label_smoothing makes real targets 1 − s.")
class NonSaturatingLoss(Loss):
    """BCE with logits (Goodfellow et al. 2014, non-saturating G), one-sided label smoothing."""

    probability_logits = True

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.real_target = 1.0 - label_smoothing

    @classmethod
    def from_config(cls, cfg: LossConfig) -> "NonSaturatingLoss":
        return cls(cfg.label_smoothing)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, self.real_target))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


@register_loss("hinge", "Hinge", "SNGAN-style hinge loss (Lim & Ye 2017; Miyato et al. 2018).")
class HingeLoss(Loss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


@register_loss("wgan-gp", "Wasserstein + gradient penalty", "Wasserstein critic loss with λ·(‖∇D(x̂)‖ − 1)² on "
               "interpolates (Gulrajani et al. 2017); λ is loss.gp_weight. The wgan-gp model needs it.")
class WassersteinGPLoss(Loss):
    """WGAN-GP (Gulrajani et al. 2017): critic scores, plus λ·(‖∇D(x̂)‖₂ − 1)² on random
    interpolates x̂ between real and fake images."""

    uses_interpolates = True

    def __init__(self, gp_weight: float = 10.0) -> None:
        self.gp_weight = gp_weight

    @classmethod
    def from_config(cls, cfg: LossConfig) -> "WassersteinGPLoss":
        return cls(cfg.gp_weight)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    def penalty(self, mixed: torch.Tensor, mixed_logits: torch.Tensor) -> torch.Tensor:
        """λ·E[(‖∇ₓ D(x̂)‖₂ − 1)²], differentiable w.r.t. D's parameters."""
        (grad,) = torch.autograd.grad(mixed_logits.sum(), mixed, create_graph=True)
        return self.gp_weight * (grad.flatten(1).norm(dim=1) - 1).square().mean()


@register_loss("rpgan", "Relativistic pairing + R1 + R2 (R3GAN)", "Each real image is paired with a fake one: D "
               "learns softplus(D(fake) − D(real)), G softplus(D(real) − D(fake)), plus zero-centred gradient "
               "penalties on real (R1) and fake (R2) images, γ/2·E‖∇D‖² each (Huang et al. 2024); γ is loss.gamma; "
               "loss.penalty_every = k computes them on every k-th D update only, weighted k (faster). "
               "The r3gan model needs it.")
class RelativisticPairingLoss(Loss):
    """RpGAN with R1 + R2 (Huang et al. 2024): E[softplus(−(D(x) − D(G(z))))] over index pairs for D,
    E[softplus(−(D(G(z)) − D(x)))] for G, and γ/2·(E‖∇ₓD(x)‖² + E‖∇D(G(z))‖²) added to the D loss."""

    relativistic = True
    penalizes_inputs = True

    def __init__(self, gamma: float = 0.05, penalty_every: int = 1) -> None:
        self.gamma = gamma
        self.penalty_every = penalty_every  # lazy regularisation: the step penalises every k-th D update

    @classmethod
    def from_config(cls, cfg: LossConfig) -> "RelativisticPairingLoss":
        return cls(cfg.gamma, cfg.penalty_every)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(fake_logits - real_logits).mean()

    def relativistic_g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(real_logits - fake_logits).mean()

    def input_penalty(self, real_in: torch.Tensor, real_logits: torch.Tensor, fake_in: torch.Tensor,
                      fake_logits: torch.Tensor) -> torch.Tensor:
        """γ/2·(R1 + R2), R = E‖∇ₓD(x)‖² over the batch, differentiable w.r.t. D's parameters, times
        ``penalty_every`` (the lazy penalty, applied on every k-th D update only, keeps its average weight). D
        judges real and fake images in separate calls, so one backward of all logits summed gives both sets of
        gradients."""
        real_grad, fake_grad = torch.autograd.grad(real_logits.sum() + fake_logits.sum(), (real_in, fake_in),
                                                   create_graph=True)
        r1 = real_grad.float().flatten(1).square().sum(1).mean()
        r2 = fake_grad.float().flatten(1).square().sum(1).mean()
        return 0.5 * self.gamma * self.penalty_every * (r1 + r2)


def interpolates(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """eps·real + (1 − eps)·fake per sample (``eps`` U[0, 1) of shape N×1×1×1), with gradients."""
    return (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
