"""Cached engine objects shared by every browser session: generators, datasets and what derives from them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

import engine
from engine.metrics.nearest import NeighbourIndex


def version(path: str | Path) -> str:
    """What identifies the weights ``load_generator(path)`` would load now (changes as a run trains)."""
    run = engine.Run(path)
    if run.exists():
        latest = run.latest_checkpoint()
        return latest.name if latest else ""
    weights = Path(path) / "model.safetensors"
    return str(weights.stat().st_mtime_ns) if weights.is_file() else ""


@st.cache_resource(max_entries=4, show_spinner="Loading the generator…")
def generator(path: str, version: str) -> engine.Generator:
    """The generator at ``path``; ``version`` (see :func:`version`) keys the cache."""
    return engine.load_generator(path)


@st.cache_data(max_entries=64, show_spinner=False)
def samples(path: str, version: str, seeds: tuple[int, ...], truncation: float, label: int = 0) -> np.ndarray:
    """uint8 images, one per seed (``label`` is the class of class-conditional generators)."""
    return generator(path, version).sample(seeds=list(seeds), truncation=truncation, labels=[label] * len(seeds))


@st.cache_resource(max_entries=2, ttl=600, show_spinner=False)
def dataset(spec: str, resolution: int) -> engine.ImageDataset:
    return engine.load_dataset(spec, resolution)


@dataclass(frozen=True)
class Preview:
    """What the Train page shows about a dataset."""

    images: np.ndarray
    count: int
    skipped: tuple[str, ...]
    class_counts: dict[str, int]


@st.cache_data(max_entries=8, ttl=600,
               show_spinner="Reading the images (the first time takes up to a minute, then it is cached)…")
def preview(spec: str, resolution: int, count: int = 32) -> Preview:
    data = dataset(spec, resolution)
    picks = np.random.default_rng(0).choice(len(data), size=min(count, len(data)), replace=False)
    counts: Iterable[int] = np.bincount(data.labels, minlength=len(data.class_names)) if data.class_names else []
    return Preview(data.images[np.sort(picks)], len(data), tuple(data.skipped),
                   {name: int(n) for name, n in zip(data.class_names, counts)})


@st.cache_resource(max_entries=2, ttl=600, show_spinner="Indexing the training images…")
def neighbour_index(spec: str, resolution: int) -> NeighbourIndex:
    return NeighbourIndex(dataset(spec, resolution).images)


@st.cache_data(max_entries=8, show_spinner="Reconstructing…")
def reconstructions(path: str, version: str, spec: str, resolution: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(real images, their reconstructions) for an autoencoder's training images."""
    real = preview(spec, resolution, count).images
    return real, generator(path, version).reconstruct(real)
