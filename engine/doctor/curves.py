"""Detectors over the evaluation lines (the live metric, periodic evaluations): a quality curve that has
stopped improving, or that is getting worse. Both allow for the metric's noise (the live SWD of 256 images
moves by several percent between evaluations): they judge running medians, against margins at least as wide
as the typical change from one evaluation to the next."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from engine import metrics
from engine.base import findings
from engine.base.findings import Finding
from engine.doctor import suggest
from engine.doctor.history import Context, History

MIN_EVALS = 8  # evaluations before the curve is judged
CURVE_EVALS = 200  # the curve judged: the last this many evaluations (a check costs the same however long the run)
SMOOTHING = 5  # running median over this many evaluations
RISE = 0.2  # rising: the last RISE_EVALS smoothed values all this much (or NOISE_MARGIN × the noise) worse than the best
RISE_EVALS = 3
NOISE_MARGIN = 5.0
NEAR_BEST = 0.02  # plateau: the best is the first value within this share of the lowest (or within the noise) …
PLATEAU_EVALS = 8  # … and at least this many evaluations …
PLATEAU_SHARE = 0.5  # … and this share of the curve's images lie after it
HOLD_EVALS = PLATEAU_EVALS  # silent evaluations that close a finding of these detectors


@dataclass(frozen=True)
class Curve:
    """A metric's last evaluations: ``points`` (step, images, value), ``smoothed`` running medians oriented so
    that lower is better, and ``noise``, the median change of the raw values between evaluations."""

    key: str
    points: list[tuple[int, int, float]]
    smoothed: list[float]
    noise: float

    @property
    def label(self) -> str:
        try:
            return metrics.display_label(self.key)
        except (ValueError, KeyError):
            return self.key


def _ranked_key(history: History) -> str | None:
    """The metric key with the most of the last CURVE_EVALS evaluations among those that rank (lower or higher
    is better)."""
    counts: Counter[str] = Counter()
    for record in history.evals[-CURVE_EVALS:]:
        for key in record.values:
            try:
                metrics.lower_is_better(key)
            except ValueError:
                continue
            counts[key] += 1
    return counts.most_common(1)[0][0] if counts else None


def curve(history: History) -> Curve | None:
    """The curve of the metric evaluated most, once it has MIN_EVALS evaluations."""
    key = _ranked_key(history)
    if key is None:
        return None
    points = [(r.step, r.images, r.values[key]) for r in history.evals[-CURVE_EVALS:] if key in r.values]
    if len(points) < MIN_EVALS:
        return None
    sign = 1.0 if metrics.lower_is_better(key) else -1.0
    raw = [sign * value for _, _, value in points]
    smoothed = [statistics.median(raw[max(0, i - SMOOTHING + 1):i + 1]) for i in range(len(raw))]
    noise = statistics.median(abs(b - a) for a, b in zip(raw, raw[1:]))
    return Curve(key, points, smoothed, noise)


def metric_rising(history: History, ctx: Context) -> Finding | None:
    """The quality metric got clearly worse than its best for several evaluations in a row."""
    found = curve(history)
    if found is None:
        return None
    smoothed, points = found.smoothed, found.points
    best = min(range(len(smoothed)), key=smoothed.__getitem__)
    limit = smoothed[best] + max(RISE * abs(smoothed[best]), NOISE_MARGIN * found.noise)
    if best >= len(smoothed) - RISE_EVALS or min(smoothed[-RISE_EVALS:]) < limit:
        return None
    label, config = found.label, ctx.config
    return Finding(findings.METRIC_RISING, findings.WARNING, f"{label} is getting worse",
                   f"{label} has been clearly worse than its best (at step {points[best][0]:,}) for the last "
                   f"{RISE_EVALS} evaluations: the samples are moving away from the training images. The best "
                   "checkpoint is kept (checkpoints/best.json); more of the same training is unlikely to help.",
                   points[-RISE_EVALS][0], points[-1][0],
                   {"metric": found.key, "best": points[best][2], "best at step": float(points[best][0]),
                    "latest": points[-1][2]},
                   (suggest.slower_g(config), suggest.slower_d(config, 0.5),
                    *suggest.diffaugment(config, "a D that overfits the training images drives G away from them; "
                                                 "augmentation slows that down")))


def metric_plateau(history: History, ctx: Context) -> Finding | None:
    """The quality metric has not improved, beyond its noise, for many evaluations and most of its curve."""
    found = curve(history)
    if found is None or metric_rising(history, ctx) is not None:
        return None
    smoothed, points = found.smoothed, found.points
    lowest = min(smoothed)
    tolerance = max(NEAR_BEST * abs(lowest), found.noise)
    best = next(i for i, v in enumerate(smoothed) if v <= lowest + tolerance)
    since = len(points) - 1 - best
    after, span = points[-1][1] - points[best][1], points[-1][1] - points[0][1]
    if since < PLATEAU_EVALS or after < PLATEAU_SHARE * span:
        return None
    label, config = found.label, ctx.config
    return Finding(findings.METRIC_PLATEAU, findings.INFO, f"{label} has stopped improving",
                   f"{label} has not improved beyond its noise on its value at step {points[best][0]:,} in {since} "
                   f"evaluations, over {after:,} images: training on unchanged is unlikely to make better images. "
                   "Smaller learning rates can find detail a plateau hides; or stop here (the best checkpoint is "
                   "kept).",
                   points[-PLATEAU_EVALS][0], points[-1][0],
                   {"metric": found.key, "best": points[best][2], "best at step": float(points[best][0]),
                    "latest": points[-1][2], "evaluations since the best": float(since)},
                   (suggest.slower_g(config), suggest.slower_d(config, 0.5)))
