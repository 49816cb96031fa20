"""Moved to engine.base.checkpoint: this name stays only until engine/train/loop.py imports from there."""

from engine.base.checkpoint import (CheckpointError, load_checkpoint, restore_optimizer,  # noqa: F401
                                    save_checkpoint, split_prefix)
