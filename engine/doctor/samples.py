"""Detectors over the probe lines (what engine.doctor.probe measured on each progress grid): mode collapse,
memorisation of a small dataset, and DiffAugment leaking into the samples."""

from __future__ import annotations

from engine.base import findings, records
from engine.base.findings import Finding
from engine.doctor import suggest
from engine.doctor.history import Context, History

SPREAD = 0.2  # the grid's diversity (× the training images') above which G is past its first blurry steps
TWINS = 0.1  # collapse: the median distance to the nearest other grid image, × the training images' own
FALL = 0.5  # collapse: diversity or twin distance fell below this share of its peak …
PEAK = 0.2  # … and that peak was at least this
MEMORISED = 0.5  # memorisation: median distance to the nearest training image, × their own spacing
PATCHED = 0.25  # leak: share of grid images with DiffAugment's grey band or square, above the training images'


def _last(history: History, key: str, count: int) -> list[float] | None:
    values = history.probe_series(key, count)
    return values if len(values) == count else None


_SAMPLE_SETS = (("grid", "the progress grid (fixed latents)", records.DIVERSITY, records.DISTINCT),
                ("fresh batch", "a batch of samples from fresh latents", records.BATCH_DIVERSITY,
                 records.BATCH_DISTINCT))


def _collapsed(history: History, n: int, spread_key: str, twins_key: str) -> tuple[str, float, float] | None:
    """Why the last ``n`` probes of one set of samples show a collapse, with its latest diversity and twin
    distance (None when they do not): most images have a near-twin although the set varies, or its variety
    fell far below its peak."""
    spread, twins = _last(history, spread_key, n), _last(history, twins_key, n)
    if spread is None or twins is None:
        return None
    if all(s >= SPREAD and t <= TWINS for s, t in zip(spread, twins)):
        return "most images have a near-identical twin although the set as a whole varies", spread[-1], twins[-1]
    if any(history.peaks[key] >= PEAK and max(last) <= FALL * history.peaks[key]
           for key, last in ((spread_key, spread), (twins_key, twins))):
        return "its variety fell to less than half of what it was", spread[-1], twins[-1]
    return None


def mode_collapse(history: History, ctx: Context) -> Finding | None:
    """The fixed-latent grid, or a batch from latents drawn afresh at each grid, holds few distinct images:
    most have a near-twin although the set is varied (G maps many latents to one of a few images), or its
    variety fell far below its peak."""
    n = ctx.probes
    for name, described, spread_key, twins_key in _SAMPLE_SETS:
        collapsed = _collapsed(history, n, spread_key, twins_key)
        if collapsed is not None:
            break
    else:
        return None
    why, spread, twins = collapsed
    config = ctx.config
    return Finding(findings.MODE_COLLAPSE, findings.WARNING, "Mode collapse: the generator repeats a few images",
                   f"Over the last {n} progress grids, in {described} {why}: G has found a few images that "
                   "fool D and maps many latents to them, instead of covering the variety of the training images.",
                   history.probes[-n].step, history.probes[-1].step,
                   {f"{name} diversity (× training images')": spread,
                    f"highest {name} diversity so far": history.peaks[spread_key],
                    f"distance to the nearest other {name} image (× training images')": twins,
                    "its highest so far": history.peaks[twins_key]},
                   (suggest.more_critic_steps(config),
                    *suggest.diffaugment(config, "augmented inputs keep D from settling on a few tells G can "
                                                 "exploit"),
                    *suggest.wider_latent(config)))


def memorisation(history: History, ctx: Context) -> Finding | None:
    """Grid images lie much closer to a training image than training images lie to each other, while the grid
    is varied (a blurry early grid lies close to every image): G copies the (small) dataset."""
    n = ctx.probes
    nearest, spread = _last(history, records.NEAREST, n), _last(history, records.DIVERSITY, n)
    if nearest is None or spread is None or max(nearest) > MEMORISED or min(spread) < SPREAD:
        return None
    config = ctx.config
    peak = history.peaks[records.NEAREST]
    return Finding(findings.MEMORISATION, findings.WARNING, "The generator is copying training images",
                   f"Over the last {n} progress grids the typical generated image was {nearest[-1]:.2f}× as far "
                   "from its nearest training image as training images are from each other: G reproduces the "
                   "training set instead of making new images. It happens on small datasets seen many times.",
                   history.probes[-n].step, history.probes[-1].step,
                   {"distance to the nearest training image (× their spacing)": nearest[-1],
                    "its highest so far": peak},
                   (*suggest.diffaugment(config, "DiffAugment shows D a different version of each image every "
                                                 "time, so a copy no longer fools it"),
                    suggest.more_images(config)))


def augmentation_leak(history: History, ctx: Context) -> Finding | None:
    """Generated images show DiffAugment's grey padding or squares far more often than training images: G
    learnt to paint the augmentation, because D judges (nearly) only augmented images."""
    n = ctx.probes
    if not set(ctx.policy()) & set(suggest.LEAKING):
        return None
    share, spread = _last(history, records.PATCHED, n), _last(history, records.DIVERSITY, n)
    if share is None or spread is None or min(share) < PATCHED or min(spread) < SPREAD:
        return None  # a blurry early grid has grey areas of its own
    return Finding(findings.AUGMENTATION_LEAK, findings.WARNING, "The augmentation is leaking into the samples",
                   f"Over the last {n} progress grids {share[-1]:.0%} more generated images than training images "
                   "showed a grey band along an edge or a grey square: the fill of DiffAugment's translation "
                   "and cutout. With (nearly) every image D judges augmented, an image that already looks augmented "
                   "fools it as well as a clean one, so G learnt to paint the augmentation.",
                   history.probes[-n].step, history.probes[-1].step,
                   {"share of grid images with grey patches, above the training images'": share[-1]},
                   tuple(suggest.gentler_augmentation(ctx.config)))
