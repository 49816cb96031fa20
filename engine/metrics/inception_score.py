"""Inception Score (Salimans et al. 2016): exp E[KL(p(y|x) || p(y))] over 10 splits of the samples."""

from __future__ import annotations

import torch

from engine.metrics.registry import Metric, Output, register_metric

SPLITS = 10


def inception_score(logits: torch.Tensor, splits: int = SPLITS) -> float:
    """Mean IS over `splits` splits of the (shuffled) logits, by torch-fidelity's implementation."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, isc_features_to_metric

    return isc_features_to_metric(logits, splits=min(splits, len(logits)))[KEY_METRIC_ISC_MEAN]


@register_metric
class InceptionScore(Metric):
    name = "is"
    description = "Inception Score (generated images only, higher is better)"
    outputs = {"is": Output("IS", lower_is_better=False)}
    feature_net = "required"
    needs_classifier = True

    def compute(self) -> dict[str, float]:
        fake, _ = self.data.features()
        return {"is": inception_score(fake.class_logits())}
