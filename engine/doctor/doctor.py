"""The doctor of one run: fed every record the run writes, it runs the detectors of that record's kind and
keeps the findings (engine.base.findings) in findings.json, opening one when its detector first reports it
and closing it once the detector has stayed silent for as long as it takes to report one."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from engine.base import findings, records
from engine.base.files import atomic_write_json
from engine.base.findings import Finding
from engine.config import Config
from engine.doctor.curves import HOLD_EVALS, metric_plateau, metric_rising
from engine.doctor.history import Context, History
from engine.doctor.losses import d_overpowering, diverging, oscillation
from engine.doctor.probe import Probe
from engine.doctor.samples import augmentation_leak, memorisation, mode_collapse
from engine.runs import Run

log = logging.getLogger(__name__)
Detector = Callable[[History, Context], Finding | None]
# The detectors run when a record of their kind arrives, each with the kind of finding it reports.
DETECTORS: dict[str, tuple[tuple[str, Detector], ...]] = {
    records.TRAIN: ((findings.D_OVERPOWERING, d_overpowering), (findings.OSCILLATION, oscillation),
                    (findings.DIVERGING, diverging)),
    records.PROBE: ((findings.MODE_COLLAPSE, mode_collapse), (findings.MEMORISATION, memorisation),
                    (findings.AUGMENTATION_LEAK, augmentation_leak)),
    records.EVAL: ((findings.METRIC_RISING, metric_rising), (findings.METRIC_PLATEAU, metric_plateau)),
}


def describe(finding: Finding) -> str:
    """One line: title, step, explanation and the suggested changes."""
    changes = "; ".join(f"{s.key}={json.dumps(s.value)}" for s in finding.suggestions if s.value is not None)
    return (f"{finding.title} (since step {finding.first_step:,}): {finding.explanation}"
            + (f" Try: {changes}." if changes else ""))


class Doctor:
    """Diagnoses one run from its records. ``path``: the findings.json it keeps (None: in memory only);
    ``real_images``: the training images the probe compares grid images with (None: no probe)."""

    def __init__(self, config: Config, model_kind: str = records.ADVERSARIAL, path: Path | None = None,
                 real_images: np.ndarray | None = None) -> None:
        self.context = Context(config, model_kind)
        self.history = History()
        self.findings: list[Finding] = []
        self.path = path
        self.announce = True
        self.step = 0
        self._silent: dict[str, int] = {}
        self._real_images = real_images
        self._probe: Probe | None = None

    def replay(self, lines: Iterable[Mapping[str, Any]]) -> list[Finding]:
        """Feed a run's earlier records without announcing what they show; write findings.json once."""
        self.announce = False
        try:
            for line in lines:
                self.observe(line, write=False)
        finally:
            self.announce = True
        self.write()
        return self.findings

    def observe(self, line: Mapping[str, Any], write: bool = True) -> list[Finding]:
        """Take one record (a metrics.jsonl line); returns the findings it opened (each logged as a warning)."""
        line = {k: v for k, v in line.items() if not (isinstance(v, float) and not math.isfinite(v))}
        record = records.parse(line)
        if record is None:
            return []
        self.history.add(record)
        self.step = max(self.step, record.step)
        before = [f.to_dict() for f in self.findings]
        opened = [f for kind, detect in DETECTORS.get(line[records.KIND], ())
                  if (f := self._check(kind, detect, record.step, line[records.KIND])) is not None]
        if write and [f.to_dict() for f in self.findings] != before:
            self.write()
        return opened

    def _check(self, kind: str, detect: Detector, step: int, source: str) -> Finding | None:
        """Run one detector and update its finding; the finding it opened, if it opened one."""
        found = detect(self.history, self.context)
        index = next((i for i, f in enumerate(self.findings) if f.kind == kind and f.active), None)
        if found is not None:
            self._silent[kind] = 0
            if index is not None:
                self.findings[index] = replace(found, first_step=self.findings[index].first_step)
                return None
            self.findings.append(found)
            if self.announce:
                log.warning("%s", describe(found))
            return found
        if index is not None:
            self._silent[kind] = self._silent.get(kind, 0) + 1
            if self._silent[kind] >= self._hold(source):
                self.findings[index] = self.findings[index].resolved(step)
        return None

    def _hold(self, source: str) -> int:
        """How many silent checks in a row close a finding: as many as it takes to report one."""
        return {records.TRAIN: self.context.window, records.PROBE: self.context.probes}.get(source, HOLD_EVALS)

    def probe(self, images: np.ndarray, batch: np.ndarray | None = None) -> dict[str, float]:
        """The probe's values for the grid images and a batch from fresh latents (built at the first grid, off
        the start-up path)."""
        if self._real_images is None:
            return {}
        if self._probe is None:
            config = self.context.config
            self._probe = Probe(self._real_images, config.doctor.nearest_max_images, config.data.flip)
        return self._probe(images, batch)

    def write(self) -> None:
        if self.path is not None:
            atomic_write_json(self.path, findings.findings_to_json(self.findings, self.step))


def diagnose(run: Run) -> list[Finding]:
    """The findings of a run, worked out afresh from its records and its config as it is now (read-only:
    nothing is written)."""
    doctor = Doctor(run.config(), run.model_kind() or records.ADVERSARIAL)
    return doctor.replay(run.metrics())
