"""The live quality signal: SWD of a few EMA-generator images against a fixed subset of the training
images, scheduled by its own measured cost so that it takes at most a set fraction of training time.

It is the SWD of ``engine.metrics.swd`` (same pyramid, patches and directions) with 32 patches per
generated image instead of 128: on CPU DCGAN checkpoints its spread over latent draws at 256 images
was about the same (±0.7-1.8 against ±0.3-1.7), since patches of one image are alike, at a quarter
of the cost. The real side is prepared once per run: patches of ``REAL_PER_FAKE`` × as many real
images as generated ones (all of them when the dataset is smaller), chosen by a fixed-seed
permutation, projected and sorted. An evaluation then only generates, cuts, projects and sorts the
generated side.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from engine.metrics.evaluate import select_real
from engine.metrics.keys import metric_key
from engine.metrics.swd import (PATCH_CAP, PatchSampler, directions, sample_patches, sorted_projections,
                                wasserstein_sorted)

REAL_PER_FAKE = 4
PATCHES_PER_IMAGE = 32
MIN_INTERVAL = 10.0  # seconds of training between two live evaluations, at least
BATCH = 64  # generated images per call of the sample function

SampleFn = Callable[[int, int], np.ndarray]


class LiveSWD:
    """SWD ×10³ of ``samples`` generated images against a fixed subset of ``real_images`` (uint8 N×H×W×3)."""

    def __init__(self, real_images: np.ndarray, samples: int, device: torch.device) -> None:
        if samples < 1:
            raise ValueError(f"live samples must be at least 1, got {samples}")
        real = np.asarray(select_real(real_images, REAL_PER_FAKE * samples))
        self.samples = samples
        self.resolution = real.shape[1]
        self.device = device
        self.count = min(PATCH_CAP, PATCHES_PER_IMAGE * min(len(real), samples))
        patches = sample_patches(real, self.count, seed=0, device=device)
        self.directions = [directions(level.shape[1], seed) for seed, level in enumerate(patches)]
        self.real = [sorted_projections(level, blocks) for level, blocks in zip(patches, self.directions)]
        self.key = metric_key("swd", samples)

    def __call__(self, sample_fn: SampleFn) -> float:
        """SWD of images ``sample_fn(n, first)`` for first = 0, BATCH, 2·BATCH, … (deterministic)."""
        fake = PatchSampler(self.resolution, math.ceil(self.count / self.samples), seed=1, device=self.device)
        for first in range(0, self.samples, BATCH):
            fake.add(sample_fn(min(BATCH, self.samples - first), first))
        levels = fake.finish(self.count)
        return float(np.mean([1e3 * wasserstein_sorted(real, sorted_projections(level, blocks))
                              for real, level, blocks in zip(self.real, levels, self.directions)]))


class LiveSchedule:
    """When the next live evaluation is due. The first runs at the first log step; after each, the next
    waits until all evaluations so far plus one more like the last fit in ``budget`` of the training
    time (so the metric never costs more than that, whatever the run's length), and at least
    MIN_INTERVAL seconds of training."""

    def __init__(self, budget: float) -> None:
        if not 0 < budget <= 1:
            raise ValueError(f"the live metric's budget is a fraction of training time in (0, 1], not {budget}")
        self.budget = budget
        self.next_due: float | None = None  # None: at the next log step
        self.cost = 0.0  # seconds the last evaluation took
        self.spent = 0.0  # seconds all evaluations took, with the one-time preparation of the real side

    def due(self, train_seconds: float, log_step: bool) -> bool:
        return log_step if self.next_due is None else train_seconds >= self.next_due

    def done(self, train_seconds: float, cost: float, setup: float = 0.0) -> None:
        """Record an evaluation that began at ``train_seconds`` and took ``cost`` seconds (+ ``setup``)."""
        self.cost = cost
        self.spent += cost + setup
        self.next_due = max((self.spent + cost) / self.budget, train_seconds + MIN_INTERVAL)

    def state_dict(self) -> dict[str, Any]:
        return {"next_due": self.next_due, "cost": self.cost, "spent": self.spent}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next_due, self.cost, self.spent = state["next_due"], state["cost"], state["spent"]
