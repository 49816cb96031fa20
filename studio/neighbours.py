"""Nearest training images to a generated one, in pixel space (a memorisation check)."""

from __future__ import annotations

import numpy as np

COARSE = 16  # side of the thumbnails the first pass compares
SHORTLIST = 64  # candidates re-ranked at full resolution


def _thumbnails(images: np.ndarray, side: int) -> np.ndarray:
    """Box-downsampled float32 N×(side·side·3) vectors in [0, 1]."""
    n, h, w, c = images.shape
    f = max(1, h // side)
    cropped = images[:, : f * (h // f), : f * (w // f)]
    rows = cropped.reshape(n, h // f, f, w - w % f, c).sum(axis=2, dtype=np.uint32)
    boxes = rows.reshape(n, h // f, w // f, f, c).sum(axis=3, dtype=np.uint32)
    return boxes.reshape(n, -1).astype(np.float32) / (255 * f * f)


class NeighbourIndex:
    """Search uint8 N×H×W×3 images by Euclidean distance: a thumbnail pass, then full resolution."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images
        self._thumbs = _thumbnails(images, COARSE)
        self._norms = (self._thumbs ** 2).sum(axis=1)

    def search(self, query: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Indices and RMS pixel distances (0..1) of the ``k`` nearest images, nearest first."""
        q = _thumbnails(query[None], COARSE)[0]
        coarse = self._norms - 2 * self._thumbs @ q
        short = np.argpartition(coarse, min(SHORTLIST, len(coarse) - 1))[:SHORTLIST]
        diff = self.images[short].astype(np.float32) / 255 - query.astype(np.float32) / 255
        fine = np.sqrt((diff ** 2).reshape(len(short), -1).mean(axis=1))
        order = np.argsort(fine)[:k]
        return short[order], fine[order]
