"""Model registry: name -> (options dataclass, builder, capabilities, settings). Adding a model is one file +
one import line (docs/adding-a-model.md).

A model declares what the training loop needs to know about it (``Capabilities``): which training
step it takes and which optional hooks its networks implement (the Protocols below). The loop
dispatches on the declaration and imports no model module; ``build_model`` checks that the built
networks really have the hooks declared. It also declares how the test suite and the zoo benchmark
size it (``ModelSettings``), and may declare its own recipe (``Recipe``), so they pick it up unedited.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import nn

from engine.base import records
from engine.config import Config, ConfigError, dataclass_from_dict

TRAINING_STEPS = records.MODEL_KINDS  # the steps engine.train implements (engine/train/steps.py)


@runtime_checkable
class Growing(Protocol):
    """A network that changes with the images seen (progressive growing): the loop calls
    ``set_progress`` on G, D and the EMA copy before every step."""

    def set_progress(self, images: int) -> None: ...


@runtime_checkable
class ReportsGrowth(Protocol):
    """A growing generator's state for the training log (e.g. stage_resolution, alpha)."""

    def progress_info(self) -> dict[str, float]: ...


@runtime_checkable
class AuxDiscriminator(Protocol):
    """A discriminator with a self-supervised loss on real images (FastGAN's decoders)."""

    def forward_with_aux(self, x: torch.Tensor, labels: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class Capabilities:
    """What the training loop needs to know about a model, declared when it is registered."""

    step: str = "adversarial"  # adversarial: D judges images; autoencoder: encoder + decoder, D judges codes
    grows: bool = False  # G and D are Growing, G ReportsGrowth (its state joins the training log)
    aux_loss: bool = False  # D is an AuxDiscriminator: its aux loss on real images joins the D loss

    def __post_init__(self) -> None:
        if self.step not in TRAINING_STEPS:
            raise ValueError(f"training step must be one of {', '.join(TRAINING_STEPS)}, not {self.step!r}")


@dataclass(frozen=True)
class Recipe:
    """A named recipe declared next to its model; ``engine.presets`` lists it with its own (PRESETS, SIZES).

    ``config`` is the recipe as published; the ``cpu_*`` fields are its CPU size (narrow widths at ≤ 64 px,
    batch 16-32, a grid every ``cpu_grid_every`` steps), which the studio, the CLI and the zoo benchmark
    apply on a CPU. On GPUs it is sized like every recipe."""

    name: str
    config: Config
    cpu_batch_size: int
    cpu_resolution: int
    cpu_options: dict[str, Any] = field(default_factory=dict)
    cpu_grid_every: int = 50
    cpu_settings: dict[str, Any] = field(default_factory=dict)  # other config values by dotted key


@dataclass(frozen=True)
class ModelSettings:
    """How the test suite and the zoo benchmark size a model, declared when it is registered.

    ``tiny``: options that build at every supported resolution at once (the shape, resume and CUDA tests).
    ``small``: options that train 160 steps of batch 32 at 32 px in seconds and still learn
    (tests/test_zoo_training.py), with ``small_optim`` and ``small_loss`` overriding OptimConfig and LossConfig
    fields for that training.
    ``recipe``: what bench/zoo.py trains it from, a recipe name in engine.presets or a Recipe declared here.
    ``schedule_options``: options counted in images that bench/zoo.py's --schedule-images sets (stage lengths).
    ``extra_recipes``: more recipes declared here (other resolutions, say): engine.presets lists them with
    ``recipe``, the zoo benchmark trains ``recipe`` alone.
    """

    tiny: dict[str, Any]
    small: dict[str, Any]
    recipe: str | Recipe
    small_optim: dict[str, Any] = field(default_factory=dict)
    small_loss: dict[str, Any] = field(default_factory=dict)
    schedule_options: tuple[str, ...] = ()
    extra_recipes: tuple[Recipe, ...] = ()

    @property
    def recipe_name(self) -> str:
        return self.recipe if isinstance(self.recipe, str) else self.recipe.name

    @property
    def declared_recipes(self) -> list[Recipe]:
        """The Recipes declared with the model: ``recipe`` when it is one, then ``extra_recipes``."""
        return [*([self.recipe] if isinstance(self.recipe, Recipe) else []), *self.extra_recipes]


@dataclass
class GanPair:
    """What a builder returns: the two networks, the latent size, an encoder for autoencoders, and
    the settings the model's training step reads (``objective``, e.g. an autoencoder's
    reconstruction loss and adversarial weight)."""

    generator: nn.Module
    discriminator: nn.Module
    latent_dim: int
    num_classes: int = 0
    encoder: nn.Module | None = None  # image -> latent (adversarial autoencoders)
    objective: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelInfo:
    """A registry entry as shown to users."""

    name: str
    description: str
    resolutions: tuple[int, ...]
    options: dict[str, Any]
    build: Callable[[Any, int, int], GanPair]
    options_type: type
    choices: dict[str, tuple[str, ...]]  # options limited to a few values
    conditional: bool  # needs the dataset's class labels
    loss: str | None  # the loss kind the model is defined with, if it needs one
    capabilities: Capabilities
    settings: ModelSettings | None  # every model of the zoo declares them (tests/test_zoo.py checks)


_MODELS: dict[str, ModelInfo] = {}
MAX_OPTION = 2**31 - 1  # widths, sizes and image counts; sizes that large are refused by engine.models.size


def register_model(name: str, description: str, resolutions: tuple[int, ...], options_type: type,
                   conditional: bool = False, loss: str | None = None,
                   capabilities: Capabilities = Capabilities(), settings: ModelSettings | None = None
                   ) -> Callable[[Callable[[Any, int, int], GanPair]], Callable[[Any, int, int], GanPair]]:
    """Decorator for ``build(options, resolution, num_classes) -> GanPair``."""
    for declared in settings.declared_recipes if settings is not None else []:
        if declared.config.model.name != name:
            raise ValueError(f"recipe {declared.name} of model {name} trains model {declared.config.model.name!r}")

    def add(build: Callable[[Any, int, int], GanPair]) -> Callable[[Any, int, int], GanPair]:
        defaults = dataclasses.asdict(options_type())
        choices = {f.name: tuple(f.metadata["choices"]) for f in dataclasses.fields(options_type)
                   if "choices" in f.metadata}
        _MODELS[name] = ModelInfo(name, description, resolutions, defaults, build, options_type, choices,
                                  conditional, loss, capabilities, settings)
        return build

    return add


def list_models() -> list[ModelInfo]:
    return list(_MODELS.values())


def declared_recipes() -> list[Recipe]:
    """The recipes model files declare next to their models (engine.presets lists them)."""
    return [declared for m in _MODELS.values() if m.settings for declared in m.settings.declared_recipes]


def get_model(name: str) -> ModelInfo:
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def choice(default: str, *allowed: str) -> Any:
    """A dataclass field limited to a few string values (shown as a drop-down in the studio)."""
    return dataclasses.field(default=default, metadata={"choices": (default, *allowed)})


def _parse_options(info: ModelInfo, options: dict[str, Any]) -> Any:
    opts = dataclass_from_dict(info.options_type, dict(options), f"model.options ({info.name})")
    for key, allowed in info.choices.items():
        if getattr(opts, key) not in allowed:
            raise ConfigError(f"{info.name} option {key} must be one of {', '.join(allowed)}, "
                              f"not {getattr(opts, key)!r}")
    for item in dataclasses.fields(opts):
        _check_number(info.name, item.name, getattr(opts, item.name))
    return opts


def _check_number(model: str, key: str, value: Any) -> None:
    """Numeric options: widths and sizes are positive, image counts (``*_images``) non-negative, both at
    most MAX_OPTION; floats (slopes, weights) finite and non-negative, dropout probabilities below 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    where = f"model.options.{key} ({model})"
    if isinstance(value, int):
        low = 0 if key.endswith("_images") else 1
        if not low <= value <= MAX_OPTION:
            raise ConfigError(f"{where} must be between {low} and {MAX_OPTION}, got {value}")
    elif not (math.isfinite(value) and 0 <= value and (value < 1 or "dropout" not in key)):
        allowed = "at least 0 and below 1" if "dropout" in key else "at least 0"
        raise ConfigError(f"{where} must be a finite number {allowed}, got {value!r}")


def resolve_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The model's options with defaults filled in and types and choices checked."""
    return dataclasses.asdict(_parse_options(get_model(name), options))


def build_model(name: str, options: dict[str, Any], resolution: int, num_classes: int = 0) -> GanPair:
    info = get_model(name)
    if resolution not in info.resolutions:
        raise ConfigError(f"model {name} supports resolutions {', '.join(map(str, info.resolutions))}, not {resolution}")
    if info.conditional and num_classes < 2:
        raise ConfigError(f"model {name} is class-conditional: train it on a dataset with at least two classes "
                          "(sub-folders, or builtin:faces)")
    pair = info.build(_parse_options(info, options), resolution, num_classes if info.conditional else 0)
    _check_capabilities(info, pair)
    return pair


def _check_capabilities(info: ModelInfo, pair: GanPair) -> None:
    """The built networks implement what the model declared (a model author's mistake, said plainly)."""
    caps = info.capabilities
    missing = [what for what, ok in (
        ("Growing generator", not caps.grows or isinstance(pair.generator, Growing)),
        ("ReportsGrowth generator", not caps.grows or isinstance(pair.generator, ReportsGrowth)),
        ("Growing discriminator", not caps.grows or isinstance(pair.discriminator, Growing)),
        ("AuxDiscriminator", not caps.aux_loss or isinstance(pair.discriminator, AuxDiscriminator)),
        ("encoder", (caps.step == "autoencoder") == (pair.encoder is not None))) if not ok]
    if missing:
        raise TypeError(f"model {info.name} declares {caps} but its builder's networks do not match: "
                        f"{', '.join(missing)}")
