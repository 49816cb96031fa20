"""Datasets: sources selected by a spec string, decoded once into a uint8 cache.

Dataset files are untrusted input, read within the limits listed in ``engine.data.sources`` (each
raised by an environment variable); what a limit or an unreadable file drops is logged as a warning
and kept in ``ImageDataset.skipped``. A user's mistake is always a ``DatasetError``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from engine.data import hub_source  # noqa: F401  (registers the hf: scheme)
from engine.data.cache import load_cached, store
from engine.data.errors import DatasetError
from engine.data.sources import register_scheme, resolve_source

__all__ = ["DatasetError", "ImageDataset", "load_dataset", "register_scheme"]

MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024
log = logging.getLogger(__name__)


@dataclass
class ImageDataset:
    """Decoded images ready for training."""

    source: str
    fingerprint: str
    images: np.ndarray  # uint8 N×H×W×3
    labels: np.ndarray  # int64 N
    class_names: list[str]
    skipped: list[str]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[1])


def load_dataset(spec: str, resolution: int, mmap: bool = False) -> ImageDataset:
    """Load a dataset at a resolution, decoding it only the first time (then from the cache, memory-mapped
    read-only with ``mmap``)."""
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise DatasetError(f"resolution {resolution} is out of range {MIN_RESOLUTION}–{MAX_RESOLUTION}")
    source = resolve_source(spec)
    decoded = load_cached(source.fingerprint, resolution, mmap)
    if decoded is None:
        decoded = source.decode(resolution)
        store(source.fingerprint, resolution, decoded)
        if mmap:  # map the stored copy like the other processes do, instead of keeping the decode
            decoded = load_cached(source.fingerprint, resolution, mmap) or decoded
    if decoded.skipped:
        shown = ", ".join(decoded.skipped[:5]) + (" …" if len(decoded.skipped) > 5 else "")
        log.warning("skipped %d file(s) in %s: %s", len(decoded.skipped), spec, shown)
    return ImageDataset(spec, source.fingerprint, decoded.images, decoded.labels.astype(np.int64),
                        decoded.class_names, decoded.skipped)
