"""Image helpers for display and export: enlarge, tile, PNG bytes, GIF/MP4 animations."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Sequence

import imageio.v3 as iio
import numpy as np
from PIL import Image

from engine import enlarge, image_grid

__all__ = ["animation", "enlarge", "image_grid", "png_bytes", "read_image"]


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def read_image(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def animation(frames: Sequence[np.ndarray], fmt: str, fps: float = 8.0, size: int = 0) -> bytes:
    """Encode uint8 frames as an endlessly looping GIF or an H.264 MP4 (``fmt`` 'gif' or 'mp4'),
    enlarged to ``size`` pixels when they are smaller."""
    frames = [enlarge(f, size) for f in frames]
    if fmt == "gif":
        return iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)
    if fmt != "mp4":
        raise ValueError(f"unknown animation format {fmt!r}: use gif or mp4")
    frames = [_even(f, 16) for f in frames]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "animation.mp4"
        iio.imwrite(path, np.stack(frames), plugin="FFMPEG", fps=fps, codec="libx264",
                    pixelformat="yuv420p", macro_block_size=1)
        return path.read_bytes()


def _even(image: np.ndarray, multiple: int) -> np.ndarray:
    """Pad to a multiple of ``multiple`` pixels (what H.264 encoders want) with the grid gutter colour."""
    h, w = image.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), constant_values=24) if ph or pw else image
