"""Improved precision and recall (Kynkäänniemi et al. 2019): k=3 nearest-neighbour balls in feature space."""

from __future__ import annotations

import torch

from engine.metrics.registry import Metric, Output, register_metric

NEIGHBOURHOOD = 3
BATCH = 2_000  # rows of the distance matrix held at once


def precision_recall(fake: torch.Tensor, real: torch.Tensor) -> tuple[float, float]:
    """(precision, recall): the share of fakes inside the real manifold estimate, and vice versa."""
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    result = prc_features_to_metric(
        fake, real, prc_neighborhood=NEIGHBOURHOOD, prc_batch_size=BATCH, save_cpu_ram=True, verbose=False
    )
    return result[KEY_METRIC_PRECISION], result[KEY_METRIC_RECALL]


@register_metric
class PrecisionRecall(Metric):
    name = "pr"
    description = "Precision and recall, k=3 (pool3 features, higher is better)"
    outputs = {
        "precision": Output("Precision", lower_is_better=False),
        "recall": Output("Recall", lower_is_better=False),
    }
    feature_net = "required"

    def compute(self) -> dict[str, float]:
        fake, real = self.data.features()
        precision, recall = precision_recall(fake.pool, real.pool)
        return {"precision": precision, "recall": recall}
