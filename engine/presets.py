"""Named recipes from the projects our users come from, each sized for the device it runs on.

``PRESETS`` holds every recipe as published (sized for the source's GPU): those below and those model
files declare next to their models (``engine.models.Recipe``). ``SIZES`` says how each recipe is sized
for a CPU, a small GPU and a large GPU; ``recipe()`` applies the size that fits the device (or the one
asked for) and says which it applied.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.config import (Config, DataConfig, LossConfig, ModelConfig, OptimConfig, TrainConfig, dotted_value,
                           update_from_dotted)
from engine.device import DeviceError
from engine.models import declared_recipes, resolve_options

DEVICE_CLASSES = ("cpu", "small-gpu", "large-gpu")
SIZE_CHOICES = ("auto", *DEVICE_CLASSES, "source")
LARGE_GPU_BYTES = 20 * 2**30  # a CUDA GPU with at least this much memory is a "large" one
SMALL_GPU_MAX_BATCH = 64
_LABELS = {"cpu": "CPU", "small-gpu": "Small-GPU", "large-gpu": "Large-GPU"}


@dataclass(frozen=True)
class Size:
    """How a recipe is sized for one device class: batch, resolution, model options overriding the
    recipe's (widths etc.), other config values by dotted key (``settings``, e.g. the lazy penalty's
    ``loss.penalty_every``) and, where set, the log/grid/checkpoint cadence in steps."""

    batch_size: int
    resolution: int
    options: dict[str, Any] = field(default_factory=dict)
    log_every: int | None = None
    grid_every: int | None = None
    checkpoint_every: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """E.g. 'ngf 8, ndf 8, batch 16, 64 px'."""
        settings = {key.rsplit(".", 1)[-1]: value for key, value in self.settings.items()}
        return ", ".join([*_describe_options(self.options), *_describe_options(settings), f"batch {self.batch_size}",
                          f"{self.resolution} px"])

    def apply(self, config: Config) -> Config:
        """A copy of ``config`` at this size."""
        sized = copy.deepcopy(config)
        sized.data.resolution, sized.train.batch_size = self.resolution, self.batch_size
        sized.model.options.update(self.options)
        for key, value in self.settings.items():
            update_from_dotted(sized, key, value)
        for key in ("log_every", "grid_every", "checkpoint_every"):
            if getattr(self, key) is not None:
                setattr(sized.train, key, getattr(self, key))
        return sized


def _describe_options(options: dict[str, Any]) -> list[str]:
    """'ngf 8', 'fade images 20,000', … for model options."""
    return [f"{key.replace('_', ' ')} {f'{value:,}' if type(value) is int else value}"
            for key, value in options.items()]


PRESETS: dict[str, Config] = {
    "quick-faces-32": Config(
        data=DataConfig(resolution=32),
        model=ModelConfig("dcgan", {"ngf": 32, "ndf": 32}),
        train=TrainConfig(batch_size=32, log_every=10, grid_every=50, checkpoint_every=250)),
    "quick-photos-64": Config(
        data=DataConfig(resolution=64, diffaugment="color,translation,cutout"),
        model=ModelConfig("dcgan", {"latent_dim": 100, "ngf": 32, "ndf": 32}),
        optim=OptimConfig(lr_g=2e-4, lr_d=1e-4),
        train=TrainConfig(batch_size=32, log_every=10, grid_every=50, checkpoint_every=250)),
    "afhq-dcgan-128": Config(
        data=DataConfig(resolution=128, flip=False, rotate_degrees=10.0),
        model=ModelConfig("dcgan", {"latent_dim": 100, "ngf": 64, "ndf": 64, "d_dropout": 0.3}),
        loss=LossConfig("bce"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "anime-dcgan-64": Config(
        data=DataConfig(resolution=64, flip=True),
        model=ModelConfig("dcgan", {"latent_dim": 128, "g_input": "dense", "max_channels": 1024, "ngf": 128}),
        loss=LossConfig("bce", label_smoothing=0.1),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "face-course-basic-28": Config(
        data=DataConfig(resolution=28, flip=False),
        model=ModelConfig("basic", {"latent_dim": 100}),
        optim=OptimConfig(lr_g=2e-4, lr_d=1e-4),
        train=TrainConfig(batch_size=64)),
    "sngan-hinge-64": Config(
        data=DataConfig(resolution=64),
        model=ModelConfig("sngan", {}),
        loss=LossConfig("hinge"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.9, n_critic=5),
        train=TrainConfig(batch_size=64)),
    "wgan-gp-64": Config(
        data=DataConfig(resolution=64),
        model=ModelConfig("wgan-gp", {}),
        loss=LossConfig("wgan-gp", gp_weight=10.0),
        optim=OptimConfig(lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, n_critic=5),
        train=TrainConfig(batch_size=64)),
    "anime-dcgan-128": Config(
        data=DataConfig(resolution=128, flip=True),
        model=ModelConfig("dcgan", {"latent_dim": 100, "g_activation": "relu", "g_batchnorm": True,
                                    "d_batchnorm": True, "d_slope": 0.2}),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "anime-aae-128": Config(
        data=DataConfig(resolution=128, flip=True),
        model=ModelConfig("aae", {"latent_dim": 128, "encoder_slope": 0.2, "reconstruction": "mse"}),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "cat-faces-simple-gan-64": Config(
        data=DataConfig(resolution=64, flip=True),
        model=ModelConfig("basic", {"latent_dim": 100, "hidden": 1024}),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "conditional-dcgan-64": Config(
        data=DataConfig(resolution=64),
        model=ModelConfig("cdcgan", {"latent_dim": 100}),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "face-course-progressive-128": Config(
        data=DataConfig(resolution=128, flip=True),
        model=ModelConfig("progressive", {"latent_dim": 512, "start_resolution": 4, "fade_images": 400_000,
                                          "stable_images": 400_000}),
        loss=LossConfig("wgan-gp", gp_weight=10.0),
        optim=OptimConfig(lr_g=2e-4, lr_d=1e-4, beta1=0.0, beta2=0.99),
        train=TrainConfig(batch_size=64)),
    "fastgan-64": Config(
        data=DataConfig(resolution=64, flip=True, diffaugment="color,translation,cutout"),
        model=ModelConfig("fastgan", {"latent_dim": 256, "ngf": 64, "ndf": 64}),
        loss=LossConfig("hinge"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999),
        train=TrainConfig(batch_size=16)),  # small batches, many steps (the paper trains with 8)
    "face-course-dcgan-64-ttur": Config(
        data=DataConfig(resolution=64),
        model=ModelConfig("dcgan", {"latent_dim": 100}),
        optim=OptimConfig(lr_g=2e-4, lr_d=1e-4),
        train=TrainConfig(batch_size=64)),
}


def _cpu(batch: int, resolution: int, options: dict[str, Any], grid_every: int,
         settings: dict[str, Any] | None = None) -> Size:
    """A CPU size: narrow networks at ≤ 64 px, and a cadence that shows a grid every ~10-20 s (a
    log every fifth of that, a checkpoint every fifth grid)."""
    return Size(batch, resolution, options, log_every=max(1, grid_every // 5), grid_every=grid_every,
                checkpoint_every=grid_every * 5, settings=dict(settings or {}))


# Widths that train at 40-200 img/s on a 2-core CPU (n_critic = 5 recipes and the progressive GAN
# are slower whatever the width); their grids come every few steps so the first shows within seconds.
_CPU_SIZES: dict[str, Size] = {
    "quick-faces-32": _cpu(32, 32, {}, 50),
    "quick-photos-64": _cpu(32, 64, {}, 50),
    "afhq-dcgan-128": _cpu(32, 64, {"ngf": 32, "ndf": 32}, 50),
    "anime-dcgan-64": _cpu(32, 64, {"ngf": 32, "ndf": 32}, 50),
    "face-course-basic-28": _cpu(32, 28, {"hidden": 512}, 100),
    "sngan-hinge-64": _cpu(16, 64, {"g_channels": 64, "d_channels": 64}, 5),
    "wgan-gp-64": _cpu(16, 64, {"ngf": 32, "ndf": 32}, 10),
    "anime-dcgan-128": _cpu(32, 64, {"ngf": 32, "ndf": 32}, 50),
    "anime-aae-128": _cpu(32, 64, {"ngf": 32, "nef": 32, "d_hidden": 256}, 50),
    "cat-faces-simple-gan-64": _cpu(32, 64, {"hidden": 512}, 100),
    "conditional-dcgan-64": _cpu(32, 64, {"ngf": 32, "ndf": 32}, 50),
    "face-course-progressive-128": _cpu(16, 64, {"fmap_base": 4096, "fmap_max": 128, "fade_images": 20_000,
                                                 "stable_images": 20_000}, 5),
    "fastgan-64": _cpu(16, 64, {"ngf": 8, "ndf": 8}, 50),
    "face-course-dcgan-64-ttur": _cpu(32, 64, {"ngf": 32, "ndf": 32}, 50),
}
for _declared in declared_recipes():
    if _declared.name in PRESETS:
        raise ValueError(f"recipe {_declared.name} is declared twice")
    PRESETS[_declared.name] = _declared.config
    _CPU_SIZES[_declared.name] = _cpu(_declared.cpu_batch_size, _declared.cpu_resolution, _declared.cpu_options,
                                      _declared.cpu_grid_every, _declared.cpu_settings)


def _gpu_sizes(name: str) -> dict[str, Size]:
    """A small GPU keeps the recipe's widths with a batch of at most 64; a large one runs it as published.
    Both log, draw grids and checkpoint less often than the default (a GPU takes hundreds of steps a second)."""
    config = PRESETS[name]
    res, batch = config.data.resolution, config.train.batch_size
    sized = functools.partial(Size, resolution=res, log_every=100, grid_every=1000, checkpoint_every=5000)
    return {"small-gpu": sized(min(batch, SMALL_GPU_MAX_BATCH)), "large-gpu": sized(batch)}


SIZES: dict[str, dict[str, Size]] = {name: {"cpu": _CPU_SIZES[name], **_gpu_sizes(name)} for name in PRESETS}

BUILTIN, PHOTOS = "builtin", "photos"
# The recipe with the best images per minute on each device class, for the built-in cartoon faces and
# for other images, where the quality benchmark has not measured it (bench/first_faces.py,
# docs/benchmarks.md). On a CPU the narrow 32-px DCGAN draws recognisable built-in faces in a minute
# while FastGAN (ngf 8) still draws blobs; on 1,000 cat photos at 64 px the narrow DCGAN with DiffAugment
# draws cat faces within 8 minutes where FastGAN (ngf 8) draws a few cat heads among blobs.
RECOMMENDED_DEFAULTS: dict[str, dict[str, str]] = {
    "cpu": {BUILTIN: "quick-faces-32", PHOTOS: "quick-photos-64"},
    "small-gpu": {BUILTIN: "fastgan-64", PHOTOS: "fastgan-64"},
    "large-gpu": {BUILTIN: "fastgan-64", PHOTOS: "fastgan-64"},
}
QUALITY_TABLE = Path(__file__).with_name("quality.json")
"""The recipe with the lowest FID at equal training time per device class and kind of images, written
by bench/quality.py --write (the table is in docs/benchmarks.md)."""


def _measured_best() -> dict[str, dict[str, str]]:
    """Device class -> kind of images -> the recipe bench/quality.py measured best there."""
    table = json.loads(QUALITY_TABLE.read_text()) if QUALITY_TABLE.is_file() else {}
    return {cls: {kind: entry["recipe"] for kind, entry in by_kind.items() if entry["recipe"] in PRESETS}
            for cls, by_kind in table.items() if cls in DEVICE_CLASSES}


RECOMMENDED: dict[str, dict[str, str]] = {
    cls: {**RECOMMENDED_DEFAULTS[cls], **_measured_best().get(cls, {})} for cls in DEVICE_CLASSES}
"""What each device class is recommended per kind of images: the quality benchmark's best where it ran,
else RECOMMENDED_DEFAULTS."""


def device_class(device: torch.device) -> str:
    """'cpu', 'small-gpu' (MPS, or CUDA with < 20 GiB) or 'large-gpu' (other CUDA GPUs)."""
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device} has no CUDA GPU behind it on this machine; use cpu")
        memory = torch.cuda.get_device_properties(device).total_memory
        return "large-gpu" if memory >= LARGE_GPU_BYTES else "small-gpu"
    return "small-gpu"


def images_kind(spec: str) -> str:
    """'builtin' for the built-in faces, 'photos' for any other images (folders, archives, the Hub)."""
    return BUILTIN if spec.strip().lower().startswith("builtin:") else PHOTOS


def recommended(device: torch.device, spec: str = "builtin:faces") -> str:
    """The name of the recipe recommended on this device for the images of dataset ``spec``."""
    return RECOMMENDED[device_class(device)][images_kind(spec)]


def preset(name: str) -> Config:
    """A fresh copy of a named preset, as published."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def recipe(name: str, device: torch.device, size: str = "auto") -> tuple[Config, str]:
    """Recipe ``name`` sized for ``size`` ('auto' = this device's class, a device class, or 'source' =
    as published), and a sentence saying which size was applied."""
    if size not in SIZE_CHOICES:
        raise ValueError(f"size must be one of {', '.join(SIZE_CHOICES)}, not {size!r}")
    source = preset(name)
    own = _own_description(source, SIZES[name]["cpu"])
    if size == "source":
        return source, f"Source size applied: the recipe as published ({own})."
    chosen = device_class(device) if size == "auto" else size
    size_used = SIZES[name][chosen]
    sized = size_used.apply(source)
    label = _LABELS[chosen]
    if _shape(sized, size_used) == _shape(source, size_used):
        return sized, f"{label} size applied: the recipe as published ({own})."
    return sized, f"{label} size applied: {size_used.describe()} (the recipe's own: {own})."


def _shape(config: Config, size: Size) -> tuple[dict[str, Any], int, int, list[Any]]:
    """What ``size`` may change of a recipe, besides its cadence: model options, batch, resolution and the
    values of its other settings."""
    return (resolve_options(config.model.name, config.model.options), config.train.batch_size,
            config.data.resolution, [dotted_value(config, key) for key in size.settings])


def _own_description(config: Config, cpu: Size) -> str:
    """The recipe's own values of the settings its CPU size changes, e.g. 'ngf 64, ndf 64, batch 16, 64 px'."""
    options = resolve_options(config.model.name, config.model.options)
    own = Size(config.train.batch_size, config.data.resolution, {key: options[key] for key in cpu.options},
               settings={key: dotted_value(config, key) for key in cpu.settings})
    return own.describe()


def suggested_config(device: torch.device, spec: str = "builtin:faces") -> Config:
    """The recommended recipe for dataset ``spec``, sized for this device, training on ``spec``."""
    config = recipe(recommended(device, spec), device)[0]
    config.data.spec = spec
    return config
