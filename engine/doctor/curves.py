"""Detectors over the evaluation lines (the live metric, periodic evaluations): a quality curve that has
stopped improving, or that is getting worse."""

from __future__ import annotations

import statistics
from collections import Counter

from engine import metrics
from engine.base import findings
from engine.base.findings import Finding
from engine.doctor import suggest
from engine.doctor.history import Context, History

MIN_EVALS = 6  # evaluations before the curve is judged
SMOOTHING = 3  # running median over this many evaluations (the live metric is noisy)
RISE = 0.2  # rising: the last RISE_EVALS smoothed values all this much worse than the best
RISE_EVALS = 3
NEAR_BEST = 0.02  # plateau: the best is the first value within this share of the lowest …
PLATEAU_EVALS = 8  # … and at least this many evaluations …
PLATEAU_SHARE = 0.5  # … and this share of the images seen lie after it


def _ranked_key(history: History) -> str | None:
    """The metric key with the most evaluations among those that rank (lower or higher is better)."""
    counts: Counter[str] = Counter()
    for record in history.evals:
        for key in record.values:
            try:
                metrics.lower_is_better(key)
            except ValueError:
                continue
            counts[key] += 1
    return counts.most_common(1)[0][0] if counts else None


def _curve(history: History) -> tuple[str, list[tuple[int, int, float]], list[float]] | None:
    """(key, [(step, images, value)], smoothed values oriented so that lower is better)."""
    key = _ranked_key(history)
    if key is None:
        return None
    points = [(r.step, r.images, r.values[key]) for r in history.evals if key in r.values]
    if len(points) < MIN_EVALS:
        return None
    sign = 1.0 if metrics.lower_is_better(key) else -1.0
    raw = [sign * value for _, _, value in points]
    smoothed = [statistics.median(raw[max(0, i - SMOOTHING + 1):i + 1]) for i in range(len(raw))]
    return key, points, smoothed


def _label(key: str) -> str:
    try:
        return metrics.display_label(key)
    except (ValueError, KeyError):
        return key


def metric_rising(history: History, ctx: Context) -> Finding | None:
    """The quality metric got clearly worse than its best for several evaluations in a row."""
    curve = _curve(history)
    if curve is None:
        return None
    key, points, smoothed = curve
    best = min(range(len(smoothed)), key=smoothed.__getitem__)
    limit = smoothed[best] + RISE * abs(smoothed[best])
    if best >= len(smoothed) - RISE_EVALS or min(smoothed[-RISE_EVALS:]) < limit:
        return None
    label, config = _label(key), ctx.config
    return Finding(findings.METRIC_RISING, findings.WARNING, f"{label} is getting worse",
                   f"{label} has been more than {RISE:.0%} worse than its best (at step {points[best][0]:,}) for the "
                   f"last {RISE_EVALS} evaluations: the samples are moving away from the training images. The best "
                   "checkpoint is kept (checkpoints/best.json); more of the same training is unlikely to help.",
                   points[-RISE_EVALS][0], points[-1][0],
                   {"metric": key, "best": points[best][2], "best at step": float(points[best][0]),
                    "latest": points[-1][2]},
                   (suggest.slower_g(config), suggest.slower_d(config, 0.5),
                    *suggest.diffaugment(config, "a D that overfits the training images drives G away from them; "
                                                 "augmentation slows that down")))


def metric_plateau(history: History, ctx: Context) -> Finding | None:
    """The quality metric has not improved for many evaluations and most of the training so far."""
    curve = _curve(history)
    if curve is None or metric_rising(history, ctx) is not None:
        return None
    key, points, smoothed = curve
    lowest = min(smoothed)
    best = next(i for i, v in enumerate(smoothed) if v <= lowest + NEAR_BEST * abs(lowest))
    since = len(points) - 1 - best
    images = points[-1][1]
    if since < PLATEAU_EVALS or images - points[best][1] < PLATEAU_SHARE * images:
        return None
    label, config = _label(key), ctx.config
    return Finding(findings.METRIC_PLATEAU, findings.INFO, f"{label} has stopped improving",
                   f"{label} has not improved on its value at step {points[best][0]:,} in {since} evaluations, over "
                   f"{(images - points[best][1]) / max(images, 1):.0%} of the images seen: training on unchanged is "
                   "unlikely to make better images. Smaller learning rates can find detail a plateau hides; or stop "
                   "here (the best checkpoint is kept).",
                   points[-PLATEAU_EVALS][0], points[-1][0],
                   {"metric": key, "best": points[best][2], "best at step": float(points[best][0]),
                    "latest": points[-1][2], "evaluations since the best": float(since)},
                   (suggest.slower_g(config), suggest.slower_d(config, 0.5)))
