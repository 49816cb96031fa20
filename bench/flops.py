"""Model FLOPs of a training step (torch.utils.flop_counter) and the device's peak, for MFU."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, by a name fragment of the device.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "RTX 4090": 165e12}


class _WholeStep:
    """Stands in for FlopCounterMode's per-module tracker, which cannot follow the double backward of
    a gradient penalty (torch.autograd.grad inside a step); every FLOP is counted under 'Global'."""

    parents = {"Global"}

    def __enter__(self) -> "_WholeStep":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def training_flops_per_image(trainer) -> float:
    """FLOPs of one full training step (all D and G updates, penalties, auxiliary losses) per image.

    Counts one real step (which advances the trainer by one step)."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _WholeStep()
    with counter:
        trainer.train_step()
    return counter.get_total_flops() / trainer.config.train.batch_size


def peak_flops(device: torch.device) -> float | None:
    """The bf16 peak of a known GPU, or None (CPUs and unknown GPUs: MFU is not reported)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)
