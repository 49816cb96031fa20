"""Real-image features, computed once per (feature net, dataset, resolution, sample count) and cached."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from engine.base.environment import cache_dir
from engine.metrics.features import FeatureNet, FeatureSet

PROTOCOL = "v1"  # bump when the choice of real images or the stored statistics change


def stats_dir() -> Path:
    """<cache>/metrics/real: one safetensors file per cached statistics set."""
    return cache_dir() / "metrics" / "real"


def stats_path(cache_id: str, dataset_key: str, resolution: int, count: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", dataset_key)[:40].strip("-") or "dataset"
    digest = hashlib.sha256(dataset_key.encode()).hexdigest()[:12]
    return stats_dir() / f"{cache_id}--{slug}-{digest}--{resolution}px--n{count}--{PROTOCOL}.safetensors"


def real_features(
    net: FeatureNet,
    images: np.ndarray,
    *,
    dataset_key: str,
    batch_size: int = 64,
    log: Callable[[str], None] = lambda message: None,
) -> FeatureSet:
    """Features (and FID statistics) of `images`, read from the cache or computed and stored there."""
    path = stats_path(net.cache_id, dataset_key, images.shape[1], len(images))
    cached = _load(path, len(images))
    if cached is not None:
        log(f"real statistics from cache: {path.name}")
        return cached
    log(f"computing real statistics for {len(images)} images (cached afterwards)")
    features = net.extract(images, batch_size)
    stats = features.fid_stats()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    save_file(
        {"features": features.pool.numpy(), "mu": stats["mu"], "sigma": stats["sigma"]},
        str(partial),
        metadata={"dataset_key": dataset_key, "cache_id": net.cache_id, "protocol": PROTOCOL},
    )
    os.replace(partial, path)
    return FeatureSet(features.pool, None, stats)


def _load(path: Path, count: int) -> FeatureSet | None:
    if not path.is_file():
        return None
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError):
        return None  # damaged or half-written: recompute
    if not {"features", "mu", "sigma"} <= arrays.keys() or len(arrays["features"]) != count:
        return None
    stats = {"mu": arrays["mu"], "sigma": arrays["sigma"]}
    return FeatureSet(torch.from_numpy(arrays["features"]), None, stats)
