"""Fréchet Inception Distance (Heusel et al. 2017), computed by torch-fidelity from pool3 statistics."""

from __future__ import annotations

import numpy as np

from engine.metrics.registry import Metric, Output, register_metric


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½), by torch-fidelity's implementation."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    first = {"mu": np.asarray(mu1, np.float64), "sigma": np.asarray(sigma1, np.float64)}
    second = {"mu": np.asarray(mu2, np.float64), "sigma": np.asarray(sigma2, np.float64)}
    return fid_statistics_to_metric(first, second, verbose=False)[KEY_METRIC_FID]


@register_metric
class FID(Metric):
    name = "fid"
    description = "Fréchet Inception Distance (pool3 features, lower is better)"
    outputs = {"fid": Output("FID", lower_is_better=True)}
    feature_net = "required"

    def compute(self) -> dict[str, float]:
        fake_features, real_features = self.data.features()
        fake, real = fake_features.fid_stats(), real_features.fid_stats()
        return {"fid": frechet_distance(fake["mu"], fake["sigma"], real["mu"], real["sigma"])}
