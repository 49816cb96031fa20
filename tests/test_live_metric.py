"""The live SWD: what it measures, when it runs, that it never changes training, and what it ranks."""

import json

import numpy as np
import pytest
import torch

from engine.config import ConfigError
from engine.data import load_dataset
from engine.metrics import live
from engine.metrics.live import LiveSchedule, LiveSWD
from engine.runs import Run
from engine.train import Trainer
from tests.conftest import tiny_config

CPU = torch.device("cpu")


def _from(images: np.ndarray):
    return lambda count, first: images[first:first + count]


def _blurred(images: np.ndarray, factor: int) -> np.ndarray:
    n, size = len(images), images.shape[1] // factor
    means = images.reshape(n, size, factor, size, factor, 3).mean(axis=(2, 4))
    return means.repeat(factor, 1).repeat(factor, 2).astype(np.uint8)


def test_live_swd_ranks_real_images_above_blur_and_noise():
    faces = load_dataset("builtin:faces:1300", 32).images
    metric = LiveSWD(faces[:1024], 256, CPU)
    held_out = faces[1024:1280]
    noise = np.random.default_rng(0).integers(0, 256, held_out.shape, dtype=np.uint8)
    real, blur2, blur4, random = (metric(_from(images)) for images in
                                  (held_out, _blurred(held_out, 2), _blurred(held_out, 4), noise))
    assert metric.key == "swd_256"
    assert real < 0.8 * blur2 and blur2 < 0.8 * blur4 and 2 * blur4 < random
    assert metric(_from(held_out)) == real  # fixed real subset, patches and directions: repeatable


def test_schedule_first_at_a_log_step_then_within_the_budget_with_a_floor():
    schedule = LiveSchedule(budget=0.05)
    assert not schedule.due(3.0, log_step=False) and schedule.due(3.0, log_step=True)
    schedule.done(3.0, cost=1.5, setup=0.5)  # 2 s spent, 1.5 s more expected: 3.5 s is 5 % of 70 s
    assert not schedule.due(69.9, log_step=True) and schedule.due(70.0, log_step=False)
    schedule.done(70.0, cost=0.1)  # cheap now: 3.6 s fits in 5 % of 72 s, but MIN_INTERVAL apart
    assert schedule.next_due == 70.0 + live.MIN_INTERVAL
    schedule.done(80.0, cost=2.0)  # dearer again: 4.1 s spent + 2 s expected is 5 % of 122 s
    assert schedule.next_due == pytest.approx(122.0)
    restored = LiveSchedule(budget=0.05)
    restored.load_state_dict(json.loads(json.dumps(schedule.state_dict())))
    assert restored.state_dict() == schedule.state_dict()


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    tensors = {f"{prefix}.{k}": v for prefix, module in trainer._modules().items()
               for k, v in module.state_dict().items()}
    for name, opt in (("opt_G", trainer.opt_g), ("opt_D", trainer.opt_d)):
        for index, state in opt.state_dict()["state"].items():
            tensors.update({f"{name}.{index}.{k}": v for k, v in state.items()})
    return tensors


def test_live_metric_leaves_training_unchanged_and_picks_the_best(tmp_path, monkeypatch):
    monkeypatch.setattr(live, "MIN_INTERVAL", 0.0)  # evaluate every step it is due: many times in 20 steps

    def config(samples):
        cfg = tiny_config(max_steps=20, memory_format="contiguous")
        cfg.data.diffaugment = "color,translation"
        cfg.metrics.live_samples, cfg.metrics.live_budget = samples, 1.0
        return cfg

    with_live = Trainer(config(32), tmp_path / "on")
    with_live.train()
    without = Trainer(config(0), tmp_path / "off")
    without.train()
    a, b = _weights(with_live), _weights(without)
    assert a.keys() == b.keys() and not [k for k in a if not torch.equal(a[k], b[k])]

    records = [r for r in Run(tmp_path / "on").metrics() if r.get("live")]
    assert len(records) >= 3 and records[0]["step"] == 5  # the first at the first log step
    assert all(r["kind"] == "eval" and r["swd_32"] > 0 and {"step", "images", "time"} <= r.keys() for r in records)
    assert not [r for r in Run(tmp_path / "off").metrics() if r["kind"] == "eval"]
    best = json.loads((tmp_path / "on" / "checkpoints" / "best.json").read_text())["best"]
    assert best["key"] == "swd_32" and best["value"] == min(r["swd_32"] for r in records)
    assert best["step"] == next(r["step"] for r in records if r["swd_32"] == best["value"])


def test_resume_continues_the_live_schedule(tmp_path):
    Trainer(tiny_config(max_steps=10), tmp_path / "run").train()
    meta = json.loads(Run(tmp_path / "run").latest_checkpoint().read_text())
    assert meta["live"]["next_due"] is not None  # one evaluation ran at step 5
    resumed = Trainer(tiny_config(max_steps=15), tmp_path / "run", resume=True)
    assert resumed.live_schedule.state_dict() == meta["live"]


@pytest.mark.parametrize("key, value, message", [("live_samples", -1, "live_samples"),
                                                 ("live_budget", 0.0, "live_budget"),
                                                 ("live_budget", 1.5, "live_budget")])
def test_unusable_live_settings_are_clear_errors(tmp_path, key, value, message):
    config = tiny_config()
    setattr(config.metrics, key, value)
    with pytest.raises(ConfigError, match=message):
        Trainer(config, tmp_path / "run")
