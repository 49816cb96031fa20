"""What the environment decides for the whole engine: where caches and runs live, and whether downloads
are switched off. Standard library only."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RUNS_ROOT = PROJECT_ROOT / "checkpoints" / "runs"
OFFLINE_VARS = ("GAN_STUDIO_OFFLINE", "HF_HUB_OFFLINE")  # either one, set to 1/true/yes/on, turns downloads off
_TRUE = ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """The project cache root: $GAN_STUDIO_CACHE, else ~/.cache/gan_studio."""
    return Path(os.environ.get("GAN_STUDIO_CACHE") or Path.home() / ".cache" / "gan_studio")


def runs_root() -> Path:
    """Where runs live: $GAN_STUDIO_RUNS, else checkpoints/runs in the project."""
    return Path(os.environ.get("GAN_STUDIO_RUNS") or DEFAULT_RUNS_ROOT)


def offline() -> str | None:
    """The variable that switches downloads off ('GAN_STUDIO_OFFLINE' or 'HF_HUB_OFFLINE'), or None when
    downloads are allowed."""
    return next((var for var in OFFLINE_VARS if os.environ.get(var, "").strip().lower() in _TRUE), None)
