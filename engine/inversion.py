"""GAN inversion: find the latents whose samples look like given photos.

Adam on z from several random starts per photo (all optimised at once, one batch); the loss is the mean
absolute pixel error, plus a perceptual term from the trained discriminator's feature maps (pretrained
LPIPS weights cannot be downloaded offline), plus a prior that keeps z on the typical shell of N(0, I).
The perceptual term uses the maps ``engine.activations`` captures (the last activation at each spatial
size), unit-normalised over channels and compared like LPIPS without learned weights. Each photo's search is
independent of the others in its batch, except under the progressive GAN's D, whose minibatch-stddev features mix
the batch.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.activations import recording
from engine.discriminator import Discriminator
from engine.generator import Generator

DEFAULT_STEPS = 200
DEFAULT_RESTARTS = 4
Progress = Callable[[int, int, float], None]  # (steps done, steps in all, mean pixel error now)


@dataclass(frozen=True)
class Weights:
    """How much each term counts: pixel (mean absolute error, 0..1), feature (D's maps, 0..4 per layer),
    prior ((‖z‖²/d − 1)²)."""

    pixel: float = 1.0
    feature: float = 0.5
    prior: float = 0.05


@dataclass(frozen=True)
class Step:
    """The projection after ``step`` Adam steps, averaged over the photos (each photo's best start)."""

    step: int
    pixel_error: float
    feature_loss: float | None


@dataclass
class Projection:
    """Latents found for N photos, what they generate, and how close that is."""

    latents: torch.Tensor  # N×d, the best start of each photo
    labels: list[int]  # the class each latent is sampled with (0 for unconditional models)
    reconstructions: np.ndarray  # uint8 N×R×R×3
    targets: np.ndarray  # the photos as fitted to the generator (uint8 N×R×R×3)
    errors: np.ndarray  # mean absolute pixel error per photo (0 = identical, 1 = opposite)
    feature_errors: np.ndarray | None  # D-feature loss per photo; None without a discriminator
    history: list[Step] = field(default_factory=list)
    note: str | None = None  # what was left out (the feature term when there is no D)


def read_photo(source: str | os.PathLike[str] | bytes, name: str | None = None) -> np.ndarray:
    """An image file (or its bytes) as uint8 H×W×3 RGB, turned upright by its EXIF orientation."""
    label = name or (str(source) if not isinstance(source, bytes) else "the upload")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else Path(source)) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{label}: no such image file; check the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{label} is not an image that can be read ({exc}); use a PNG, JPEG or WebP photo") from None


def fit_photo(image: np.ndarray, resolution: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``resolution`` (uint8 H×W×3 in and out)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"a photo must be a uint8 H×W×3 RGB array, got {image.dtype} of shape {image.shape}")
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(image[top:top + side, left:left + side])
    return np.asarray(square.resize((resolution, resolution), Image.Resampling.LANCZOS))


def _normalised(features: torch.Tensor) -> torch.Tensor:
    return features / features.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _feature_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample LPIPS-style distance: unit-normalised channel vectors, squared difference summed over
    channels, averaged over positions and layers."""
    terms = [(_normalised(x) - _normalised(y)).pow(2).sum(dim=1).mean(dim=(1, 2)) for x, y in zip(a, b)]
    return torch.stack(terms).mean(dim=0)


class _Features:
    """D's feature maps of images in [-1, 1] (one list per call, same layers every time)."""

    def __init__(self, discriminator: Discriminator) -> None:
        self.discriminator = discriminator

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
        with recording(self.discriminator.module) as recorder:
            self.discriminator(images, labels)
        return [a.output for a in recorder.activations()]


@torch.no_grad()
def feature_distance(discriminator: Discriminator, images: np.ndarray, targets: np.ndarray,
                     labels: Sequence[int] | None = None) -> np.ndarray:
    """The D-feature (perceptual) loss between uint8 N×R×R×3 images and targets, one value per pair."""
    features = _Features(discriminator)
    y = discriminator.labels(labels, len(images))
    return _feature_distance(features(discriminator.tensor(images), y),
                             features(discriminator.tensor(targets), y)).cpu().numpy()


def _start_labels(generator: Generator, labels: Sequence[int] | None, count: int, restarts: int) -> torch.Tensor:
    """Class per (photo, start): the given one, else for conditional models the starts cycle over classes."""
    if labels is not None:
        if len(labels) != count:
            raise ValueError(f"give one label per photo ({count}), got {len(labels)}")
        return torch.as_tensor(list(labels), dtype=torch.long).repeat_interleave(restarts)
    per_start = torch.arange(restarts) % max(generator.num_classes, 1)
    return per_start.repeat(count)


def project(generator: Generator, images: np.ndarray | Sequence[np.ndarray], discriminator: Discriminator | None = None,
            steps: int = DEFAULT_STEPS, restarts: int = DEFAULT_RESTARTS, lr: float = 0.05,
            weights: Weights = Weights(), seed: int = 0, labels: Sequence[int] | None = None,
            callback: Progress | None = None, batch_size: int = 32) -> Projection:
    """Latents whose samples match ``images`` (uint8 H×W×3 photos of any size, centre-cropped and resized to
    the generator's resolution). Deterministic given ``seed``; photos are projected ``batch_size`` starts at a
    time. Without a discriminator (exported or Hub generators) only the pixel and prior terms are used."""
    if steps < 0 or restarts < 1 or lr <= 0:
        raise ValueError("steps must be ≥ 0, restarts ≥ 1 and the learning rate positive")
    if len(images) == 0:
        raise ValueError("give at least one photo to project")
    targets = np.stack([fit_photo(np.asarray(image), generator.resolution) for image in images])
    count, dim = len(targets), generator.latent_dim
    starts = torch.randn(count * restarts, dim, generator=torch.Generator().manual_seed(seed))
    start_labels = _start_labels(generator, labels, count, restarts)
    features = _Features(discriminator) if discriminator is not None and weights.feature > 0 else None
    chunk = max(1, batch_size // restarts)
    pixel_curve = np.zeros((steps + 1, count))
    feature_curve = np.zeros((steps + 1, count))
    latents = torch.zeros(count, dim)
    errors, feature_errors, chosen_labels = np.zeros(count), np.zeros(count), [0] * count
    done, total = 0, steps * math.ceil(count / chunk)
    for first in range(0, count, chunk):
        photos = slice(first, min(count, first + chunk))
        rows = slice(photos.start * restarts, photos.stop * restarts)
        x = torch.from_numpy(targets[photos]).to(generator.device).permute(0, 3, 1, 2).float().div(127.5).sub(1)
        run = _Run(generator, x.repeat_interleave(restarts, dim=0), start_labels[rows].to(generator.device),
                   starts[rows].to(generator.device), features, weights, lr, steps)
        for step in range(steps + 1):
            pixel, feature = run.step(step)
            now = _best_of_starts(run.loss, restarts)
            pixel_curve[step, photos] = pixel.cpu()[now].numpy()
            if feature is not None:
                feature_curve[step, photos] = feature.cpu()[now].numpy()
            if step < steps:
                done += 1
                if callback is not None:
                    callback(done, total, float(pixel_curve[step, photos].mean()))
        best = _best_of_starts(run.best_loss, restarts)
        latents[photos] = run.best_z.cpu()[best]
        errors[photos] = run.best_pixel.cpu()[best].numpy()
        feature_errors[photos] = run.best_feature.cpu()[best].numpy()
        chosen_labels[photos] = start_labels[rows][best].tolist()
    history = [Step(s, float(pixel_curve[s].mean()), float(feature_curve[s].mean()) if features else None)
               for s in range(steps + 1)]
    note = None if discriminator is not None else "pixel loss only: no discriminator was given"
    return Projection(latents, chosen_labels, generator.sample(latents=latents, labels=chosen_labels), targets,
                      errors, feature_errors if features else None, history, note)


def _best_of_starts(loss: torch.Tensor, restarts: int) -> torch.Tensor:
    """Row index of each photo's lowest-loss start (rows are photo-major)."""
    index = loss.view(-1, restarts).argmin(dim=1).cpu()
    return torch.arange(len(index)) * restarts + index


class _Run:
    """One batch of starts under Adam with a cosine learning-rate decay; remembers each start's best z."""

    def __init__(self, generator: Generator, x: torch.Tensor, y: torch.Tensor, z0: torch.Tensor,
                 features: _Features | None, weights: Weights, lr: float, steps: int) -> None:
        self.generator, self.x, self.y, self.features, self.weights = generator, x, y, features, weights
        self.target_features = [f.detach() for f in features(x, y)] if features else []
        self.z = z0.clone().requires_grad_(True)
        self.moments = torch.zeros_like(z0), torch.zeros_like(z0)
        self.lr, self.steps = lr, steps
        self.best_z = z0.clone()
        self.best_loss = torch.full((len(z0),), math.inf, device=z0.device)
        self.best_pixel = torch.zeros(len(z0), device=z0.device)
        self.best_feature = torch.zeros(len(z0), device=z0.device)
        self.loss = self.best_loss.clone()

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Losses of the current z (per start), then one Adam step unless ``step`` is the last."""
        image = self.generator.module(self.z, self.y)
        pixel = (image - self.x).abs().mean(dim=(1, 2, 3)) / 2  # in 0..1 image units
        feature = _feature_distance(self.features(image, self.y), self.target_features) if self.features else None
        prior = (self.z.pow(2).mean(dim=1) - 1).pow(2)
        w = self.weights
        loss = w.pixel * pixel + w.prior * prior + (w.feature * feature if feature is not None else 0)
        with torch.no_grad():
            better = loss < self.best_loss
            self.best_loss = torch.where(better, loss, self.best_loss)
            self.best_z[better] = self.z[better]
            self.best_pixel = torch.where(better, pixel, self.best_pixel)
            if feature is not None:
                self.best_feature = torch.where(better, feature, self.best_feature)
        self.loss = loss.detach()
        if step < self.steps:
            (gradient,) = torch.autograd.grad(loss.sum(), self.z)
            self._adam(gradient, step + 1, self.lr * 0.5 * (1 + math.cos(math.pi * step / self.steps)))
        return pixel.detach(), feature.detach() if feature is not None else None

    @torch.no_grad()
    def _adam(self, gradient: torch.Tensor, t: int, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        """One Adam update of z (Kingma & Ba 2015), written out: torch.optim's first use imports TorchDynamo,
        seconds on a CPU, which the studio would pay on its first projection."""
        m, v = self.moments
        m.mul_(betas[0]).add_(gradient, alpha=1 - betas[0])
        v.mul_(betas[1]).addcmul_(gradient, gradient, value=1 - betas[1])
        step = lr / (1 - betas[0] ** t)
        self.z.addcdiv_(m, (v / (1 - betas[1] ** t)).sqrt().add_(1e-8), value=-step)
