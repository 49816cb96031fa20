"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel."""

from __future__ import annotations

import torch

from engine.metrics.registry import Metric, Output, register_metric

SUBSETS = 100
SUBSET_SIZE = 1000


def kernel_inception_distance(fake: torch.Tensor, real: torch.Tensor, seed: int = 0) -> float:
    """Mean unbiased MMD² over 100 random subsets of min(1000, N) features of each set (torch-fidelity)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

    size = min(SUBSET_SIZE, len(fake), len(real))
    result = kid_features_to_metric(
        fake, real, kid_subsets=SUBSETS, kid_subset_size=size, rng_seed=seed, verbose=False
    )
    return result[KEY_METRIC_KID_MEAN]


@register_metric
class KID(Metric):
    name = "kid"
    description = "Kernel Inception Distance (pool3 features, lower is better)"
    outputs = {"kid": Output("KID", lower_is_better=True)}
    feature_net = "required"

    def compute(self) -> dict[str, float]:
        fake, real = self.data.features()
        return {"kid": kernel_inception_distance(fake.pool, real.pool)}
