"""Scheduled hyper-parameters: each a pure function of the images seen, set on the run's parts each step.

A ramp of the config's ``schedule`` section runs from the value its key holds (``SCHEDULED``: optim.lr_g,
optim.beta2, loss.gamma, …) to its ``final`` over the schedule's horizon, linearly or along a half
cosine, then stays there. Values are computed on the host from the images counter (no device sync), so
a resumed run sets exactly the values an uninterrupted one had at that count.
"""

from __future__ import annotations

import math

import torch

from engine.base import records
from engine.config import LR_SCALINGS, SCHEDULED, Config, ConfigError, OptimConfig, Ramp
from engine.data.augment import Augmenter
from engine.models import Loss
from engine.train.ema import EMA
from engine.train.guard import ROLLBACK_LR_FACTOR, halve_learning_rates

# Ramps whose value the loss holds, as a plain float attribute of that name; a loss without the
# attribute has no such weight, and a ramp of it is refused.
LOSS_WEIGHTS = ("gamma", "gp_weight")


def lr_scale(optim: OptimConfig, batch_size: int) -> float:
    """The factor on lr_g and lr_d for a batch other than the one they were tuned for."""
    return (batch_size / optim.reference_batch) ** LR_SCALINGS[optim.lr_scaling]


def ramp_value(ramp: Ramp, start: float, progress: float) -> float:
    """The value of ``ramp`` from ``start`` at ``progress`` (0 at the first image, 1 at the horizon and after)."""
    t = min(max(progress, 0.0), 1.0)
    if ramp.shape == "linear":
        return start + (ramp.final - start) * t
    if ramp.shape == "cosine":
        return ramp.final + (start - ramp.final) * 0.5 * (1.0 + math.cos(math.pi * t))
    return start


def scheduled_values(config: Config, images: int) -> dict[str, float]:
    """Every scheduled key's value after ``images`` images, by ramp name (learning rates before batch
    scaling); a constant ramp gives its key's value."""
    horizon = config.schedule_horizon()
    progress = images / horizon if horizon else 0.0
    values = {}
    for name, key in SCHEDULED.items():
        section, item = key.split(".")
        start = float(getattr(getattr(config, section), item))
        values[name] = ramp_value(getattr(config.schedule, name), start, progress)
    return values


def check_schedule(config: Config, loss: Loss) -> None:
    """ConfigError for a ramp of a loss weight the configured loss does not have (e.g. schedule.gamma
    with loss.kind=bce): it would change nothing."""
    ramps = config.scheduled()
    for name in LOSS_WEIGHTS:
        if name in ramps and not hasattr(loss, name):
            raise ConfigError(f"schedule.{name}.shape must be constant with loss.kind={config.loss.kind}, which has no "
                              f"loss.{name}, got {ramps[name].shape!r}: set schedule.{name}.shape=constant or choose "
                              "a loss that uses it")


def halve_learning_rate_curves(config: Config) -> None:
    """Halve the learning rates and the final values of their ramps (in place), as a rollback does: the
    whole learning-rate curve is halved."""
    halve_learning_rates(config.optim)
    for ramp in (config.schedule.lr_g, config.schedule.lr_d):
        ramp.final *= ROLLBACK_LR_FACTOR


def apply_optimizer_settings(opt: torch.optim.Optimizer, lr: float, betas: tuple[float, float]) -> None:
    """Set every parameter group's learning rate and betas (the schedule's, over a checkpoint's)."""
    for group in opt.param_groups:
        group["lr"], group["betas"] = lr, betas


class Schedule:
    """Sets a run's scheduled values on its optimisers, loss, EMA and augmentation.

    ``apply`` always sets the learning rates and betas (so a resumed run trains with its config's, not
    its checkpoint's); the loss weights, the EMA half-life and DiffAugment's probability only when their
    ramp is active (otherwise they keep what they were built with). The trainer checks the loss first
    (``check_schedule``)."""

    def __init__(self, config: Config, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, loss: Loss,
                 ema: EMA, augmenter: Augmenter) -> None:
        self.config, self.opt_g, self.opt_d, self.loss = config, opt_g, opt_d, loss
        self.ema, self.augmenter = ema, augmenter
        self.current: dict[str, float] = {}

    @property
    def active(self) -> bool:
        """Any value changes with the images seen (the loop then applies the schedule every step)."""
        return bool(self.config.scheduled())

    def apply(self, images: int) -> None:
        """Set the values after ``images`` images on the run's parts."""
        values = scheduled_values(self.config, images)
        factor = lr_scale(self.config.optim, self.config.train.batch_size)
        betas = (self.config.optim.beta1, values["beta2"])
        apply_optimizer_settings(self.opt_g, values["lr_g"] * factor, betas)
        apply_optimizer_settings(self.opt_d, values["lr_d"] * factor, betas)
        ramps = self.config.scheduled()
        for name in LOSS_WEIGHTS:
            if name in ramps:
                setattr(self.loss, name, values[name])
        if "ema_halflife_images" in ramps:
            self.ema.halflife_images = values["ema_halflife_images"]
        if "augment_p" in ramps:
            self.augmenter.p = values["augment_p"]
        self.current = values

    def logged(self) -> dict[str, float]:
        """The values of the active ramps as last applied, for a training record (its keys are the ramps'
        names; the learning rates are logged from the optimisers, scaled as they train)."""
        return {name: self.current[name] for name in self.config.scheduled()
                if name not in (records.LR_G, records.LR_D)}
