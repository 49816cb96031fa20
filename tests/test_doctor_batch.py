"""The doctor's second view of mode collapse: a batch of samples from latents drawn afresh at each progress
grid, besides the grid's fixed latents; drawn from its own generator, so the training is the same with the
doctor on or off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.base import findings, records
from engine.doctor import Doctor
from engine.runs import Run
from engine.train import Trainer
from tests.conftest import tiny_config


def probe_line(step: int, **values: float) -> dict[str, object]:
    return {"kind": "probe", "step": step, "images": step * 16, "time": step / 10, **values}


def test_a_collapse_seen_only_in_the_fresh_batch_is_found_and_says_where() -> None:
    varied = {"diversity": 0.4, "distinct": 0.5}
    doctor = Doctor(tiny_config())
    for step in range(20, 80, 20):
        doctor.observe(probe_line(step, **varied, batch_diversity=0.4, batch_distinct=0.5))
    assert doctor.findings == []
    for step in range(80, 140, 20):
        doctor.observe(probe_line(step, **varied, batch_diversity=0.4, batch_distinct=0.03))
    (found,) = doctor.findings
    assert found.kind == findings.MODE_COLLAPSE and "fresh latents" in found.explanation
    assert found.evidence["distance to the nearest other fresh batch image (× training images')"] == 0.03
    assert found.evidence["highest fresh batch diversity so far"] == 0.4


def test_probe_lines_hold_the_fresh_batch_and_the_training_is_the_same_with_the_doctor_off(tmp_path: Path) -> None:
    on = Trainer(tiny_config(max_steps=12, grid_every=6, memory_format="contiguous"), tmp_path / "on")
    on.train()
    probes = records.probe_records(Run(tmp_path / "on").metrics())
    assert len(probes) == 3
    for probe in probes:
        assert {records.BATCH_DIVERSITY, records.BATCH_DISTINCT} <= set(probe.values)
        assert probe.values[records.BATCH_DIVERSITY] != probe.values[records.DIVERSITY]
    again = on._fresh_samples(16)
    assert np.array_equal(again, on._fresh_samples(16))  # seeded by the step: the same draw at the same step
    off_config = tiny_config(max_steps=12, grid_every=6, memory_format="contiguous")  # one layout for both
    off_config.doctor.enabled = False
    off = Trainer(off_config, tmp_path / "off")
    off.train()
    for mine, theirs in ((on.G, off.G), (on.D, off.D)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
