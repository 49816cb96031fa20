"""Memory layout of images and conv weights: channels_last where it is the faster one.

On CUDA channels_last is what bf16 tensor-core convolutions want. On a CPU it depends on the
layers and the batch (oneDNN's transposed convolutions on small feature maps are much faster in
channels_last; other nets lose a little), so "auto" times G and D forward/backward passes in
both layouts once per run and keeps the faster.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

log = logging.getLogger(__name__)

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
MARGIN = 0.95  # channels_last must be at least 5 % faster to replace PyTorch's default on a CPU
_decided: dict[str, bool] = {}  # one measurement per network, batch and device in a process


def wants_channels_last(setting: str, device: torch.device, generator: nn.Module, discriminator: nn.Module,
                        batch: int, latent_dim: int, judges_images: bool, measure: bool = True) -> bool:
    """Whether to train in channels_last. ``setting`` is train.memory_format; "auto" means channels_last
    on CUDA, contiguous on other GPUs, and on a CPU the faster of the two (timed when ``measure``,
    otherwise contiguous). ``judges_images``: D takes G's images (not an autoencoder's codes)."""
    if setting not in MEMORY_FORMATS:
        raise ValueError(f"train.memory_format must be one of {', '.join(MEMORY_FORMATS)}, not {setting!r}")
    if setting != "auto":
        return setting == "channels_last"
    if device.type != "cpu":
        return device.type == "cuda"
    if not measure:
        return False
    key = f"{device}|{batch}|{latent_dim}|{judges_images}|{generator!r}|{discriminator!r}"
    if key not in _decided:
        z = torch.randn(batch, latent_dim, generator=torch.Generator().manual_seed(0)).to(device)
        labels = torch.zeros(batch, dtype=torch.long, device=device)
        seconds = _timed_layouts(generator, discriminator, z, labels, judges_images)
        contiguous, last = seconds[torch.contiguous_format], seconds[torch.channels_last]
        _decided[key] = last < MARGIN * contiguous
        log.info("memory format: %s (G+D forward/backward %.0f ms contiguous, %.0f ms channels_last)",
                 "channels_last" if _decided[key] else "contiguous", contiguous * 1e3, last * 1e3)
    return _decided[key]


def _timed_layouts(generator: nn.Module, discriminator: nn.Module, z: torch.Tensor, labels: torch.Tensor,
                   judges_images: bool, rounds: int = 4, budget: float = 5.0) -> dict[torch.memory_format, float]:
    """Median time per layout of G and D forward/backward passes on copies of the networks: one warm-up
    each, then rounds in which the layouts take turns (so a burst of other load slows both), up to
    ``rounds`` or until ``budget`` seconds have passed (at least one round). The originals, their
    gradients and the global RNG stay untouched."""
    passes = {fmt: _one_pass(generator, discriminator, z, labels, judges_images, fmt)
              for fmt in (torch.contiguous_format, torch.channels_last)}
    seconds: dict[torch.memory_format, list[float]] = {fmt: [] for fmt in passes}
    began = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        for run in passes.values():
            run()
        while len(seconds[torch.contiguous_format]) < rounds:
            for fmt, run in passes.items():
                start = time.perf_counter()
                run()
                seconds[fmt].append(time.perf_counter() - start)
            if time.perf_counter() - began > budget:
                break
    return {fmt: statistics.median(times) for fmt, times in seconds.items()}


def _one_pass(generator: nn.Module, discriminator: nn.Module, z: torch.Tensor, labels: torch.Tensor,
              judges_images: bool, memory_format: torch.memory_format) -> Callable[[], None]:
    """A forward/backward as in a training step (D on fixed images, then D on G's images for G) on
    copies of G and D in ``memory_format``."""
    g, d = (copy.deepcopy(m).to(memory_format=memory_format) for m in (generator, discriminator))

    def run() -> None:
        images = g(z, labels)
        loss = images.float().mean()
        if judges_images:
            loss = d(images.detach(), labels).float().mean() + d(images, labels).float().mean()
        loss.backward()

    return run
