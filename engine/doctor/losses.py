"""Detectors over the training lines (the losses and D's outputs, averaged over each log interval and read
at the log step anyway): D overpowering G, oscillating losses, and losses growing without bound."""

from __future__ import annotations

import math
import statistics

from engine.base import findings, records
from engine.base.findings import Finding
from engine.doctor import suggest
from engine.doctor.history import PROBABILITY_LOSSES, ZERO_MINIMUM_LOSSES, Context, History, halves, mean, reversals

D_MARGIN = 0.03  # D wins: D(x) ≥ 1 − margin − label smoothing and D(G(z)) ≤ margin (probability losses)
ZERO_LOSS = 0.05  # D wins: its loss at most this (hinge, least squares: 0 at the minimum)
HOLDING_SHARE = 0.8  # of the window's training lines that must show it (the window mean must too)
G_LOSS_HIGH = 3.0  # a BCE G loss this high means D(G(z)) ≈ 5 %: G gets little gradient
SWING = 0.25  # oscillation: mean change of D(x) − D(G(z)) from one log interval to the next (probability losses)
RELATIVE_SWING = 0.5  # oscillation: mean change of D's loss between log intervals, in units of its typical size
MIN_REVERSALS = 4  # oscillation: changes of direction within the window (a trend with noise has few)
GROWTH = 10.0  # diverging: the window's mean |loss| over its earlier median, plus GROWTH_FLOOR
GROWTH_FLOOR = 1.0
LOOKBACK = 8  # windows before the last one that give a loss's typical size
WARM_UP = 2  # diverging: the run's first windows, left out of a loss's typical size


def d_overpowering(history: History, ctx: Context) -> Finding | None:
    """D tells real from generated images almost perfectly over the whole window, and G's loss is high or
    climbing: G no longer learns from D."""
    w = ctx.window
    if ctx.model_kind != records.ADVERSARIAL or len(history.train) < w:
        return None
    window = history.train[-w:]
    if ctx.loss in PROBABILITY_LOSSES:
        real_floor = 1 - D_MARGIN - ctx.config.loss.label_smoothing
        holds = [r.values.get(records.D_REAL, 0.0) >= real_floor and r.values.get(records.D_FAKE, 1.0) <= D_MARGIN
                 for r in window]
        d_real, d_fake = history.series(records.D_REAL, w), history.series(records.D_FAKE, w)
        saturated = mean(d_real) >= real_floor and mean(d_fake) <= D_MARGIN
    elif ctx.loss in ZERO_MINIMUM_LOSSES:
        holds = [r.values.get(records.LOSS_D, math.inf) <= ZERO_LOSS for r in window]
        saturated = mean(history.series(records.LOSS_D, w)) <= ZERO_LOSS
    else:
        return None
    loss_g = history.series(records.LOSS_G, w)
    first, second = halves(loss_g)
    climbing = second >= first * 0.95 or (ctx.loss in PROBABILITY_LOSSES and mean(loss_g) >= G_LOSS_HIGH)
    if not (saturated and sum(holds) >= HOLDING_SHARE * w and climbing):
        return None
    evidence: dict[str, float | str] = {"D loss (window mean)": mean(history.series(records.LOSS_D, w)),
                                        "G loss, first half of the window": first,
                                        "G loss, second half of the window": second}
    if ctx.loss in PROBABILITY_LOSSES:
        evidence |= {"D(x) (window mean)": mean(d_real), "D(G(z)) (window mean)": mean(d_fake)}
    config = ctx.config
    return Finding(findings.D_OVERPOWERING, findings.WARNING, "The discriminator is overpowering the generator",
                   f"Over the last {w} log intervals D told real from generated images almost perfectly and G's loss "
                   "did not come down: D's verdict is so sure that it no longer tells G which way to improve, so "
                   "the samples stop getting better. Make D weaker or its task harder.",
                   window[0].step, window[-1].step, evidence,
                   (suggest.slower_d(config), *suggest.label_smoothing(config),
                    *suggest.diffaugment(config, "augmenting D's inputs makes its task harder, so it cannot simply "
                                                 "memorise the real images"),
                    *suggest.fewer_critic_steps(config)))


def oscillation(history: History, ctx: Context) -> Finding | None:
    """D and G take turns winning: D's outputs (or loss) swing widely back and forth within the window. The
    swing is the mean change from one log interval to the next, so a steep but steady trend (D learning
    at the start) is none."""
    w = ctx.window
    if ctx.model_kind != records.ADVERSARIAL or len(history.train) < w:
        return None
    window = history.train[-w:]
    if ctx.loss in PROBABILITY_LOSSES:
        series = [r.values.get(records.D_REAL, 0.0) - r.values.get(records.D_FAKE, 0.0) for r in window]
        name, threshold = "D(x) − D(G(z))", SWING
    else:
        series = [r.values.get(records.LOSS_D, 0.0) for r in window]
        typical = statistics.median(abs(v) for v in history.series(records.LOSS_D, (LOOKBACK + 1) * w))
        name, threshold = "D loss", RELATIVE_SWING * max(typical, 1e-3)
    swing, turns = mean([abs(b - a) for a, b in zip(series, series[1:])]), reversals(series)
    if swing < threshold or turns < MIN_REVERSALS:
        return None
    config = ctx.config
    return Finding(findings.OSCILLATION, findings.WARNING, "The losses are oscillating",
                   f"Over the last {w} log intervals {name} moved by {swing:.2f} on average from one interval to "
                   f"the next and changed direction {turns} times: D and G keep overshooting each other instead of "
                   "improving together. Smaller learning rates usually calm it.",
                   window[0].step, window[-1].step,
                   {f"{name}: mean change between log intervals": swing, "changes of direction": float(turns)},
                   (suggest.slower_d(config, 0.5), suggest.slower_g(config)))


def diverging(history: History, ctx: Context) -> Finding | None:
    """A loss without a probability reading (hinge, least squares, Wasserstein, RpGAN) grows far beyond
    its size over the windows before and keeps growing: training is running away before it goes non-finite.
    The first WARM_UP windows of the run are not a loss's typical size (a Wasserstein critic's loss grows
    from 0 while it learns)."""
    w = ctx.window
    if ctx.loss in PROBABILITY_LOSSES or len(history.train) < (WARM_UP + 2) * w:
        return None
    for key in (records.LOSS_D, records.LOSS_G):
        values = [abs(v) for v in history.series(key, (LOOKBACK + 1) * w)]
        values = values[max(0, WARM_UP * w - (len(history.train) - len(values))):]
        if len(values) < 2 * w:
            continue
        earlier, recent = statistics.median(values[:-w]), values[-w:]
        first, second = halves(recent)
        if mean(recent) >= GROWTH * earlier + GROWTH_FLOOR and second > first:
            config = ctx.config
            label = records.stat_label(key)
            return Finding(findings.DIVERGING, findings.CRITICAL, "Training is diverging",
                           f"The size of the {label} over the last {w} log intervals is {mean(recent):.3g}, up "
                           f"from a typical {earlier:.3g} earlier, and still growing: "
                           "the updates are too large for this model and will soon turn into NaN.",
                           history.train[-w].step, history.train[-1].step,
                           {f"|{label}|, window mean": mean(recent), f"|{label}|, earlier median": earlier},
                           (suggest.slower_d(config, 0.5), suggest.slower_g(config), *suggest.rollback(config)))
    return None
