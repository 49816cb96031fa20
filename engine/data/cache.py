"""The on-disk uint8 cache of decoded datasets, keyed by source fingerprint and resolution.

An entry that is unreadable or does not hold what a decode holds (uint8 images at the resolution, one
label in range per image) counts as absent: the dataset is decoded again and the entry rewritten."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from engine.base.environment import cache_dir
from engine.data.sources import Decoded

PREPROCESS_VERSION = "prep-v1"


def _entry(fingerprint: str, resolution: int) -> Path:
    return cache_dir() / "datasets" / f"{fingerprint}-{PREPROCESS_VERSION}-{resolution}px"


def load_cached(fingerprint: str, resolution: int, mmap: bool = False) -> Decoded | None:
    """The cached decode, or None when absent or unreadable (it is then rebuilt). ``mmap`` maps the
    images read-only instead of reading them (processes on one machine then share the pages)."""
    entry = _entry(fingerprint, resolution)
    try:
        meta = json.loads((entry / "meta.json").read_text())
        class_names, skipped = list(meta["class_names"]), list(meta["skipped"])
        images = np.load(entry / "images.npy", allow_pickle=False, mmap_mode="r" if mmap else None)
        labels = np.load(entry / "labels.npy", allow_pickle=False)
    except (OSError, ValueError, EOFError, KeyError, TypeError):
        return None
    if not _consistent(images, labels, len(class_names), resolution):
        return None
    return Decoded(images, labels, class_names, skipped)


def _consistent(images: np.ndarray, labels: np.ndarray, classes: int, resolution: int) -> bool:
    """Whether a cache entry holds a decode: uint8 images at the resolution and one label in range per image."""
    if images.dtype != np.uint8 or images.shape[1:] != (resolution, resolution, 3):
        return False
    if labels.dtype.kind not in "iu" or labels.shape != images.shape[:1]:
        return False
    return not len(labels) or 0 <= labels.min() <= labels.max() < max(classes, 1)


def store(fingerprint: str, resolution: int, decoded: Decoded) -> None:
    """Write the decode into the cache atomically (a directory renamed into place)."""
    entry = _entry(fingerprint, resolution)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        np.save(tmp / "images.npy", decoded.images)
        np.save(tmp / "labels.npy", decoded.labels)
        meta = {"class_names": decoded.class_names, "skipped": decoded.skipped}
        (tmp / "meta.json").write_text(json.dumps(meta))
        for name in ("images.npy", "labels.npy", "meta.json"):
            with open(tmp / name, "rb+") as handle:
                os.fsync(handle.fileno())
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
