"""How big a model is before it is built: parameters and activation memory measured on the meta device
(shapes only, nothing allocated), and the guard that refuses a model too large for this machine."""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.config import ConfigError
from engine.models.registry import GanPair, Growing, build_model, get_model, resolve_options

log = logging.getLogger(__name__)

MAX_PARAMETERS = 1_000_000_000  # of the networks one use holds (all three to train, G (+ E) to sample)
SAMPLE_BATCH = 64  # images per forward pass when sampling (Generator.sample)
FP32_BYTES = 4
FINAL_PROGRESS = 2**62  # images seen: growing models are measured at their last (largest) stage
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class SizeEstimate:
    """Parameters of the networks one use holds and the fp32 bytes it needs.

    Training holds G, D (and E) with gradients, two Adam moments and G's EMA copy, plus the tensors one
    step keeps for backward (G, D on real and D on fake images). Sampling (no autograd) holds G (and E)
    and about twice G's largest activation (an operation's input and output alive at once).
    ``activation_bytes`` is None when the model cannot run on the meta device; the memory is then the
    weights' alone."""

    parameters: int
    generator_parameters: int
    activation_bytes: int | None
    training: bool

    @property
    def memory_bytes(self) -> int:
        copies = 4 * self.parameters + self.generator_parameters if self.training else self.parameters
        return FP32_BYTES * copies + (self.activation_bytes or 0)


def estimate_size(name: str, options: dict[str, Any], resolution: int, num_classes: int = 0,
                  batch_size: int = SAMPLE_BATCH, training: bool = True) -> SizeEstimate:
    """Parameters and memory of model ``name`` without allocating it (cached per arguments)."""
    return _estimate(name, json.dumps(resolve_options(name, options), sort_keys=True), resolution, num_classes,
                     batch_size, training)


@functools.lru_cache(maxsize=64)
def _estimate(name: str, options: str, resolution: int, num_classes: int, batch_size: int,
              training: bool) -> SizeEstimate:
    with torch.random.fork_rng(devices=[]):  # model code may draw from the global CPU generator
        try:
            with torch.device("meta"):
                pair = build_model(name, json.loads(options), resolution, num_classes)
        except RuntimeError as exc:  # shapes beyond what torch can describe
            raise ConfigError(f"model {name} ({_shown(name, json.loads(options))}) at {resolution} px is too large "
                              f"to build: {str(exc).splitlines()[0]}") from None
        generator = _count(pair.generator) + _count(pair.encoder)
        parameters = generator + _count(pair.discriminator) if training else generator
        return SizeEstimate(parameters, generator, _activations(name, pair, resolution, batch_size, training),
                            training)


def _count(module: nn.Module | None) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def _activations(name: str, pair: GanPair, resolution: int, batch_size: int, training: bool) -> int | None:
    """Activation bytes measured on meta tensors from what autograd keeps for backward (weights excluded):
    all of it for training, twice the largest tensor for sampling."""
    networks = [net for net in (pair.generator, pair.discriminator, pair.encoder) if net is not None]
    weights = {id(p) for net in networks for p in net.parameters()}
    kept: dict[int, torch.Tensor] = {}  # holding them keeps their ids unique

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        base = tensor if tensor._base is None else tensor._base
        if id(base) not in weights:
            kept[id(tensor)] = tensor
        return tensor

    for net in networks:
        net.train(training)
        if isinstance(net, Growing):
            net.set_progress(FINAL_PROGRESS)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            _forward(pair, resolution, batch_size, training)
    except ValueError as exc:  # e.g. BatchNorm over a single value per channel
        raise ConfigError(f"model {name} cannot run batches of {batch_size} per process: "
                          f"{str(exc).splitlines()[0]}; use a larger train.batch_size") from None
    except (NotImplementedError, RuntimeError) as exc:
        log.debug("model %s does not run on the meta device (%s); counting its weights only", name, exc)
        return None
    sizes = [t.numel() * t.element_size() for t in kept.values()]
    return sum(sizes) if training else 2 * max(sizes, default=0)


def _forward(pair: GanPair, resolution: int, batch: int, training: bool) -> None:
    """What one training step (or one sampling batch) runs: G, and D on real and on fake images
    (autoencoders: E, its decoder G, and D on codes and on prior draws)."""
    z = torch.empty(batch, pair.latent_dim, device="meta")
    labels = torch.zeros(batch, dtype=torch.long, device="meta")
    images = torch.empty(batch, 3, resolution, resolution, device="meta")
    if pair.encoder is not None:
        code = pair.encoder(images)
        pair.generator(code, labels)
        if training:
            pair.discriminator(code, labels)
            pair.discriminator(z, labels)
        return
    fake = pair.generator(z, labels)
    if training:
        judge_real = getattr(pair.discriminator, "forward_with_aux", pair.discriminator)
        judge_real(images, labels)
        pair.discriminator(fake, labels)


def check_model_size(name: str, options: dict[str, Any], resolution: int, num_classes: int = 0,
                     batch_size: int = SAMPLE_BATCH, *, training: bool = True,
                     device: torch.device | str | None = None) -> SizeEstimate:
    """Refuse (ConfigError) a model above MAX_PARAMETERS, or needing more memory than ``device`` has
    available (not checked without a device), before anything is allocated; returns the estimate."""
    estimate = estimate_size(name, options, resolution, num_classes, batch_size, training)
    what = f"model {name} ({_shown(name, options)}) at {resolution} px"
    if estimate.parameters > MAX_PARAMETERS:
        raise ConfigError(f"{what} has about {_count_words(estimate.parameters)} parameters, above the limit of "
                          f"{_count_words(MAX_PARAMETERS)}: {_fix(name, options, False)}")
    available = available_memory(device) if device is not None else None
    if device is not None and available is not None and estimate.memory_bytes > available:
        use = f"to train at batch {batch_size}" if training else "to sample"
        raise ConfigError(f"{what} needs about {_gib(estimate.memory_bytes)} {use}, more than the "
                          f"{_gib(available)} available on {torch.device(device)}: {_fix(name, options, training)}")
    return estimate


def available_memory(device: torch.device | str) -> int | None:
    """Bytes a new model can still use on ``device`` (None when unknown)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type in ("cpu", "mps"):  # MPS shares the host's memory
        return _host_available()
    return None


def _host_available() -> int | None:
    """MemAvailable (Linux), else the physical memory (macOS, BSD), else None."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _raised(name: str, options: dict[str, Any]) -> list[str]:
    """Integer options set above the model's defaults, most raised first."""
    defaults = get_model(name).options
    raised = [(value / max(defaults[key], 1), key) for key, value in options.items()
              if isinstance(value, int) and not isinstance(value, bool) and value > defaults.get(key, value)]
    return [key for _, key in sorted(raised, reverse=True)]


def _shown(name: str, options: dict[str, Any]) -> str:
    """The options that differ from the model's defaults, as key=value."""
    defaults = get_model(name).options
    changed = [f"{key}={value}" for key, value in sorted(options.items()) if defaults.get(key) != value]
    return ", ".join(changed) or "default options"


def _fix(name: str, options: dict[str, Any], training: bool) -> str:
    keys = [f"model.options.{key}" for key in _raised(name, options)]
    if training:
        keys.append("train.batch_size")
    return f"lower {', '.join(keys)}" if keys else "choose a smaller model or resolution"


def _count_words(count: int) -> str:
    return f"{count / 1e9:.1f} billion" if count >= 1e9 else f"{count / 1e6:.0f} million"


def _gib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB"
