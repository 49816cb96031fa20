"""The live metrics (SWD, and FID-1k where the Inception network is here): what they measure, when they run, that
they never change training, and what they rank."""

import json

import numpy as np
import pytest
import torch

from engine.config import ConfigError, MetricsConfig
from engine.data import load_dataset
from engine.metrics import FeatureNet, evaluate, features, live, weights
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
                                                 ("live_budget", 1.5, "live_budget"),
                                                 ("live_fid_budget", 0.0, "live_fid_budget"),
                                                 ("live_fid_every_images", 0, "live_fid_every_images")])
def test_unusable_live_settings_are_clear_errors(tmp_path, key, value, message):
    config = tiny_config()
    setattr(config.metrics, key, value)
    with pytest.raises(ConfigError, match=message):
        Trainer(config, tmp_path / "run")


# ------------------------------------------------------------------ live FID


def test_live_fid_is_due_by_images_on_cuda_and_by_its_budget_elsewhere():
    cfg = MetricsConfig(live_fid_every_images=100)
    on_gpu = live.LiveFID(cfg, torch.device("cuda"))
    assert [n for n in range(32, 400, 32) if on_gpu.due(0.0, n, 32)] == [128, 224, 320]
    on_cpu = live.LiveFID(cfg, CPU)  # the probe waits until PROBE_SECONDS fit in 10 % of the training time
    assert not on_cpu.due(49.9, 10**6, 32) and on_cpu.due(50.0, 32, 32)
    assert not live.LiveFID(MetricsConfig(live_fid=False), torch.device("cuda")).due(1e9, 100, 100)

    schedule = LiveSchedule(budget=0.1, first_due=50.0)
    schedule.start(600.0)  # e.g. first probed when a run is resumed at 600 s: the budget counts from there
    schedule.done(600.0, cost=4.0, expected=400.0)  # a 4 s probe; FID-1k with the real side expected to take 400 s
    assert schedule.next_due == pytest.approx(600.0 + (4.0 + 400.0) / 0.1)
    schedule.done(schedule.next_due, cost=380.0, setup=20.0)  # it took 380 s, and 20 s for the real side
    assert schedule.next_due == pytest.approx(600.0 + (4.0 + 400.0 + 380.0) / 0.1)
    both = live.LiveSchedules(LiveSchedule(0.05), schedule)
    both.load_state_dict({"next_due": 7.0, "cost": 0.5, "spent": 1.0})  # a checkpoint from before the live FID
    assert both.state_dict() == {"next_due": 7.0, "cost": 0.5, "spent": 1.0, "fid": schedule.state_dict()}


class TinyInception(torch.nn.Module):
    """Stands in for the Inception network found on the machine: (pool features,), no classifier."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.tanh(torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)),)


@pytest.fixture
def found_network(tmp_path, monkeypatch):
    """A stand-in Inception network 'found' on this machine, with an empty statistics cache."""
    found = weights.Converted(tmp_path / "found.safetensors", "live-test-net", classifier=False)
    monkeypatch.setattr(weights, "resolve", lambda spec, explicit="", download=True: found)
    monkeypatch.setitem(features._NETS, features.INCEPTION,
                        lambda path, device: FeatureNet("live-test-net", TinyInception(), device, "no classifier"))
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))


def test_live_fid_on_a_cpu_probes_first_then_waits_for_its_budget(found_network):
    faces = load_dataset("builtin:faces:300", 32).images
    sample = _from(np.random.default_rng(0).integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8))
    metric = live.LiveFID(MetricsConfig(live_fid_budget=0.5), CPU)
    assert metric.due(live.PROBE_SECONDS / 0.5, 0, 32)
    assert metric(sample, faces, "faces", train_seconds=60.0) is None  # the probe: times the network, no FID yet
    schedule = metric.schedule
    probe_and_expected = schedule.spent - 0.5 * 60.0 + schedule.cost  # the budget counts from the probe on
    assert schedule.cost > 0 and schedule.next_due == pytest.approx(60.0 + max(probe_and_expected / 0.5, live.MIN_INTERVAL))
    assert not metric.due(schedule.next_due - 0.01, 0, 32) and metric.due(schedule.next_due, 0, 32)
    value = metric(sample, faces, "faces", train_seconds=schedule.next_due)
    expected = evaluate(["fid"], sample, faces, 1000, dataset_key="faces", device=CPU)["fid_1k"]
    assert metric.key == "fid_1k" and value == expected > 0  # the FID-1k of `python -m engine metrics --num 1k`


def test_live_fid_in_training_is_logged_and_the_best_follows_it(found_network, tmp_path):
    config = tiny_config(max_steps=12, memory_format="contiguous")
    config.metrics.live_samples = 32
    trainer = Trainer(config, tmp_path / "run")
    trainer.live_fid.every_images = 96  # as on CUDA: every 96 images (steps 6 and 12), whatever the timing
    trainer.train()
    records = [r for r in Run(tmp_path / "run").metrics() if r.get("live")]
    fids = [r for r in records if "fid_1k" in r]
    assert [r["step"] for r in fids] == [6, 12] and all(r["fid_1k"] > 0 for r in fids)
    assert records[0]["step"] == 5 and "swd_32" in records[0]  # SWD as before, from the first log step
    best = json.loads((tmp_path / "run" / "checkpoints" / "best.json").read_text())["best"]
    assert best["key"] == "fid_1k" and best["value"] == min(r["fid_1k"] for r in fids)


def test_without_the_network_the_live_metric_is_swd_as_before(tmp_path, monkeypatch):
    monkeypatch.setattr(live, "PROBE_SECONDS", 0.0)  # looks for the network at the first step
    config = tiny_config(max_steps=5)
    config.metrics.live_samples = 32
    trainer = Trainer(config, tmp_path / "run")
    trainer.train()
    assert weights.INCEPTION.file_name in trainer.live_fid.unavailable  # not found; never looked for again
    records = [r for r in Run(tmp_path / "run").metrics() if r["kind"] == "eval"]
    assert [set(r) for r in records] == [{"kind", "step", "images", "time", "live", "swd_32"}]
    best = json.loads((tmp_path / "run" / "checkpoints" / "best.json").read_text())["best"]
    assert best["key"] == "swd_32"
