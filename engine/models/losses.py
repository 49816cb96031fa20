"""Adversarial losses, one class each, with a D phase and a G phase."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.config import LOSS_KINDS, MAX_LABEL_SMOOTHING, ConfigError, LossConfig


class NonSaturatingLoss:
    """BCE with logits (Goodfellow et al. 2014, non-saturating G), one-sided label smoothing."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.real_target = 1.0 - label_smoothing

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, self.real_target))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class HingeLoss:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class WassersteinGPLoss:
    """WGAN-GP (Gulrajani et al. 2017): critic scores, plus λ·(‖∇D(x̂)‖₂ − 1)² on random
    interpolates x̂ between real and fake images."""

    def __init__(self, gp_weight: float = 10.0) -> None:
        self.gp_weight = gp_weight

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    @staticmethod
    def interpolates(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """eps·real + (1 − eps)·fake per sample; ``eps`` is U[0, 1) of shape N×1×1×1."""
        return (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)

    def penalty(self, mixed: torch.Tensor, mixed_logits: torch.Tensor) -> torch.Tensor:
        """λ·E[(‖∇ₓ D(x̂)‖₂ − 1)²], differentiable w.r.t. D's parameters."""
        (grad,) = torch.autograd.grad(mixed_logits.sum(), mixed, create_graph=True)
        return self.gp_weight * (grad.flatten(1).norm(dim=1) - 1).square().mean()


def build_loss(cfg: LossConfig) -> NonSaturatingLoss | HingeLoss | WassersteinGPLoss:
    if not 0.0 <= cfg.label_smoothing < MAX_LABEL_SMOOTHING:
        raise ConfigError(f"loss.label_smoothing must be in [0, {MAX_LABEL_SMOOTHING}), got {cfg.label_smoothing}")
    if cfg.kind == "bce":
        return NonSaturatingLoss(cfg.label_smoothing)
    if cfg.kind == "hinge":
        return HingeLoss()
    if cfg.kind == "wgan-gp":
        return WassersteinGPLoss(cfg.gp_weight)
    raise ConfigError(f"unknown loss {cfg.kind!r}: choose {', '.join(LOSS_KINDS)}")
