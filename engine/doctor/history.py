"""What the detectors read: the run's records so far (typed, by kind) and the run's settings."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Sequence

from engine.base import records
from engine.base.records import EvalRecord, ProbeRecord, TrainRecord
from engine.config import Config, policy_names

# Losses whose D outputs are probabilities (D(x) → 1 and D(G(z)) → 0 when D wins), and those whose D loss
# is 0 at its minimum (D wins when it reaches it); the others (wgan-gp, rpgan) have neither reading.
PROBABILITY_LOSSES = ("bce",)
ZERO_MINIMUM_LOSSES = ("hinge", "least-squares")


@dataclass
class History:
    """The records a run has written so far, in order, by kind, and each probe value's highest so far. Checks
    read from the end, so that one costs the same however long the run (a resumed run replays them all)."""

    train: list[TrainRecord] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)
    probes: list[ProbeRecord] = field(default_factory=list)
    peaks: dict[str, float] = field(default_factory=dict)

    def add(self, record: records.Record) -> None:
        if isinstance(record, TrainRecord):
            self.train.append(record)
        elif isinstance(record, EvalRecord):
            self.evals.append(record)
        elif isinstance(record, ProbeRecord):
            self.probes.append(record)
            for key, value in record.values.items():
                self.peaks[key] = max(value, self.peaks.get(key, value))

    def series(self, key: str, last: int) -> list[float]:
        """The values of training statistic ``key`` in the last ``last`` training lines that hold it, in order."""
        return _tail(self.train, key, last)

    def probe_series(self, key: str, last: int) -> list[float]:
        """The values of probe measure ``key`` in the last ``last`` probe lines that hold it, in order."""
        return _tail(self.probes, key, last)


def _tail(lines: Sequence[TrainRecord | ProbeRecord], key: str, last: int) -> list[float]:
    values: list[float] = []
    for record in reversed(lines):
        if len(values) == last:
            break
        if key in record.values:
            values.append(record.values[key])
    return values[::-1]


@dataclass(frozen=True)
class Context:
    """The run as the detectors see it: its config (read when a detector runs, so a rollback's halved
    learning rates count) and how its model trains (``records.MODEL_KINDS``)."""

    config: Config
    model_kind: str = records.ADVERSARIAL

    @property
    def window(self) -> int:
        return self.config.doctor.window

    @property
    def probes(self) -> int:
        return self.config.doctor.probes

    @property
    def loss(self) -> str:
        return self.config.loss.kind

    def policy(self) -> tuple[str, ...]:
        """DiffAugment's transforms in use."""
        return policy_names(self.config.data.diffaugment)


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def halves(values: Sequence[float]) -> tuple[float, float]:
    """Mean of the first and of the second half of ``values``."""
    middle = len(values) // 2
    return mean(values[:middle]), mean(values[middle:])


def reversals(values: Sequence[float]) -> int:
    """How often the series changes direction."""
    steps = [b - a for a, b in zip(values, values[1:]) if b != a]
    return sum(1 for a, b in zip(steps, steps[1:]) if (a > 0) != (b > 0))
