"""A run's trained discriminator, loaded from a checkpoint inside its run directory (safetensors only).

Exported generators and Hub models hold G alone: asking them for D raises ``NoDiscriminatorError``,
which says so and what to open instead. Inversion then falls back to its pixel loss.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from engine.base import records
from engine.base.checkpoint import load_verified, split_prefix
from engine.base.formats import MODEL_FILE, CheckpointError, GeneratorInfo
from engine.hub.pull import HUB_PREFIX
from engine.models import build_model, check_model_size, get_model
from engine.runs import Run


class NoDiscriminatorError(CheckpointError):
    """The generator was loaded from somewhere that holds no (image) discriminator."""


class Discriminator:
    """D of a checkpoint in eval mode, its parameters frozen: scores raw logits of images in [-1, 1]."""

    def __init__(self, module: nn.Module, info: GeneratorInfo, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.module = module.to(self.device).eval().requires_grad_(False)
        self.info = info
        self.resolution = info.resolution
        self.num_classes = info.num_classes
        self.model_name = info.model

    def labels(self, labels: Sequence[int] | None, count: int) -> torch.Tensor:
        """Class labels for ``count`` images (0 when none are given)."""
        return torch.as_tensor(list(labels) if labels is not None else [0] * count, dtype=torch.long,
                               device=self.device)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One score per image (N×3×R×R floats in [-1, 1]); differentiable with respect to the images."""
        labels = labels if labels is not None else self.labels(None, len(images))
        return self.module(images, labels).reshape(len(images), -1).mean(dim=1)

    def tensor(self, images: np.ndarray) -> torch.Tensor:
        """uint8 N×R×R×3 images as D's input (N×3×R×R in [-1, 1])."""
        if images.ndim != 4 or images.shape[1:] != (self.resolution, self.resolution, 3):
            raise ValueError(f"the discriminator judges {self.resolution}×{self.resolution} RGB images, "
                             f"got an array of shape {images.shape}")
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)

    @torch.no_grad()
    def score(self, images: np.ndarray, labels: Sequence[int] | None = None, batch_size: int = 64) -> np.ndarray:
        """Raw scores (logits for BCE-trained models) of uint8 N×R×R×3 images."""
        y = self.labels(labels, len(images))
        out = [self(self.tensor(images[i:i + batch_size]), y[i:i + batch_size]).cpu()
               for i in range(0, len(images), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def _checkpoint_of(path: Path) -> Path:
    if path.is_file() and path.suffix == ".json":
        return path
    if (path / MODEL_FILE).is_file():
        raise NoDiscriminatorError(f"{path} is an exported generator: it holds G only, no discriminator; open the "
                                   "run directory it came from to use D")
    run = Run(path)
    if run.exists():
        latest = run.latest_checkpoint()
        if latest is None:
            raise CheckpointError(f"run {path} has no checkpoint yet; wait for the first one or train longer")
        return latest
    raise CheckpointError(f"{path} is not a run directory or a checkpoint .json")


def load_discriminator(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Discriminator:
    """D of a run directory (its latest checkpoint) or of a checkpoint .json; ``NoDiscriminatorError`` for an
    exported folder, a Hub model or an autoencoder (whose D judges latent codes, not images)."""
    if str(path).startswith(HUB_PREFIX):
        raise NoDiscriminatorError(f"{path} is a Hub model: it holds G only, no discriminator")
    meta, tensors = load_verified(_checkpoint_of(Path(path).expanduser()))
    info = meta.generator_info()
    if get_model(info.model).capabilities.step != records.ADVERSARIAL:
        raise NoDiscriminatorError(f"a {info.model} model's discriminator judges latent codes, not images")
    weights = split_prefix("D", tensors)
    if not weights:
        raise NoDiscriminatorError(f"checkpoint of {path} holds no discriminator weights")
    check_model_size(*info.network, training=False, device=device)
    module = build_model(*info.network).discriminator
    try:
        module.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"discriminator weights do not fit model {info.model}: "
                              f"{str(exc).splitlines()[0]}") from exc
    return Discriminator(module, info, device)
