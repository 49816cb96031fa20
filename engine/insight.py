"""What the networks see: G's feature maps at each resolution, D's feature maps and the gradient of its score
with respect to its input (saliency), and D's scores of real against generated images.

Feature maps are the ones ``engine.activations`` captures (the last activation at each spatial size); each
layer shows its top channels by mean activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.activations import Activation, recording
from engine.discriminator import Discriminator
from engine.generator import Generator
from engine.grid import enlarge, image_grid, to_uint8

TOP = 8  # channels shown per layer
SALIENCY_QUANTILE = 0.99  # saliency is scaled so that this quantile is 1 (a few hot pixels would darken the rest)
# A dark-to-bright colour scale (black, violet, red, orange, pale yellow), for maps and heat maps.
_SCALE = np.array([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], np.float32)


@dataclass(frozen=True)
class LayerMaps:
    """One layer's feature maps for one image: its top channels by mean activation, strongest first."""

    name: str  # the module that produced them, e.g. "body.4"
    channels: int
    height: int
    width: int
    top: tuple[int, ...]  # channel indices
    strengths: tuple[float, ...]  # their mean activations
    maps: np.ndarray  # float32 k×H×W

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the whole layer."""
        return self.channels, self.height, self.width


@dataclass(frozen=True)
class DiscriminatorView:
    """D on one image: its score, where the score is most sensitive to the pixels, and its feature maps."""

    score: float
    saliency: np.ndarray  # float32 H×W in 0..1: |∂score/∂pixel|, max over colours, over its 99th percentile
    layers: list[LayerMaps]


@dataclass(frozen=True)
class ScoreHistograms:
    """D's raw scores of a batch of real and a batch of generated images, counted in shared bins."""

    edges: np.ndarray  # bins + 1 edges
    real: np.ndarray  # counts per bin
    generated: np.ndarray
    real_scores: np.ndarray
    generated_scores: np.ndarray


def _layer(activation: Activation, top: int) -> LayerMaps:
    maps = activation.output[0].detach().float().cpu()
    strengths = maps.mean(dim=(1, 2))
    order = strengths.argsort(descending=True)[:top]
    return LayerMaps(activation.name, int(maps.shape[0]), int(maps.shape[1]), int(maps.shape[2]),
                     tuple(int(i) for i in order), tuple(float(strengths[i]) for i in order), maps[order].numpy())


@torch.no_grad()
def generator_features(generator: Generator, latent: torch.Tensor, label: int = 0,
                       top: int = TOP) -> tuple[np.ndarray, list[LayerMaps]]:
    """The image one latent (d,) generates (uint8 R×R×3) and G's feature maps from 4×4 up, one per resolution."""
    z = torch.as_tensor(latent, dtype=torch.float32).reshape(1, -1).to(generator.device)
    y = torch.tensor([label], device=generator.device)
    with recording(generator.module) as recorder:
        image = generator.module(z, y)
    return to_uint8(image)[0], [_layer(a, top) for a in recorder.activations()]


def discriminator_view(discriminator: Discriminator, image: np.ndarray, label: int = 0,
                       top: int = TOP) -> DiscriminatorView:
    """D's score of one uint8 R×R×3 image, its input-gradient saliency and its feature maps."""
    x = discriminator.tensor(image[None]).requires_grad_(True)
    with recording(discriminator.module) as recorder:
        score = discriminator(x, discriminator.labels([label], 1))
    (gradient,) = torch.autograd.grad(score.sum(), x)
    saliency = gradient[0].abs().amax(dim=0)
    saliency = (saliency / torch.quantile(saliency, SALIENCY_QUANTILE).clamp_min(1e-12)).clamp(max=1)
    return DiscriminatorView(float(score.detach()[0]), saliency.cpu().numpy().astype(np.float32),
                             [_layer(a, top) for a in recorder.activations()])


def score_histograms(discriminator: Discriminator, real: np.ndarray, generated: np.ndarray, bins: int = 20,
                     real_labels: list[int] | None = None, generated_labels: list[int] | None = None
                     ) -> ScoreHistograms:
    """D's scores of uint8 real and generated images (N×R×R×3 each), counted over the same ``bins`` bins."""
    real_scores = discriminator.score(real, real_labels)
    fake_scores = discriminator.score(generated, generated_labels)
    edges = np.histogram_bin_edges(np.concatenate([real_scores, fake_scores]), bins=bins)
    return ScoreHistograms(edges, np.histogram(real_scores, edges)[0], np.histogram(fake_scores, edges)[0],
                           real_scores, fake_scores)


def colourise(values: np.ndarray) -> np.ndarray:
    """Floats in 0..1 (any shape) as uint8 RGB on the dark-to-bright scale (shape + (3,))."""
    position = np.clip(values, 0, 1) * (len(_SCALE) - 1)
    low = np.minimum(position.astype(int), len(_SCALE) - 2)
    frac = (position - low)[..., None]
    return np.round(_SCALE[low] * (1 - frac) + _SCALE[low + 1] * frac).astype(np.uint8)


def render_layer(layer: LayerMaps, side: int = 64, columns: int = TOP) -> np.ndarray:
    """A layer's top maps as one uint8 grid, each map scaled to its own 0..1 range and enlarged to ``side``."""
    low = layer.maps.min(axis=(1, 2), keepdims=True)
    span = np.maximum(layer.maps.max(axis=(1, 2), keepdims=True) - low, 1e-12)
    return image_grid(enlarge(colourise((layer.maps - low) / span), side), columns=columns)


def heat_map(image: np.ndarray, saliency: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """``saliency`` (H×W in 0..1) coloured over a greyed uint8 H×W×3 image."""
    grey = image.astype(np.float32).mean(axis=2, keepdims=True).repeat(3, axis=2)
    blended = (1 - opacity) * grey + opacity * colourise(saliency).astype(np.float32)
    return np.round(blended).astype(np.uint8)
