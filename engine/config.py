"""The whole configuration of a run: one dataclass tree that round-trips to JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class ConfigError(ValueError):
    """A configuration value a user supplied is invalid."""


# The allowed values, declared once: the modules that use them import them from here.
PRECISIONS = ("auto", "fp32", "bf16")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
LR_SCALINGS = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}  # name -> exponent of batch_size / reference_batch
DIVERGENCE_ACTIONS = ("stop", "rollback")
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
RAMP_SHAPES = ("constant", "linear", "cosine")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024
MAX_LABEL_SMOOTHING = 0.5  # real targets stay above fake ones
# Seeds are combined before they reach an RNG (seed * 1_000_003 + epoch, seed * 7 + 1, seed + 17, …);
# up to 2^32 - 1 every combination stays far below torch's 64-bit limit.
MAX_SEED = 2**32 - 1
MAX_BATCH_SIZE = 65_536
MAX_GRID_SIZE = 1_024
MAX_SAMPLES = 100_000  # evaluation and live-metric images
MAX_N_CRITIC = 100
MAX_ROLLBACKS = 100
MAX_COUNT = 2**53  # steps, images and intervals: integers JSON keeps exact everywhere
MAX_DOCTOR_WINDOW = 1_000
# The keys a checkpoint fixes: a resumed run must keep them (engine.train.resume); every other key may change.
CHECKPOINT_FIXED = ("model.name", "model.options", "data.resolution", "data.spec", "train.seed")


@dataclass
class DataConfig:
    """Where the images come from and how they are augmented."""

    spec: str = "builtin:faces"
    resolution: int = 64
    flip: bool = True
    rotate_degrees: float = 0.0
    diffaugment: str = ""  # comma list of: color, translation, cutout
    augment_p: float = 1.0  # probability that DiffAugment transforms an image (drawn per image, as in ADA)


@dataclass
class ModelConfig:
    """A registry model name plus its options (validated by the model's own options class)."""

    name: str = "dcgan"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    """Adversarial loss: 'bce' (non-saturating), 'hinge' or 'wgan-gp' (Wasserstein + gradient penalty)."""

    kind: str = "bce"
    label_smoothing: float = 0.0  # one-sided: real targets become 1 - label_smoothing
    gp_weight: float = 10.0  # λ of the gradient penalty (wgan-gp only)
    gamma: float = 0.05  # γ of the zero-centred R1 (real) + R2 (fake) penalties, γ/2·E‖∇D‖² (rpgan only)
    penalty_every: int = 1  # lazy R1 + R2: on every k-th D update only, weighted k (Karras et al. 2020; rpgan)


@dataclass
class OptimConfig:
    """Adam for G and D with separate learning rates (TTUR), n_critic and EMA of G."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 1
    ema_halflife_images: float = 10_000.0
    ema_rampup: float = 0.05  # half-life is at most this fraction of images seen; 0 disables
    lr_scaling: str = "none"  # none | sqrt | linear: scale lr_g/lr_d by (batch_size / reference_batch)^(½ or 1)
    reference_batch: int = 64  # the batch size the learning rates were tuned for


@dataclass
class MetricsConfig:
    """Evaluation during training (0 = off), the live SWD and FID, and where the Inception weights live offline.

    The live metric is SWD on ``live_samples`` EMA-generator images (0 = off) against a fixed subset
    of the training images, run as often as keeps it within ``live_budget`` of the training time. With
    ``live_fid``, where the Inception network is on the machine (no download is tried), FID-1k runs
    beside it: on CUDA every ``live_fid_every_images`` images, elsewhere only as often as keeps it within
    ``live_fid_budget``. The best checkpoint follows the live FID once it has run, else the live SWD,
    when ``every_images`` is 0.
    """

    every_images: int = 0
    names: list[str] = field(default_factory=lambda: ["swd"])
    num_samples: int = 2_000
    best_metric: str = "swd"
    inception_weights: str = ""
    live_samples: int = 256
    live_budget: float = 0.05
    live_fid: bool = True
    live_fid_every_images: int = 50_000
    live_fid_budget: float = 0.10


@dataclass
class TrainConfig:
    """Loop settings: batch, stop conditions, device and what gets written how often."""

    batch_size: int = 64
    max_steps: int = 0  # 0 = no limit
    max_images: int = 0
    max_seconds: float = 0.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 elsewhere) | fp32 | bf16
    memory_format: str = "auto"  # auto (CUDA: channels_last; CPU: the faster, timed) | channels_last | contiguous
    log_every: int = 20  # steps
    grid_every: int = 200  # steps
    checkpoint_every: int = 500  # steps
    keep_checkpoints: int = 3
    grid_size: int = 64  # fixed latents shown in progress grids
    sync_batchnorm: bool = False
    deterministic: bool = False  # bit-exact reruns on CUDA (deterministic kernels, no autotuning)
    init_from: str = ""  # start from these weights: a run, a checkpoint .json or an exported generator
    compile: str = "off"  # off | default | reduce-overhead (CUDA graphs) | max-autotune: torch.compile G and D
    on_divergence: str = "stop"  # stop | rollback (restore the last finite checkpoint with halved learning rates)
    max_rollbacks: int = 3  # rollbacks before a diverging run stops anyway


@dataclass
class DoctorConfig:
    """The training doctor (engine.doctor): diagnoses from the statistics logged anyway and from the progress
    grid's images, written to the run's findings.json. A finding on the losses must hold over ``window``
    training lines (and be gone over as many to be closed), one on the generated images over ``probes``
    progress grids. The nearest-training-image check runs for datasets of at most ``nearest_max_images``
    images (0 = never)."""

    enabled: bool = True
    window: int = 10
    probes: int = 3
    nearest_max_images: int = 5_000


@dataclass
class Ramp:
    """One scheduled value: from the value its key holds (at image 0) to ``final`` (at the schedule's
    horizon), along ``shape``; ``constant`` keeps the key's value throughout."""

    shape: str = "constant"  # constant | linear | cosine
    final: float = 0.0


@dataclass
class ScheduleConfig:
    """Ramps of hyper-parameters over the images seen, each named after the key it ramps (``SCHEDULED``).

    Each value is a pure function of the images seen, so a resumed run continues exactly where it
    stopped. The horizon ``images`` = 0 is the run's limit: train.max_images or train.max_steps × batch
    (the earlier); past it every value stays at its ``final``."""

    images: int = 0
    lr_g: Ramp = field(default_factory=Ramp)
    lr_d: Ramp = field(default_factory=Ramp)
    beta2: Ramp = field(default_factory=Ramp)
    gamma: Ramp = field(default_factory=Ramp)
    gp_weight: Ramp = field(default_factory=Ramp)
    ema_halflife_images: Ramp = field(default_factory=Ramp)
    augment_p: Ramp = field(default_factory=Ramp)


# The key each ramp of ScheduleConfig starts from, by the ramp's name.
SCHEDULED = {"lr_g": "optim.lr_g", "lr_d": "optim.lr_d", "beta2": "optim.beta2", "gamma": "loss.gamma",
             "gp_weight": "loss.gp_weight", "ema_halflife_images": "optim.ema_halflife_images",
             "augment_p": "data.augment_p"}


@dataclass
class Config:
    """Root of the configuration tree."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    doctor: DoctorConfig = field(default_factory=DoctorConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        return dataclass_from_dict(cls, data, "config")

    @classmethod
    def from_json(cls, text: str) -> "Config":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        return cls.from_json(text)

    def validate(self) -> None:
        """Check every field's type and range; the first bad one raises a one-line ConfigError naming
        its key, its value and what is allowed. The names registries own — the model and its options, the
        loss kind, metric names — are checked by them (engine.models.check_model_config, check_model_size;
        engine.metrics), which this base module cannot import."""
        _validate_fields(self, "")
        _check_schedule(self)

    def scheduled(self) -> dict[str, Ramp]:
        """The ramps that change their value (shape other than constant), by name."""
        return {name: ramp for name in SCHEDULED if (ramp := getattr(self.schedule, name)).shape != "constant"}

    def schedule_horizon(self) -> int | None:
        """The images the ramps run over: schedule.images, else the run's image or step limit (the
        earlier); None when there is neither."""
        if self.schedule.images:
            return self.schedule.images
        limits = [n for n in (self.train.max_images, self.train.max_steps * self.train.batch_size) if n]
        return min(limits) if limits else None


def _validate_fields(part: Any, prefix: str) -> None:
    """Type and RULES checks of every field of dataclass ``part``, nested dataclasses included."""
    hints = typing.get_type_hints(type(part))
    for item in dataclasses.fields(part):
        key, value, hint = f"{prefix}{item.name}", getattr(part, item.name), hints[item.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if not isinstance(value, hint):
                raise ConfigError(f"{key} must be a {hint.__name__}, got {value!r}")
            _validate_fields(value, f"{key}.")
            continue
        _coerce(hint, value, key)
        if key in RULES:
            RULES[key](key, value)


def _check_schedule(config: Config) -> None:
    """What the single-field rules cannot see: a ramp needs a horizon, and DiffAugment's probability
    needs DiffAugment."""
    ramps = config.scheduled()
    if ramps and config.schedule_horizon() is None:
        name = next(iter(ramps))
        raise ConfigError(f"schedule.images must be set when a value is scheduled (schedule.{name} is "
                          f"{ramps[name].shape}) and the run has no train.max_images or train.max_steps: set "
                          "schedule.images to the images the ramps run over, or an image or step limit")
    if config.data.diffaugment.strip():
        return
    if config.data.augment_p < 1:
        raise ConfigError(f"data.augment_p must stay 1 without DiffAugment, got {config.data.augment_p:g}: choose its "
                          "transforms (data.diffaugment=color,translation,cutout) or set data.augment_p=1")
    if "augment_p" in ramps:
        raise ConfigError("schedule.augment_p.shape must be constant without DiffAugment, got "
                          f"{ramps['augment_p'].shape!r}: choose its transforms (data.diffaugment=color,translation,"
                          "cutout) or set schedule.augment_p.shape=constant")


def dataclass_from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a JSON-like dict, refusing unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return dataclass_from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list")
        return list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be an object")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint) or (
        hint is int and isinstance(value, bool)
    ):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")
    return value


def dotted_value(config: Config, key: str) -> Any:
    """The value at a dotted key such as 'loss.penalty_every' (ConfigError when there is none)."""
    target: Any = config
    for part in key.split("."):
        if not dataclasses.is_dataclass(target) or part not in {f.name for f in dataclasses.fields(target)}:
            raise ConfigError(f"unknown config key {key!r}")
        target = getattr(target, part)
    return target


def update_from_dotted(config: Config, key: str, value: Any) -> None:
    """Set e.g. 'optim.lr_g' or 'schedule.lr_g.shape' on a Config in place, with the same type checks as
    loading (a nested section takes an object: 'schedule.lr_g' = {"shape": "cosine", "final": 0})."""
    section, _, name = key.rpartition(".")
    try:
        target = dotted_value(config, section) if section else None
    except ConfigError:
        target = None
    if not dataclasses.is_dataclass(target) or name not in {f.name for f in dataclasses.fields(target)}:
        raise ConfigError(f"unknown config key {key!r}")
    hints = typing.get_type_hints(type(target))
    setattr(target, name, _coerce(hints[name], value, key))


# ----------------------------------------------------------------- value rules (Config.validate)

Rule = Callable[[str, Any], None]


def _ints(low: int, high: int = MAX_COUNT) -> Rule:
    def check(key: str, value: int) -> None:
        if not low <= value <= high:
            allowed = f"at least {low}" if high == MAX_COUNT and value < low else f"between {low} and {high}"
            raise ConfigError(f"{key} must be {allowed}, got {value}")
    return check


def _floats(low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False) -> Rule:
    lower = f"above {low:g}" if low_open else f"at least {low:g}"
    upper = "" if high == math.inf else f" and {'below' if high_open else 'at most'} {high:g}"

    def check(key: str, value: float) -> None:
        inside = (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
        if not (math.isfinite(value) and inside):
            raise ConfigError(f"{key} must be a finite number {lower}{upper}, got {value!r}")
    return check


def _one_of(choices: typing.Iterable[str]) -> Rule:
    allowed = tuple(choices)

    def check(key: str, value: str) -> None:
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    return check


def _not_empty(key: str, value: str) -> None:
    if not value.strip():
        raise ConfigError(f"{key} must not be empty")


def _device(key: str, value: str) -> None:
    if not DEVICE_PATTERN.fullmatch(value.strip().lower()):
        raise ConfigError(f"{key} must be auto, cpu, cuda, cuda:N or mps, got {value!r}")


def policy_names(text: str) -> tuple[str, ...]:
    """The DiffAugment transforms a data.diffaugment value names: 'color, translation' -> ('color', 'translation')."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _policy(key: str, value: str) -> None:
    unknown = [name for name in policy_names(value) if name not in DIFFAUGMENT_POLICIES]
    if unknown:
        raise ConfigError(f"{key} must be a comma list of {', '.join(DIFFAUGMENT_POLICIES)} (or empty), "
                          f"got {value!r}")


def _names(key: str, value: list[Any]) -> None:
    if not all(isinstance(name, str) and name.strip() for name in value):
        raise ConfigError(f"{key} must be a list of metric names (strings), got {value!r}")


def _option_keys(key: str, value: dict[Any, Any]) -> None:
    if not all(isinstance(name, str) for name in value):
        raise ConfigError(f"{key} must map option names (strings) to values, got {value!r}")


# Every field but the booleans and free-form paths (train.init_from, metrics.inception_weights).
RULES: dict[str, Rule] = {
    "data.spec": _not_empty,
    "data.resolution": _ints(MIN_RESOLUTION, MAX_RESOLUTION),
    "data.rotate_degrees": _floats(0, 180),
    "data.diffaugment": _policy,
    "data.augment_p": _floats(0, 1),
    "model.name": _not_empty,
    "model.options": _option_keys,
    "loss.kind": _not_empty,
    "loss.label_smoothing": _floats(0, MAX_LABEL_SMOOTHING, high_open=True),
    "loss.gp_weight": _floats(0),
    "loss.gamma": _floats(0),
    "loss.penalty_every": _ints(1, MAX_N_CRITIC),
    "optim.lr_g": _floats(0, 1, low_open=True),
    "optim.lr_d": _floats(0, 1, low_open=True),
    "optim.beta1": _floats(0, 1, high_open=True),
    "optim.beta2": _floats(0, 1, high_open=True),
    "optim.n_critic": _ints(1, MAX_N_CRITIC),
    "optim.ema_halflife_images": _floats(0),
    "optim.ema_rampup": _floats(0),
    "optim.lr_scaling": _one_of(LR_SCALINGS),
    "optim.reference_batch": _ints(1, MAX_BATCH_SIZE),
    "train.batch_size": _ints(1, MAX_BATCH_SIZE),
    "train.max_steps": _ints(0),
    "train.max_images": _ints(0),
    "train.max_seconds": _floats(0),
    "train.seed": _ints(0, MAX_SEED),
    "train.device": _device,
    "train.precision": _one_of(PRECISIONS),
    "train.memory_format": _one_of(MEMORY_FORMATS),
    "train.log_every": _ints(1),
    "train.grid_every": _ints(1),
    "train.checkpoint_every": _ints(1),
    "train.keep_checkpoints": _ints(1),
    "train.grid_size": _ints(1, MAX_GRID_SIZE),
    "train.compile": _one_of(COMPILE_MODES),
    "train.on_divergence": _one_of(DIVERGENCE_ACTIONS),
    "train.max_rollbacks": _ints(0, MAX_ROLLBACKS),
    "metrics.every_images": _ints(0),
    "metrics.names": _names,
    "metrics.num_samples": _ints(1, MAX_SAMPLES),
    "metrics.best_metric": _not_empty,
    "metrics.live_samples": _ints(0, MAX_SAMPLES),
    "metrics.live_budget": _floats(0, 1, low_open=True),
    "metrics.live_fid_every_images": _ints(1),
    "metrics.live_fid_budget": _floats(0, 1, low_open=True),
    "doctor.window": _ints(2, MAX_DOCTOR_WINDOW),
    "doctor.probes": _ints(1, MAX_DOCTOR_WINDOW),
    "doctor.nearest_max_images": _ints(0),
}

# Each ramp's final value follows its key's rule, except that a learning rate may end at 0.
_RAMP_FINALS: dict[str, Rule] = {"lr_g": _floats(0, 1), "lr_d": _floats(0, 1), "beta2": _floats(0, 1, high_open=True),
                                 "gamma": _floats(0), "gp_weight": _floats(0), "ema_halflife_images": _floats(0),
                                 "augment_p": _floats(0, 1)}
RULES["schedule.images"] = _ints(0)
RULES.update({f"schedule.{name}.{item}": rule for name, final in _RAMP_FINALS.items()
              for item, rule in (("shape", _one_of(RAMP_SHAPES)), ("final", final))})
