"""Memory layout of images and conv weights: channels_last where it is the faster one.

On CUDA channels_last is what bf16 tensor-core convolutions want. On a CPU it depends on the
layers and the batch (oneDNN's transposed convolutions on small feature maps are much faster in
channels_last; other nets lose a little), so "auto" times G and D forward/backward passes in
both layouts, within a hard budget, and keeps the faster. The decision is remembered per machine
and network shape in the cache directory, so later runs of that shape start without timing.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from engine.base.environment import cache_dir
from engine.base.files import atomic_write_json, read_json
from engine.config import MEMORY_FORMATS
from engine.expectations import machine_key

log = logging.getLogger(__name__)

MARGIN = 0.95  # channels_last must be at least 5 % faster to replace PyTorch's default on a CPU
BUDGET_SECONDS = 3.0  # all the timing, copies and warm-up passes included
PROBE = 2  # latents in the first pass, which says whether timing at the full batch fits the budget
_FORMATS = (torch.contiguous_format, torch.channels_last)
_decided: dict[str, bool] = {}  # one decision per network, batch and device in a process


def wants_channels_last(setting: str, device: torch.device, generator: nn.Module, discriminator: nn.Module,
                        batch: int, latent_dim: int, judges_images: bool, measure: bool = True) -> bool:
    """Whether to train in channels_last. ``setting`` is train.memory_format; "auto" means channels_last
    on CUDA, contiguous on other GPUs, and on a CPU the faster of the two (remembered for this machine,
    else timed when ``measure``; contiguous when not measured or when timing does not fit the budget)."""
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
        remembered = _remembered(device, key)
        if remembered is None:
            remembered = _measured(generator, discriminator, device, batch, latent_dim, judges_images)
            if remembered is None:
                return False
            _remember(device, key, remembered)
        _decided[key] = remembered
    return _decided[key]


def _cache_file() -> Path:
    return cache_dir() / "memory_format.json"


def _read_cache() -> dict[str, dict[str, bool]]:
    try:
        data = read_json(_cache_file())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _digest(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


def _remembered(device: torch.device, key: str) -> bool | None:
    """The decision stored for this machine and network shape, if any."""
    value = _read_cache().get(machine_key(device), {}).get(_digest(key))
    return value if isinstance(value, bool) else None


def _remember(device: torch.device, key: str, channels_last: bool) -> None:
    cache = _read_cache()
    cache.setdefault(machine_key(device), {})[_digest(key)] = channels_last
    try:
        atomic_write_json(_cache_file(), cache)
    except OSError as exc:
        log.warning("cannot remember the memory format in %s: %s", _cache_file(), exc)


def _measured(generator: nn.Module, discriminator: nn.Module, device: torch.device, batch: int, latent_dim: int,
              judges_images: bool) -> bool | None:
    """channels_last if timed faster by the margin; None when the timing did not fit the budget."""
    z = torch.randn(batch, latent_dim, generator=torch.Generator().manual_seed(0)).to(device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    seconds = _timed_layouts(generator, discriminator, z, labels, judges_images)
    if seconds is None:
        log.info("memory format: contiguous (timing the two layouts would take more than %.0f s here)",
                 BUDGET_SECONDS)
        return None
    contiguous, last = seconds[torch.contiguous_format], seconds[torch.channels_last]
    log.info("memory format: %s (G+D forward/backward %.0f ms contiguous, %.0f ms channels_last)",
             "channels_last" if last < MARGIN * contiguous else "contiguous", contiguous * 1e3, last * 1e3)
    return last < MARGIN * contiguous


def _timed_layouts(generator: nn.Module, discriminator: nn.Module, z: torch.Tensor, labels: torch.Tensor,
                   judges_images: bool, rounds: int = 4) -> dict[torch.memory_format, float] | None:
    """Median time per layout of G and D forward/backward passes on copies of the networks, within
    BUDGET_SECONDS in all. First a probe pass on PROBE latents: when it, scaled to the batch, takes more
    than a quarter of the budget, timing stops (None). Then one warm-up per layout and rounds in which the
    layouts take turns (so a burst of other load slows both), up to ``rounds`` or while the next round
    is expected to end within the budget; None when not one round fits. The originals, their gradients
    and the global RNG stay untouched."""
    began = time.perf_counter()
    deadline = began + BUDGET_SECONDS
    with torch.random.fork_rng(devices=[]):
        probe = _one_pass(generator, discriminator, z[:PROBE], labels[:PROBE], judges_images, torch.contiguous_format)
        if _time(probe) * len(z) / len(z[:PROBE]) > BUDGET_SECONDS / 4:
            return None
        passes = {fmt: _one_pass(generator, discriminator, z, labels, judges_images, fmt) for fmt in _FORMATS}
        expected = {fmt: _time(run) for fmt, run in passes.items()}
        seconds: dict[torch.memory_format, list[float]] = {fmt: [] for fmt in _FORMATS}
        while (len(seconds[torch.contiguous_format]) < rounds
               and time.perf_counter() + sum(expected.values()) <= deadline):
            for fmt, run in passes.items():
                expected[fmt] = _time(run)
                seconds[fmt].append(expected[fmt])
    if not seconds[torch.contiguous_format]:
        return None
    return {fmt: statistics.median(times) for fmt, times in seconds.items()}


def _time(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start

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
