"""The metric registry: each metric is a class registered under its short name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, TypeVar

import numpy as np
import torch

from engine.metrics.features import FeatureSet


@dataclass(frozen=True)
class Output:
    """One number a metric reports: its display label and which direction is better."""

    label: str
    lower_is_better: bool | None  # None: informative only, never used to rank checkpoints


@dataclass
class EvalData:
    """What a metric sees: the real images, their features and (once sampled) the fakes' features."""

    train_images: np.ndarray  # the whole training set, uint8 N×H×W×3
    real_images: np.ndarray  # the fixed subset the statistics are computed on
    real: FeatureSet | None  # features of real_images; None when no feature network is loaded
    fake: FeatureSet | None  # features of the generated samples, set before compute()
    num_fake: int
    device: torch.device

    def features(self) -> tuple[FeatureSet, FeatureSet]:
        """(fake, real) features, for a metric that uses the feature network (loaded for it)."""
        if self.fake is None or self.real is None:
            raise RuntimeError("no feature network is loaded")
        return self.fake, self.real


class Metric:
    """One evaluation of one metric: sees the generated batches as they are made, then computes."""

    name: ClassVar[str]
    description: ClassVar[str]
    outputs: ClassVar[dict[str, Output]]
    # "required": cannot run without the feature network; "optional": uses it when loaded.
    feature_net: ClassVar[Literal["none", "optional", "required"]] = "none"
    needs_classifier: ClassVar[bool] = False  # uses the feature network's class logits (IS)

    def __init__(self, data: EvalData) -> None:
        self.data = data

    def update(self, images: np.ndarray) -> None:
        """See one batch of generated images (uint8 N×H×W×3); metrics that only use features ignore it."""

    def compute(self) -> dict[str, float]:
        """Return {output name: value} for the names in `outputs`."""
        raise NotImplementedError


_METRICS: dict[str, type[Metric]] = {}
M = TypeVar("M", bound=type[Metric])


def register_metric(cls: M) -> M:
    """Class decorator: make a metric available under `cls.name`."""
    if cls.name in _METRICS:
        raise ValueError(f"metric {cls.name!r} is already registered")
    _METRICS[cls.name] = cls
    return cls


def get_metric(name: str) -> type[Metric]:
    """The metric class registered as `name`; ValueError naming the known ones otherwise."""
    try:
        return _METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r} (known: {', '.join(sorted(_METRICS))})") from None


def list_metrics() -> list[type[Metric]]:
    """All registered metric classes, by name."""
    return [_METRICS[name] for name in sorted(_METRICS)]


def find_output(output: str) -> Output:
    """The Output description for an output name such as 'fid' or 'precision'."""
    for cls in _METRICS.values():
        if output in cls.outputs:
            return cls.outputs[output]
    raise ValueError(f"unknown metric output {output!r}")
