"""Adversarial losses, one class each, with a D phase and a G phase."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.config import ConfigError, LossConfig


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


def build_loss(cfg: LossConfig) -> NonSaturatingLoss | HingeLoss:
    if not 0.0 <= cfg.label_smoothing < 0.5:
        raise ConfigError(f"loss.label_smoothing must be in [0, 0.5), got {cfg.label_smoothing}")
    if cfg.kind == "bce":
        return NonSaturatingLoss(cfg.label_smoothing)
    if cfg.kind == "hinge":
        return HingeLoss()
    raise ConfigError(f"unknown loss {cfg.kind!r}: choose bce or hinge")
