"""Image tensors to uint8 arrays, grids, and enlargements for display."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float N×3×H×W in [-1, 1] to uint8 N×H×W×3."""
    out = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile uint8 N×H×W×3 images into one uint8 image with a dark gutter."""
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c), 24, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = image
    return grid


def save_png(image: np.ndarray, path: str) -> None:
    Image.fromarray(image).save(path, format="PNG")


def enlarge(images: np.ndarray, side: int) -> np.ndarray:
    """uint8 H×W×3 (or N×H×W×3) images scaled up by the smallest whole factor that makes their longer side
    at least ``side`` pixels, nearest neighbour, so every generated pixel shows as it is; unchanged
    (the same array) when they are that large already."""
    factor = math.ceil(side / max(images.shape[-3:-1]))
    if factor <= 1:
        return images
    return images.repeat(factor, axis=-3).repeat(factor, axis=-2)
