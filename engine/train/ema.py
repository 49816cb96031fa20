"""Exponential moving average of the generator, with the half-life given in images."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``ema`` ≈ average of G's weights; buffers (BatchNorm statistics) are copied."""

    def __init__(self, model: nn.Module, halflife_images: float, rampup: float) -> None:
        self.ema = copy.deepcopy(model).eval().requires_grad_(False)
        self.halflife_images = halflife_images
        self.rampup = rampup

    def beta(self, batch_images: int, images_seen: int) -> float:
        halflife = self.halflife_images
        if self.rampup > 0:
            halflife = min(halflife, images_seen * self.rampup)
        return 0.5 ** (batch_images / max(halflife, 1e-8))

    @torch.no_grad()
    def update(self, model: nn.Module, batch_images: int, images_seen: int) -> None:
        beta = self.beta(batch_images, images_seen)
        ema_params: list[torch.Tensor] = list(self.ema.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(self.ema.buffers(), model.buffers()):
            b_ema.copy_(b)
