"""Result keys carry the sample count: 'fid_10k' is displayed as 'FID-10k'."""

from __future__ import annotations

import re

from engine.metrics.registry import find_output

_KEY = re.compile(r"^(?P<output>[a-z][a-z0-9_]*?)_(?P<count>\d+k?)$")


def format_count(n: int) -> str:
    """2000 -> '2k', 50000 -> '50k', 500 -> '500', 2500 -> '2500' (exact, never rounded)."""
    if n <= 0:
        raise ValueError(f"sample count must be positive, got {n}")
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def parse_count(text: str) -> int:
    """Inverse of format_count; also used for CLI values such as '10k'."""
    text = text.strip().lower()
    if not re.fullmatch(r"\d+k?", text) or text in ("0", "0k"):
        raise ValueError(f"not a sample count: {text!r} (examples: 500, 2000, 10k, 50k)")
    return int(text[:-1]) * 1000 if text.endswith("k") else int(text)


def metric_key(output: str, num_samples: int) -> str:
    """The result key of an output computed on `num_samples` generated images: ('fid', 2000) -> 'fid_2k'."""
    return f"{output}_{format_count(num_samples)}"


def parse_key(key: str) -> tuple[str, int]:
    """'fid_2k' -> ('fid', 2000); 'nn_pixel_500' -> ('nn_pixel', 500)."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"not a metric result key: {key!r}")
    return match["output"], parse_count(match["count"])


def output_of(key: str) -> str | None:
    """'fid_2k' -> 'fid'; None for a key that is no metric result ('step', 'loss_g')."""
    try:
        return parse_key(key)[0]
    except ValueError:
        return None


def display_label(key: str) -> str:
    """'fid_2k' -> 'FID-2k', 'precision_50k' -> 'Precision-50k'."""
    output, count = parse_key(key)
    return f"{find_output(output).label}-{format_count(count)}"


def lower_is_better(key: str) -> bool:
    """Whether a smaller value is better, for an output ('fid') or a result key ('fid_2k').

    Raises ValueError for names that do not rank checkpoints (unknown ones, 'nn_*').
    """
    output = key if _KEY.match(key) is None else parse_key(key)[0]
    direction = find_output(output).lower_is_better
    if direction is None:
        raise ValueError(f"{output!r} is informative only and cannot rank checkpoints")
    return direction
