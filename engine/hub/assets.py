"""The pictures a model card shows: a sample grid, an interpolation GIF and the training-loss curve."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.base import records
from engine.generator import Generator
from engine.grid import enlarge, image_grid, save_png

MIN_SIDE = 128  # small samples are enlarged (nearest neighbour) so they read on the Hub page
LOSSES = ((records.LOSS_G, (31, 119, 180)), (records.LOSS_D, (214, 39, 40)))  # statistic, colour


def _labels(gen: Generator, count: int) -> list[int]:
    return [i % gen.num_classes for i in range(count)] if gen.num_classes else [0] * count


def sample_grid(gen: Generator, path: Path, count: int = 16) -> None:
    """Seeds 0…count−1 (classes in turn for a conditional model) as one PNG, 8 per row."""
    images = gen.sample(seeds=range(count), labels=_labels(gen, count))
    save_png(image_grid(enlarge(images, MIN_SIDE), columns=min(8, count)), str(path))


def interpolation_gif(gen: Generator, path: Path, walks: int = 4, steps: int = 24) -> None:
    """``walks`` side-by-side slerp walks (seed i to seed walks+i), there and back, as a looping GIF."""
    z = gen.latents(range(2 * walks))
    labels = _labels(gen, walks)
    strips = [gen.interpolate(z[i], z[walks + i], steps, label=labels[i]) for i in range(walks)]
    frames = [image_grid(enlarge(np.stack([strip[t] for strip in strips]), MIN_SIDE), columns=walks) for t in range(steps)]
    frames += frames[-2:0:-1]
    iio.imwrite(path, np.stack(frames), extension=".gif", duration=80, loop=0)


def loss_curve(lines: Sequence[Mapping[str, Any]], path: Path, size: tuple[int, int] = (720, 320)) -> bool:
    """Draw G and D losses against the step into a PNG; False (nothing written) with under two points."""
    train = [r for r in records.train_records(lines) if all(_finite(r.values.get(key)) for key, _ in LOSSES)]
    if len(train) < 2:
        return False
    width, height = size
    left, right, top, bottom = 64, 16, 34, 40
    steps = np.array([r.step for r in train], dtype=float)
    values = np.array([[r.values[key] for key, _ in LOSSES] for r in train], dtype=float)
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.05 or 0.5
    low, high = low - pad, high + pad
    x_span = (steps[-1] - steps[0]) or 1.0

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (step - steps[0]) / x_span * (width - left - right)
        y = top + (high - value) / (high - low) * (height - top - bottom)
        return x, y

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.rectangle((left, top, width - right, height - bottom), outline=(160, 160, 160))
    for value in np.linspace(low + pad, high - pad, 5):
        _, y = xy(steps[0], value)
        draw.line((left - 4, y, left, y), fill=(120, 120, 120))
        draw.text((4, y - 6), f"{value:.3g}", fill=(60, 60, 60), font=font)
    for step in (steps[0], (steps[0] + steps[-1]) / 2, steps[-1]):
        x, _ = xy(step, low)
        draw.line((x, height - bottom, x, height - bottom + 4), fill=(120, 120, 120))
        draw.text((x - 12, height - bottom + 8), f"{step:,.0f}", fill=(60, 60, 60), font=font)
    draw.text((width / 2 - 12, height - 16), "step", fill=(60, 60, 60), font=font)
    for column, (key, colour) in enumerate(LOSSES):
        label = records.stat_label(key)
        draw.line([xy(s, v) for s, v in zip(steps, values[:, column])], fill=colour, width=2)
        key_x = left + column * 90
        draw.line((key_x, 16, key_x + 16, 16), fill=colour, width=2)
        draw.text((key_x + 22, 10), label, fill=colour, font=font)
    image.save(path, format="PNG")
    return True


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
