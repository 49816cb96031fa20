"""Concrete changes the doctor suggests, each tied to one config key and worked out from the run's config.

A suggestion is safe to apply to the run and resume when its key is not one a checkpoint fixes
(``engine.config.CHECKPOINT_FIXED``); the others need a new run.
"""

from __future__ import annotations

from typing import Any

from engine.base.findings import Suggestion
from engine.config import CHECKPOINT_FIXED, Config, policy_names

FULL_DIFFAUGMENT = "color,translation,cutout"
LEAKING = ("translation", "cutout")  # the transforms whose fill the probe sees


def suggestion(key: str, value: Any, why: str) -> Suggestion:
    """A suggestion, safe unless ``key`` is one a checkpoint fixes."""
    fixed = any(key == k or key.startswith(k + ".") for k in CHECKPOINT_FIXED)
    return Suggestion(key, value, why, safe=not fixed)


def _lr(value: float, factor: float) -> float:
    return float(f"{value * factor:.3g}")


def slower_d(config: Config, factor: float = 0.25) -> Suggestion:
    lr = _lr(config.optim.lr_d, factor)
    return suggestion("optim.lr_d", lr, f"D learns {1 / factor:g}× slower (lr_d {config.optim.lr_d:g} → {lr:g}), so "
                                        "G can keep up (two time-scale updates with the slower D)")


def slower_g(config: Config, factor: float = 0.5) -> Suggestion:
    lr = _lr(config.optim.lr_g, factor)
    return suggestion("optim.lr_g", lr, f"smaller G steps (lr_g {config.optim.lr_g:g} → {lr:g}) let D and G settle "
                                        "instead of chasing each other")


def label_smoothing(config: Config) -> list[Suggestion]:
    if config.loss.kind != "bce" or config.loss.label_smoothing >= 0.1:
        return []
    return [suggestion("loss.label_smoothing", 0.1, "one-sided label smoothing: D aims at 0.9 for real images, so it "
                                                    "cannot become certain and its gradients to G stay useful")]


def diffaugment(config: Config, why: str) -> list[Suggestion]:
    """Turn DiffAugment fully on, or make it transform every image, when it is not already."""
    if not config.data.diffaugment.strip():
        return [suggestion("data.diffaugment", FULL_DIFFAUGMENT, why)]
    if config.data.augment_p < 1 and config.schedule.augment_p.shape == "constant":
        return [suggestion("data.augment_p", 1.0, why + " (DiffAugment on every image)")]
    return []


def fewer_critic_steps(config: Config) -> list[Suggestion]:
    if config.optim.n_critic <= 1:
        return []
    return [suggestion("optim.n_critic", 1, f"one D step per G step instead of {config.optim.n_critic}")]


def more_critic_steps(config: Config) -> Suggestion:
    steps = config.optim.n_critic + 1
    return suggestion("optim.n_critic", steps, f"{steps} D steps per G step: a D that keeps up punishes G for "
                                               "producing the same few images")


def wider_latent(config: Config) -> list[Suggestion]:
    width = config.model.options.get("latent_dim")
    if not isinstance(width, int) or width >= 64:
        return []
    return [suggestion("model.options.latent_dim", max(64, width * 4), f"a {width}-wide latent has room for few "
                                                                        "distinct images")]


def rollback(config: Config) -> list[Suggestion]:
    if config.train.on_divergence == "rollback":
        return []
    return [suggestion("train.on_divergence", "rollback", "if it does go non-finite, go back to the last finite "
                                                          "checkpoint with halved learning rates instead of failing")]


def more_images(config: Config) -> Suggestion:
    return suggestion("data.spec", None, f"more training images than {config.data.spec!r} holds (a new run): "
                                         "a GAN copies a small dataset once it has seen it often enough")


def gentler_augmentation(config: Config) -> list[Suggestion]:
    """Augment fewer images, or drop the transforms whose fill shows in the samples."""
    found: list[Suggestion] = []
    if config.data.augment_p > 0.5:
        found.append(suggestion("data.augment_p", 0.5, "transform only half of D's images: with most of them "
                                                       "augmented, G can fool D by painting the augmentation"))
    policy = list(policy_names(config.data.diffaugment))
    kept = [p for p in policy if p not in LEAKING] or ["color"]
    if kept != policy:
        found.append(suggestion("data.diffaugment", ",".join(kept), "drop translation and cutout, whose grey fill "
                                                                    "shows in the samples"))
    return found
