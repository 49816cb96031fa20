"""Training: the loop, EMA, checkpoints and torchrun support."""

from engine.base.checkpoint import CheckpointError
from engine.train.loop import StopFlag, Trainer

__all__ = ["CheckpointError", "StopFlag", "Trainer"]
