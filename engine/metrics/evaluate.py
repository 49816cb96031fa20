"""evaluate(): sample once, extract features once, feed every requested metric."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from engine.metrics.cache import real_features
from engine.metrics.errors import MetricUnavailable
from engine.metrics.features import INCEPTION, FeatureNet, FeatureSet, load_feature_net
from engine.metrics.keys import metric_key
from engine.metrics.registry import EvalData, Metric, get_metric

MIN_SAMPLES = 10
REAL_SUBSET_SEED = 0

SampleFn = Callable[[int, int], np.ndarray]


class Results(dict[str, float]):
    """Values by result key ('fid_2k', ...); `errors` maps each metric that could not run to the reason."""

    def __init__(self, values: Mapping[str, float] | None = None, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(values or {})
        self.errors: dict[str, str] = dict(errors or {})


def select_real(images: np.ndarray, count: int) -> np.ndarray:
    """The real images the statistics use: all of them, or `count` chosen by a fixed-seed permutation."""
    if len(images) <= count:
        return images
    chosen = np.sort(np.random.default_rng(REAL_SUBSET_SEED).permutation(len(images))[:count])
    return images[chosen]


def evaluate(
    names: Sequence[str],
    sample_fn: SampleFn,
    real_images: np.ndarray,
    num_samples: int,
    *,
    dataset_key: str,
    device: torch.device,
    inception_weights: str = "",
    feature_net: str = INCEPTION,
    batch_size: int = 64,
    log: Callable[[str], None] | None = None,
) -> Results:
    """Compute the named metrics ('fid', 'kid', 'is', 'pr', 'swd', 'nn') on `num_samples` generated images.

    `sample_fn(n, first)` returns generated images first..first+n-1 as uint8 n×H×W×3; it is called in
    batches with first = 0, batch_size, 2·batch_size, … and must be deterministic. `real_images` is
    the training set (uint8 N×H×W×3); `dataset_key` identifies it (with resolution and count) in the
    cache of real statistics. Metrics that cannot run here (no Inception weights offline) are left
    out and explained in `Results.errors`; MetricUnavailable is raised only when none of them can run.
    """
    log = log or (lambda message: None)
    metrics = [get_metric(name) for name in dict.fromkeys(names)]
    if not metrics:
        raise ValueError("no metrics requested")
    _check_real(real_images, num_samples)
    device = torch.device(device)

    net, errors = _load_net(metrics, feature_net, inception_weights, device)
    runnable = [cls for cls in metrics if cls.name not in errors]
    if not runnable:
        raise MetricUnavailable(" ".join(dict.fromkeys(errors.values())))

    real_subset = select_real(real_images, num_samples)
    real = real_features(net, real_subset, dataset_key=dataset_key, batch_size=batch_size, log=log) if net else None
    data = EvalData(real_images, real_subset, real, None, num_samples, device)
    instances: list[Metric] = [cls(data) for cls in runnable]

    log(f"sampling {num_samples} images for {', '.join(cls.name for cls in runnable)}")
    fake_parts: list[FeatureSet] = []
    for first in range(0, num_samples, batch_size):
        count = min(batch_size, num_samples - first)
        images = _check_fake(sample_fn(count, first), count, real_images.shape[1:])
        if net:
            fake_parts.append(net.extract(images, batch_size))
        for metric in instances:
            metric.update(images)
    if net:
        logits = None if net.no_classifier else torch.cat([p.class_logits() for p in fake_parts])
        data.fake = FeatureSet(torch.cat([p.pool for p in fake_parts]), logits)

    results = Results(errors=errors)
    for metric in instances:
        for output, value in metric.compute().items():
            results[metric_key(output, num_samples)] = float(value)
    return results


def _load_net(
    metrics: list[type[Metric]], name: str, weights: str, device: torch.device
) -> tuple[FeatureNet | None, dict[str, str]]:
    """The feature network if any metric uses it, and {metric: reason} for those that need it (or its
    classifier) but lack it."""
    if all(cls.feature_net == "none" for cls in metrics):
        return None, {}
    try:
        net = load_feature_net(name, weights, device)
    except MetricUnavailable as exc:
        return None, {cls.name: str(exc) for cls in metrics if cls.feature_net == "required"}
    errors = {cls.name: net.no_classifier for cls in metrics if cls.needs_classifier and net.no_classifier}
    used = any(cls.feature_net != "none" and cls.name not in errors for cls in metrics)
    return (net if used else None), errors


def _check_real(images: np.ndarray, num_samples: int) -> None:
    if num_samples < MIN_SAMPLES:
        raise ValueError(f"num_samples must be at least {MIN_SAMPLES}, got {num_samples}")
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"real images must be uint8 N×H×W×3, got {images.dtype} {images.shape}")
    if len(images) < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} real images, got {len(images)}")


def _check_fake(images: np.ndarray, count: int, shape: tuple[int, ...]) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape != (count, *shape):
        raise ValueError(
            f"sample_fn returned {images.dtype} {images.shape}, expected uint8 {(count, *shape)} "
            "(the generator's resolution must match the real images)"
        )
    return images
