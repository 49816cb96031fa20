"""Batched augmentation on the device: flip and small rotation for real images, and
DiffAugment (colour, translation, cutout) applied to real and fake alike before D."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.config import DIFFAUGMENT_POLICIES, policy_names


def parse_policy(text: str) -> tuple[str, ...]:
    """'color,translation' -> ('color', 'translation'); unknown names raise ValueError."""
    names = policy_names(text)
    unknown = [n for n in names if n not in DIFFAUGMENT_POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)}: choose from {', '.join(DIFFAUGMENT_POLICIES)}")
    return names


class BatchRandom:
    """Uniform draws for this rank's slice of the global batch: every rank draws the whole global
    batch's values from the same stream and keeps its own rows, so the augmentation of image i of
    a global batch does not depend on the number of processes."""

    def __init__(self, device: torch.device, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.rank, self.world_size = rank, world_size

    def uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        """U[0, 1) of ``shape``, whose first dimension is the local batch."""
        n = shape[0]
        values = torch.rand((n * self.world_size, *shape[1:]), generator=self.gen, device=self.gen.device)
        return values[self.rank * n:(self.rank + 1) * n]

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        """N(0, 1) of ``shape``, whose first dimension is the local batch."""
        n = shape[0]
        values = torch.randn((n * self.world_size, *shape[1:]), generator=self.gen, device=self.gen.device)
        return values[self.rank * n:(self.rank + 1) * n]


def flip(x: torch.Tensor, gen: BatchRandom) -> torch.Tensor:
    mask = gen.uniform((x.shape[0], 1, 1, 1)) < 0.5
    return torch.where(mask, x.flip(3), x)


def rotate(x: torch.Tensor, degrees: float, gen: BatchRandom) -> torch.Tensor:
    """Rotate each image by a uniform angle in [-degrees, degrees], reflecting at the border."""
    angle = (gen.uniform((x.shape[0],)) * 2 - 1) * math.radians(degrees)
    cos, sin = angle.cos(), angle.sin()
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def color(x: torch.Tensor, gen: BatchRandom) -> torch.Tensor:
    n = x.shape[0]
    x = x + (gen.uniform((n, 1, 1, 1)) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (gen.uniform((n, 1, 1, 1)) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (gen.uniform((n, 1, 1, 1)) + 0.5) + mean


def translation(x: torch.Tensor, gen: BatchRandom, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio×size pixels, zero padding (as in DiffAugment)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = (gen.uniform((n, 1, 1)) * (2 * sy + 1)).long() - sy
    tx = (gen.uniform((n, 1, 1)) * (2 * sx + 1)).long() - sx
    ys = torch.arange(h, device=x.device).view(1, h, 1) + ty
    xs = torch.arange(w, device=x.device).view(1, 1, w) + tx
    valid = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(1)
    flat = ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)
    gathered = x.flatten(2).gather(2, flat.flatten(1).unsqueeze(1).expand(-1, x.shape[1], -1))
    return gathered.view_as(x) * valid


def cutout(x: torch.Tensor, gen: BatchRandom, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random square of ratio×size per image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (gen.uniform((n, 1, 1)) * (h + 1 - ch % 2)).long()
    cx = (gen.uniform((n, 1, 1)) * (w + 1 - cw % 2)).long()
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy).abs() < ch // 2 + ch % 2) & ((xs - cx).abs() < cw // 2 + cw % 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_POLICY_FNS = {"color": color, "translation": translation, "cutout": cutout}


class Augmenter:
    """Owns the augmentation random stream (its state is saved in checkpoints). ``p`` is the probability
    that DiffAugment transforms an image (a plain float: a schedule may change it between steps)."""

    def __init__(self, device: torch.device, seed: int, flip: bool, rotate_degrees: float, diffaugment: str,
                 rank: int = 0, world_size: int = 1, p: float = 1.0) -> None:
        self.gen = BatchRandom(device, seed + 17, rank, world_size)
        self.flip = flip
        self.rotate_degrees = rotate_degrees
        self.policy = parse_policy(diffaugment)
        self.p = p

    def real(self, x: torch.Tensor) -> torch.Tensor:
        """Dataset augmentation, real images only."""
        if self.flip:
            x = flip(x, self.gen)
        if self.rotate_degrees > 0:
            x = rotate(x, self.rotate_degrees, self.gen)
        return x

    def diff(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable augmentation, for real and fake images before D: each image is transformed with
        probability ``p``, decided per image from this stream (with p = 1 nothing is drawn for it)."""
        if not self.policy or self.p <= 0:
            return x
        chosen = self.gen.uniform((x.shape[0], 1, 1, 1)) < self.p if self.p < 1 else None
        augmented = x
        for name in self.policy:
            augmented = _POLICY_FNS[name](augmented, self.gen)
        return augmented if chosen is None else torch.where(chosen, augmented, x)

    def get_state(self) -> torch.Tensor:
        return self.gen.gen.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.gen.gen.set_state(state)
