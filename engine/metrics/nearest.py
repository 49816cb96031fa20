"""Memorisation check: how far each generated image is from its nearest training image.

In the feature network's space (Inception pool3) when it is loaded (against the real images the statistics
use: the whole training set when it has at most `num_samples` images), else in pixels (against every
training image, both downscaled to at most 32×32, RMS difference on a 0–1 scale). Reported: the
median over generated images. Values near 0 mean copies of training images.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.metrics.registry import EvalData, Metric, Output, register_metric

PIXEL_SIZE = 32
CHUNK = 1_024


def downscale(images: np.ndarray, size: int = PIXEL_SIZE) -> np.ndarray:
    """Box-filter uint8 N×H×W×3 images down to at most size×size (integer factor), as uint8."""
    factor = max(1, images.shape[1] // size)
    if factor == 1:
        return images
    n, h, w, c = images.shape
    blocks = images[:, : h - h % factor, : w - w % factor].reshape(n, h // factor, factor, w // factor, factor, c)
    return np.rint(blocks.mean(axis=(2, 4), dtype=np.float32)).astype(np.uint8)


def nearest_distances(queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """For each query row, the Euclidean distance to the closest reference row (float32, chunked)."""
    best = torch.full((len(queries),), float("inf"))
    for start in range(0, len(references), CHUNK):
        block = references[start : start + CHUNK].float()
        for q in range(0, len(queries), CHUNK):
            distances = torch.cdist(queries[q : q + CHUNK].float(), block).min(dim=1).values
            best[q : q + CHUNK] = torch.minimum(best[q : q + CHUNK], distances.cpu())
    return best


def _pixels(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(downscale(images).reshape(len(images), -1).astype(np.float32) / 255.0)


@register_metric
class NearestTraining(Metric):
    name = "nn"
    description = "Median distance of a generated image to its nearest training image (memorisation check)"
    outputs = {
        "nn_feature": Output("NN-feature", lower_is_better=None),
        "nn_pixel": Output("NN-pixel", lower_is_better=None),
    }
    feature_net = "optional"

    def __init__(self, data: EvalData) -> None:
        super().__init__(data)
        self.fake_pixels: list[np.ndarray] = []

    def update(self, images: np.ndarray) -> None:
        if self.data.real is None:
            self.fake_pixels.append(downscale(images))

    def compute(self) -> dict[str, float]:
        if self.data.real is not None:
            distances = nearest_distances(self.data.fake.pool, self.data.real.pool)
            return {"nn_feature": float(distances.median())}
        fake = torch.from_numpy(np.concatenate(self.fake_pixels).reshape(self.data.num_fake, -1)) / 255.0
        best = torch.full((len(fake),), float("inf"))
        train = self.data.train_images
        for start in range(0, len(train), CHUNK):
            best = torch.minimum(best, nearest_distances(fake, _pixels(train[start : start + CHUNK])))
        return {"nn_pixel": float(best.median()) / fake.shape[1] ** 0.5}
