"""Memorisation check: how far a generated image is from its nearest training image.

One pixel distance serves the metric (``nn_pixel``) and the search the studio shows (``NeighbourIndex``): the
RMS difference, on a 0–1 scale, of the two images box-filtered down to at most 32×32. Downscaled, so that its
cost does not grow with the resolution (the metric compares every generated image with every training image,
on a CPU too) and pixel noise weighs less than what the image shows; RMS, so that values read the same at
every resolution (0 identical, 1 opposite).

With the feature network loaded the metric measures in its space instead (``nn_feature``: Inception pool3,
against the real images the statistics use: the whole training set when it has at most `num_samples`
images). Reported: the median over generated images. Values near 0 mean copies of training images.
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


def _unit(rows: np.ndarray) -> torch.Tensor:
    """uint8 rows as float32 on a 0–1 scale."""
    return torch.from_numpy(rows.astype(np.float32) / 255.0)


def pixel_rows(images: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×3 images as the uint8 rows the pixel distance compares (downscaled, flattened)."""
    return downscale(images).reshape(len(images), -1)


def nearest_distances(queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """For each query row, the Euclidean distance to the closest reference row (float32, chunked)."""
    best = torch.full((len(queries),), float("inf"))
    for start in range(0, len(references), CHUNK):
        block = references[start : start + CHUNK].float()
        for q in range(0, len(queries), CHUNK):
            distances = torch.cdist(queries[q : q + CHUNK].float(), block).min(dim=1).values
            best[q : q + CHUNK] = torch.minimum(best[q : q + CHUNK], distances.cpu())
    return best


class NeighbourIndex:
    """The training images nearest a generated image by the pixel distance, exact: every image is compared."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images
        self._rows = pixel_rows(images)  # uint8: a quarter of the memory of float rows

    def search(self, query: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Indices and pixel distances of the ``k`` training images nearest the uint8 H×W×3 ``query``, nearest
        first."""
        q = _unit(pixel_rows(query[None]))
        distances = torch.cat([
            torch.cdist(q, _unit(self._rows[start : start + CHUNK]), compute_mode="donot_use_mm_for_euclid_dist")[0]
            for start in range(0, len(self._rows), CHUNK)])
        nearest = torch.topk(distances, min(k, len(distances)), largest=False)
        return nearest.indices.numpy(), (nearest.values / q.shape[1] ** 0.5).numpy()


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
        self.fake_rows: list[np.ndarray] = []

    def update(self, images: np.ndarray) -> None:
        if self.data.real is None:
            self.fake_rows.append(pixel_rows(images))

    def compute(self) -> dict[str, float]:
        if self.data.real is not None:
            fake_features, real_features = self.data.features()
            distances = nearest_distances(fake_features.pool, real_features.pool)
            return {"nn_feature": float(distances.median())}
        fake = _unit(np.concatenate(self.fake_rows))
        best = torch.full((len(fake),), float("inf"))
        train = self.data.train_images
        for start in range(0, len(train), CHUNK):
            best = torch.minimum(best, nearest_distances(fake, _unit(pixel_rows(train[start : start + CHUNK]))))
        return {"nn_pixel": float(best.median()) / fake.shape[1] ** 0.5}
