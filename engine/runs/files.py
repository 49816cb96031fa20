"""Moved to engine.base.files: this name stays only until engine/train/loop.py imports from there."""

from engine.base.files import atomic_write  # noqa: F401
