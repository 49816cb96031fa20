"""Where the studio finds things, and whether it may change them."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = ROOT / "checkpoints" / "demo-faces64"
FAVICON = ROOT / "studio" / "assets" / "favicon.png"  # shipped: a Material icon favicon is fetched from a CDN
LIVE_REFRESH_SECONDS = 2.0


def read_only() -> bool:
    """GAN_STUDIO_READONLY=1 hides training, stopping, renaming and deleting (public demos)."""
    return os.environ.get("GAN_STUDIO_READONLY", "").strip().lower() in ("1", "true", "yes", "on")


def bound_model() -> str | None:
    """GAN_STUDIO_MODEL=owner/name: the Hugging Face model repo Explore opens first (a demo Space sets it)."""
    return os.environ.get("GAN_STUDIO_MODEL", "").strip() or None


def uploads_dir(runs_root: Path) -> Path:
    """Uploaded dataset archives are kept beside the runs that train on them."""
    return runs_root.parent / "uploads"