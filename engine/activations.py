"""What a network computes inside: its feature maps at each spatial size, captured with forward hooks.

The rule is model-agnostic: hooks go on every submodule (blocks and layers alike, not the network itself
nor weight parametrisations such as spectral norm), and for each spatial size (H, W) of at least 4×4 the
output of the module that *finishes last* at that size is kept: the deepest activation at that resolution.
For DCGAN-style nets that is the activation after the BatchNorm at each resolution; for ResNet-style nets
(SNGAN, R3GAN, FastGAN) the output of the last block at that size, skip connection included. Outputs with
3 channels (RGB images: G's output) or 1 channel (score maps) are left out. Fully-connected networks (the
basic GAN) and latent-code discriminators (the adversarial autoencoder) have no feature maps.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

MIN_SIZE = 4  # smaller maps (1×1 scores, 2×2) say nothing as pictures


@dataclass(frozen=True)
class Activation:
    """One captured feature map batch: the module that produced it and its output (N×C×H×W)."""

    name: str
    output: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        return int(self.output.shape[-2]), int(self.output.shape[-1])


def _hooked(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_modules():
        if child is not module and "parametrizations" not in name.split("."):
            yield name, child


class Recorder:
    """The feature maps of the last forward pass, per spatial size (see the module docstring)."""

    def __init__(self) -> None:
        self._by_size: dict[tuple[int, int], Activation] = {}

    def hook(self, name: str) -> Any:
        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[1] not in (1, 3) \
                    and min(output.shape[-2:]) >= MIN_SIZE:
                size = (int(output.shape[-2]), int(output.shape[-1]))
                self._by_size[size] = Activation(name, output)  # a size keeps its first place, its last map
        return record

    def clear(self) -> None:
        self._by_size.clear()

    def activations(self) -> list[Activation]:
        """One map per spatial size, in the order the network first reached each size."""
        return list(self._by_size.values())


@contextmanager
def recording(module: nn.Module) -> Iterator[Recorder]:
    """Hooks on ``module``'s submodules while the block runs; the recorder holds the last forward's maps."""
    recorder = Recorder()
    handles = [child.register_forward_hook(recorder.hook(name)) for name, child in _hooked(module)]
    try:
        yield recorder
    finally:
        for handle in handles:
            handle.remove()
