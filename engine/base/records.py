"""The schema of a run's metrics.jsonl: one JSON object a line, of three kinds.

- training lines (``TRAIN``): the bookkeeping keys, the step statistics averaged over the log window
  (``ADVERSARIAL_STATS``, or ``AUTOENCODER_STATS`` for an autoencoder; ``D_AUX`` with a self-supervised D,
  ``GROWTH_STATS`` for a growing model), the speed, the learning rates, and the other values a schedule
  ramps (``SCHEDULED``: only those whose ramp is not constant);
- evaluation lines (``EVAL``): the bookkeeping keys and one value per metric result key ('fid_2k');
  ``LIVE`` on the live metric's lines, ``SOURCE`` and ``CHECKPOINT`` on `python -m engine metrics`'s;
- event lines (``EVENT``): what the trainer did when training diverged (``ROLLBACK``, ``DIVERGENCE``);
- probe lines (``PROBE``): what the training doctor measured on a progress grid's images (``PROBE_KEYS``).

A NaN or infinite value is left out of its line and its key listed under ``NONFINITE``. Writers and
readers use these names, and read lines through the typed records below. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, TypeGuard

# Record kinds: the value of KIND.
TRAIN, EVAL, EVENT, PROBE = "train", "eval", "event", "probe"
KINDS = (TRAIN, EVAL, EVENT, PROBE)

# Bookkeeping keys. Every line has KIND, STEP, IMAGES and TIME (train_seconds).
KIND, STEP, IMAGES, TIME = "kind", "step", "images", "time"
WALL = "wall"  # training lines: seconds since the run was first launched, start-up included
LIVE = "live"  # evaluation lines of the live metric (true; absent on periodic evaluations)
ERRORS = "errors"  # evaluation lines: {metric name: why it was not computed}
SOURCE, CHECKPOINT = "source", "checkpoint"  # evaluation lines of the metrics CLI: CLI_SOURCE, checkpoint file
CLI_SOURCE = "cli"
NONFINITE = "nonfinite"  # keys left out of the line because their value was NaN or infinite
BOOKKEEPING = (KIND, STEP, IMAGES, TIME, WALL, LIVE, ERRORS, SOURCE, CHECKPOINT, NONFINITE)

# Training statistics.
LOSS_G, LOSS_D = "loss_g", "loss_d"
D_REAL, D_FAKE = "d_real", "d_fake"  # mean D output on real and generated images (prior draws and codes)
RECON = "recon"  # an autoencoder's reconstruction loss
D_AUX = "d_aux"  # a self-supervised discriminator's auxiliary loss (FastGAN)
STAGE_RESOLUTION, ALPHA = "stage_resolution", "alpha"  # a growing model's stage and fade-in (progressive GAN)
IMG_PER_SEC, LR_G, LR_D = "img_per_sec", "lr_g", "lr_d"
# Scheduled values (named as the ramps of the config's schedule section), at the log step's last step: the
# learning rates as the optimisers use them (batch scaling included), Adam β2, the penalty weights γ
# (R1 + R2) and λ (gradient penalty), the EMA half-life and DiffAugment's probability.
BETA2, GAMMA, GP_WEIGHT = "beta2", "gamma", "gp_weight"
EMA_HALFLIFE, AUGMENT_P = "ema_halflife_images", "augment_p"
SCHEDULED = (LR_G, LR_D, BETA2, GAMMA, GP_WEIGHT, EMA_HALFLIFE, AUGMENT_P)
ADVERSARIAL_STATS = (LOSS_G, LOSS_D, D_REAL, D_FAKE)
AUTOENCODER_STATS = (LOSS_G, LOSS_D, D_REAL, D_FAKE, RECON)
GROWTH_STATS = (STAGE_RESOLUTION, ALPHA)

# How a model trains (its training step): adversarial, D judging images, or an adversarial autoencoder,
# D judging latent codes. It says which statistics a training line holds and how they read.
ADVERSARIAL, AUTOENCODER = "adversarial", "autoencoder"
MODEL_KINDS = (ADVERSARIAL, AUTOENCODER)
LOSSES = {ADVERSARIAL: (LOSS_G, LOSS_D, D_AUX), AUTOENCODER: (LOSS_G, RECON, LOSS_D)}  # the losses logged, in order
D_OUTPUTS = (D_REAL, D_FAKE)

# Event lines: EVENT_NAME says which; DIVERGED_AT the step that went non-finite, DETAIL what did;
# a rollback adds the halved LR_G and LR_D and how many ROLLBACKS so far.
EVENT_NAME, DIVERGED_AT, DETAIL, ROLLBACKS = "event", "diverged_at", "detail", "rollbacks"
ROLLBACK, DIVERGENCE = "rollback", "divergence"
EVENTS = (ROLLBACK, DIVERGENCE)

# Probe lines (engine.doctor.probe), each relative to the same measure on training images: DIVERSITY the grid's
# mean pairwise pixel distance (1 = as varied as the training images), DISTINCT the median distance of a grid
# image to its nearest other grid image (1 = as far apart as as many training images), NEAREST the median
# distance of a grid image to its nearest training image (1 = as far as training images are from each other;
# small datasets only), PATCHED the share of grid images with a grey band or square (DiffAugment's fill)
# minus the share of training images with one; BATCH_DIVERSITY and BATCH_DISTINCT the same as DIVERSITY and
# DISTINCT on a batch of as many samples from latents drawn afresh at each grid.
DIVERSITY, DISTINCT, NEAREST, PATCHED = "diversity", "distinct", "nearest", "patched"
BATCH_DIVERSITY, BATCH_DISTINCT = "batch_diversity", "batch_distinct"
PROBE_KEYS = (DIVERSITY, DISTINCT, NEAREST, PATCHED, BATCH_DIVERSITY, BATCH_DISTINCT)

_LABELS = {LOSS_G: "G loss", LOSS_D: "D loss", D_REAL: "D(x)", D_FAKE: "D(G(z))", D_AUX: "D self-supervised loss",
           RECON: "Reconstruction", STAGE_RESOLUTION: "Stage resolution (px)", ALPHA: "Fade-in α",
           IMG_PER_SEC: "img/s", LR_G: "Learning rate G", LR_D: "Learning rate D", BETA2: "Adam β2",
           GAMMA: "Penalty weight γ", GP_WEIGHT: "Gradient penalty λ", EMA_HALFLIFE: "EMA half-life (images)",
           AUGMENT_P: "DiffAugment probability", DIVERSITY: "Grid diversity (× training images')",
           DISTINCT: "Nearest other grid image (× training images')",
           NEAREST: "Nearest training image (× their spacing)", PATCHED: "Grey patches (share above training)",
           BATCH_DIVERSITY: "Fresh batch diversity (× training images')",
           BATCH_DISTINCT: "Nearest other image of a fresh batch (× training images')"}
_AUTOENCODER_LABELS = {LOSS_G: "Autoencoder loss", LOSS_D: "Latent D loss", D_REAL: "D(prior z)", D_FAKE: "D(E(x))"}


def stat_label(key: str, model_kind: str = ADVERSARIAL) -> str:
    """'loss_g' -> 'G loss' ('Autoencoder loss' for a model of kind AUTOENCODER); an unknown key as it is."""
    if model_kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {model_kind!r}: use one of {', '.join(MODEL_KINDS)}")
    labels = _LABELS | _AUTOENCODER_LABELS if model_kind == AUTOENCODER else _LABELS
    return labels.get(key, key)


@dataclass(frozen=True)
class TrainRecord:
    """A training line: ``values`` holds its statistics (losses, D outputs, speed, learning rates, growth) and
    scheduled values."""

    step: int
    images: int
    time: float
    wall: float | None = None
    values: Mapping[str, float] = field(default_factory=dict)
    nonfinite: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TrainRecord:
        return cls(_int(record, STEP), _int(record, IMAGES), _float(record, TIME), _number(record.get(WALL)),
                   _values(record), tuple(record.get(NONFINITE, ())))

    def to_dict(self) -> dict[str, Any]:
        line = {KIND: TRAIN, STEP: self.step, IMAGES: self.images, TIME: self.time, **self.values}
        return line | ({} if self.wall is None else {WALL: self.wall}) | _listed(NONFINITE, list(self.nonfinite))


@dataclass(frozen=True)
class EvalRecord:
    """An evaluation line: ``values`` maps metric result keys ('fid_2k', 'swd_256') to numbers."""

    step: int
    images: int
    time: float
    values: Mapping[str, float] = field(default_factory=dict)
    live: bool = False
    errors: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    checkpoint: str | None = None
    nonfinite: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> EvalRecord:
        return cls(_int(record, STEP), _int(record, IMAGES), _float(record, TIME), _values(record),
                   bool(record.get(LIVE)), dict(record.get(ERRORS) or {}), record.get(SOURCE), record.get(CHECKPOINT),
                   tuple(record.get(NONFINITE, ())))

    def to_dict(self) -> dict[str, Any]:
        line = {KIND: EVAL, STEP: self.step, IMAGES: self.images, TIME: self.time, **self.values}
        return (line | ({LIVE: True} if self.live else {}) | _listed(ERRORS, dict(self.errors))
                | _listed(SOURCE, self.source) | _listed(CHECKPOINT, self.checkpoint)
                | _listed(NONFINITE, list(self.nonfinite)))


@dataclass(frozen=True)
class EventRecord:
    """An event line: a rollback (with the halved learning rates) or a divergence that ended the run."""

    event: str
    step: int
    images: int
    time: float
    diverged_at: int | None = None
    detail: str = ""
    lr_g: float | None = None
    lr_d: float | None = None
    rollbacks: int | None = None

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> EventRecord:
        rollbacks, diverged_at = record.get(ROLLBACKS), record.get(DIVERGED_AT)
        return cls(str(record.get(EVENT_NAME, "")), _int(record, STEP), _int(record, IMAGES), _float(record, TIME),
                   None if diverged_at is None else int(diverged_at), str(record.get(DETAIL, "")),
                   _number(record.get(LR_G)), _number(record.get(LR_D)), None if rollbacks is None else int(rollbacks))

    def to_dict(self) -> dict[str, Any]:
        line = {KIND: EVENT, EVENT_NAME: self.event, STEP: self.step, IMAGES: self.images, TIME: self.time}
        optional = {DIVERGED_AT: self.diverged_at, DETAIL: self.detail or None, LR_G: self.lr_g, LR_D: self.lr_d,
                    ROLLBACKS: self.rollbacks}
        return line | {key: value for key, value in optional.items() if value is not None}


@dataclass(frozen=True)
class ProbeRecord:
    """A probe line: ``values`` maps ``PROBE_KEYS`` to what the doctor measured on the step's progress grid."""

    step: int
    images: int
    time: float
    values: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ProbeRecord:
        return cls(_int(record, STEP), _int(record, IMAGES), _float(record, TIME), _values(record))

    def to_dict(self) -> dict[str, Any]:
        return {KIND: PROBE, STEP: self.step, IMAGES: self.images, TIME: self.time, **self.values}


Record = TrainRecord | EvalRecord | EventRecord | ProbeRecord
_TYPES: dict[str, type[TrainRecord] | type[EvalRecord] | type[EventRecord] | type[ProbeRecord]] = {
    TRAIN: TrainRecord, EVAL: EvalRecord, EVENT: EventRecord, PROBE: ProbeRecord}


def parse(record: Mapping[str, Any]) -> Record | None:
    """The typed record of one line; None for a line of no known kind."""
    kind = record.get(KIND)
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    return cls.from_dict(record) if cls else None


def train_records(records: Iterable[Mapping[str, Any]]) -> list[TrainRecord]:
    """The training lines, in order."""
    return [TrainRecord.from_dict(r) for r in records if r.get(KIND) == TRAIN]


def eval_records(records: Iterable[Mapping[str, Any]], live: bool | None = None) -> list[EvalRecord]:
    """The evaluation lines, in order: all of them, or only the live metric's (``live=True``) or only
    the periodic evaluations' (``live=False``)."""
    found = [EvalRecord.from_dict(r) for r in records if r.get(KIND) == EVAL]
    return found if live is None else [r for r in found if r.live == live]


def events(records: Iterable[Mapping[str, Any]], name: str | None = None) -> list[EventRecord]:
    """The event lines, in order: all of them, or those of one event (``ROLLBACK``, ``DIVERGENCE``)."""
    found = [EventRecord.from_dict(r) for r in records if r.get(KIND) == EVENT]
    return found if name is None else [r for r in found if r.event == name]


def probe_records(records: Iterable[Mapping[str, Any]]) -> list[ProbeRecord]:
    """The probe lines, in order."""
    return [ProbeRecord.from_dict(r) for r in records if r.get(KIND) == PROBE]


def is_number(value: Any) -> TypeGuard[int | float]:
    """An int or float that is not a bool: what a record's values are."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _values(record: Mapping[str, Any]) -> dict[str, float]:
    return {k: v for k, v in record.items() if k not in BOOKKEEPING and is_number(v)}


def _number(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def _int(record: Mapping[str, Any], key: str) -> int:
    value = record.get(key)
    return int(value) if is_number(value) else 0


def _float(record: Mapping[str, Any], key: str) -> float:
    value = record.get(key)
    return float(value) if is_number(value) else 0.0


def _listed(key: str, value: Any) -> dict[str, Any]:
    return {key: value} if value else {}
