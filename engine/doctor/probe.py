"""What the doctor measures on the progress grid's images when the grid is written (they are on the host
already): how varied they are, how many have a near-twin in the grid, how close they come to training
images, and grey patches DiffAugment would have painted.

Every measure is relative to the same measure on the training images, taken once when the run starts, so
that it reads the same on any dataset and resolution. Distances are RMS pixel differences on a 0–1 scale of
the images box-filtered to at most 16×16 (``PROBE_SIZE``): coarse enough that a generator's pixel noise
weighs little against what the image shows, and cheap on a CPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.base import records
from engine.metrics.nearest import downscale, nearest_distances

PROBE_SIZE = 16  # images are box-filtered to at most this size before any distance
REFERENCE_IMAGES = 256  # training images the reference measures use (evenly spaced through the dataset)
GREY, GREY_TOLERANCE = 127.5, 12.0  # DiffAugment's fill (0 in [-1, 1]) and how far a pixel may be from it
# a band or square is a patch when this share of its pixels is fill-grey: a generator paints the fill with pixel
# noise (a tiny DCGAN's grey frames: half their pixels 8 levels or more from the fill)
FLAT_SHARE = 0.75
MAX_GREY_SHARE = 0.6  # an image greyer than this overall is not patched, just grey (an untrained generator)
TWIN_DATASET = 4  # twins are measured when the dataset holds this many times the grid's images (a smaller one
# has too few distinct images for a faithful grid to be free of twins)
FLOOR = 1e-6  # ratios are kept above 0, so that a record never holds a value a reader cannot divide by


def rows(images: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×3 images as float rows on a 0–1 scale, box-filtered to at most PROBE_SIZE."""
    small = downscale(images, PROBE_SIZE)
    return torch.from_numpy(small.reshape(len(images), -1).astype(np.float32) / 255.0)


def _rms(distances: torch.Tensor, width: int) -> torch.Tensor:
    return distances / math.sqrt(width)


def diversity(images: np.ndarray) -> float:
    """Mean pairwise distance between uint8 N×H×W×3 images (0: all identical)."""
    if len(images) < 2:
        return 0.0
    found = rows(images)
    return float(_rms(torch.pdist(found), found.shape[1]).mean())


def twin_distances(images: np.ndarray) -> torch.Tensor:
    """For each image, the distance to the nearest other image of the same set."""
    found = rows(images)
    distances = torch.cdist(found, found)
    distances.fill_diagonal_(float("inf"))
    return _rms(distances.min(dim=1).values, found.shape[1])


def grey_mask(images: np.ndarray) -> np.ndarray:
    """Per pixel of the images box-filtered to at most 32×32: all three channels near DiffAugment's fill."""
    small = downscale(images).astype(np.float32)
    return np.all(np.abs(small - GREY) <= GREY_TOLERANCE, axis=-1)


def _border_band(mask: np.ndarray) -> np.ndarray:
    """Per image, the widest band of fill-grey rows or columns along any edge (translation's padding)."""
    widest = np.zeros(len(mask), dtype=np.int64)
    for view in (mask, mask[:, ::-1], mask.transpose(0, 2, 1), mask.transpose(0, 2, 1)[:, ::-1]):
        flat = view.mean(axis=2) >= FLAT_SHARE  # N × rows: row r is (nearly) all fill-grey
        widest = np.maximum(widest, np.cumprod(flat, axis=1).sum(axis=1))  # the leading rows that are
    return widest


def _has_square(mask: np.ndarray, side: int) -> np.ndarray:
    """Per image, whether some side×side window is (nearly) all fill-grey (cutout's square)."""
    n, h, w = mask.shape
    if side > min(h, w):
        return np.zeros(n, dtype=bool)
    integral = np.zeros((n, h + 1, w + 1), dtype=np.int64)
    integral[:, 1:, 1:] = mask.cumsum(axis=1).cumsum(axis=2)
    sums = (integral[:, side:, side:] - integral[:, :-side, side:] - integral[:, side:, :-side]
            + integral[:, :-side, :-side])
    return np.asarray((sums >= FLAT_SHARE * side * side).reshape(n, -1).any(axis=1))


def patched(images: np.ndarray) -> np.ndarray:
    """Per uint8 image, whether it shows what DiffAugment paints: a fill-grey band along an edge at least
    1/16 of the size wide (translation's padding) or a fill-grey square a quarter of the size wide
    (cutout), in an image that is not grey all over."""
    mask = grey_mask(images)
    size = min(mask.shape[1:])
    marked = (_border_band(mask) >= max(2, size // 16)) | _has_square(mask, max(2, size // 4))
    return np.asarray(marked & (mask.reshape(len(mask), -1).mean(axis=1) <= MAX_GREY_SHARE))


def _evenly(count: int, wanted: int) -> np.ndarray:
    return np.unique(np.linspace(0, count - 1, min(count, wanted)).round().astype(np.int64))


class Probe:
    """Measures grid images against references taken once from the training images.

    ``nearest_max_images``: the nearest-training-image check runs only for datasets up to this size (every
    training image is compared with every grid image: cheap for small datasets, where memorisation happens).
    ``flip``: the training images are flipped at random (data.flip), so their mirror images count as training
    images too."""

    def __init__(self, real_images: np.ndarray, nearest_max_images: int, flip: bool = False) -> None:
        self.real_images = real_images
        reference = np.asarray(real_images[_evenly(len(real_images), REFERENCE_IMAGES)])
        self.real_diversity = max(diversity(reference), FLOOR)
        self.real_patched = float(patched(reference).mean())
        self._twin_spacing: dict[int, float] = {}
        count = len(real_images)
        self.train_rows: torch.Tensor | None = None
        self.spacing: float | None = None
        if 1 < count <= nearest_max_images:
            every = np.asarray(real_images)
            self.train_rows = torch.cat([rows(every), rows(every[:, :, ::-1])]) if flip else rows(every)
            self.spacing = self._spacing(_evenly(count, REFERENCE_IMAGES), count)

    def _spacing(self, picked: np.ndarray, count: int) -> float:
        """Median distance of a reference training image to its nearest other training image (its own mirror
        image is not another)."""
        assert self.train_rows is not None
        distances = torch.cdist(self.train_rows[picked], self.train_rows)
        own = torch.from_numpy(picked)
        for copy in range(len(self.train_rows) // count):
            distances[torch.arange(len(picked)), own + copy * count] = float("inf")
        return max(float(_rms(distances.min(dim=1).values, self.train_rows.shape[1]).median()), FLOOR)

    def twin_spacing(self, count: int) -> float:
        """Median twin distance within ``count`` training images (evenly spaced): what the grid's is
        compared with (fewer images lie further apart, so the reference takes as many as the grid)."""
        if count not in self._twin_spacing:
            picked = np.asarray(self.real_images[_evenly(len(self.real_images), count)])
            self._twin_spacing[count] = max(float(twin_distances(picked).median()), FLOOR)
        return self._twin_spacing[count]

    def nearest(self, images: np.ndarray) -> float | None:
        """Median distance of the images to their nearest training image over the training images'
        spacing; None for a dataset too large to compare with."""
        if self.train_rows is None or self.spacing is None:
            return None
        fake = rows(images)
        best = nearest_distances(fake, self.train_rows)
        return max(float(_rms(best, fake.shape[1]).median()) / self.spacing, FLOOR)

    def spread(self, images: np.ndarray) -> tuple[float, float | None]:
        """Diversity and median twin distance of a set of images, each relative to as many training images
        (the twin distance None where the dataset is too small to compare with)."""
        twins = None
        if 1 < len(images) and TWIN_DATASET * len(images) <= len(self.real_images):
            twins = max(float(twin_distances(images).median()) / self.twin_spacing(len(images)), FLOOR)
        return max(diversity(images) / self.real_diversity, FLOOR), twins

    def __call__(self, images: np.ndarray, batch: np.ndarray | None = None) -> dict[str, float]:
        """The probe's values (``records.PROBE_KEYS``) for uint8 N×H×W×3 grid images and, when given, a batch
        of samples from fresh latents."""
        values = {records.PATCHED: float(patched(images).mean()) - self.real_patched}
        sets = ((images, records.DIVERSITY, records.DISTINCT),
                *(((batch, records.BATCH_DIVERSITY, records.BATCH_DISTINCT),) if batch is not None else ()))
        for found, spread_key, twins_key in sets:
            values[spread_key], twins = self.spread(found)
            if twins is not None:
                values[twins_key] = twins
        nearest = self.nearest(images)
        if nearest is not None:
            values[records.NEAREST] = nearest
        return values
