"""Decoding one image file into a square uint8 RGB array, refusing what cannot be used.

Also the ``Limit`` type for the bounds on what untrusted dataset input may cost (see
``engine.data.sources``). Here: ``MAX_IMAGE_PIXELS`` (GAN_STUDIO_MAX_IMAGE_PIXELS, 50 million, a 50 MP
camera's picture), checked from the file's header before its pixels are decoded; decoding one needs
up to ~20 bytes a pixel (a 16-bit PNG is converted through floats), so about 1 GB at the limit.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image

from engine.data.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Limit:
    """A bound on what untrusted input may cost: ``default``, or the environment variable ``env``."""

    env: str
    default: int

    def get(self) -> int:
        """The limit in force; a value in the environment that is not a whole number above 0 is a DatasetError."""
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        if not text.isdigit() or int(text) < 1:
            raise DatasetError(f"{self.env}={text!r} is not a limit: set it to a whole number above 0, or unset it")
        return int(text)


def format_bytes(count: int) -> str:
    """'64 MiB', '1.5 GiB', '900 bytes'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"


MAX_IMAGE_PIXELS = Limit("GAN_STUDIO_MAX_IMAGE_PIXELS", 50_000_000)


def is_image_name(name: str) -> bool:
    path = PurePosixPath(name)
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def decode_image(data: bytes, resolution: int) -> np.ndarray | None:
    """Decode, convert to RGB, centre-crop to square and resize; None if unusable.

    Handles RGBA/LA/palette (composited on white), grayscale, CMYK and 16/32-bit images.
    Images over ``MAX_IMAGE_PIXELS`` or PIL's pixel limit (decompression bombs) give None, read
    from the header before any pixel is decoded; so do truncated, corrupt or non-image files.
    """
    max_pixels = MAX_IMAGE_PIXELS.get()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > max_pixels:
                    return None
                img.load()
                return square_resize(to_rgb(img), resolution)
    except Exception:  # noqa: BLE001 - whatever a decoder raises on a hostile file, the file is unusable
        return None


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr8 = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        return Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    if img.mode == "P" or img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def square_resize(img: Image.Image, resolution: int) -> np.ndarray:
    """Centre-crop to a square and resize with antialiasing to resolution×resolution."""
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != resolution:
        img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def resize_array(images: np.ndarray, resolution: int) -> np.ndarray:
    """Square-crop and resize uint8 N×H×W×3 (or grey N×H×W) images (no-op when already the right size)."""
    if images.shape[1] == images.shape[2] == resolution:
        return np.ascontiguousarray(images)
    out = np.empty((len(images), resolution, resolution, *images.shape[3:]), np.uint8)
    for i, image in enumerate(images):
        out[i] = square_resize(Image.fromarray(np.ascontiguousarray(image)), resolution)
    return out
