import json
import os
import time

import numpy as np
import pytest
import torch

from engine import load_dataset, load_generator
from engine.expectations import expectation
from engine.runs import LAUNCH_ENV, Run
from engine.train import CheckpointError, StopFlag, Trainer, loop
from tests.conftest import tiny_config


def _moment_distance(fake: np.ndarray, real: np.ndarray) -> float:
    """Distance between per-pixel mean and std images: 0 when the two sets match in both."""
    f, r = fake.astype(np.float64) / 255, real.astype(np.float64) / 255
    return float(np.abs(f.mean(0) - r.mean(0)).mean() + np.abs(f.std(0) - r.std(0)).mean())


def _histogram_distance(fake: np.ndarray, real: np.ndarray) -> float:
    """L1 distance between 32-bin colour histograms, averaged over channels (0 to 2)."""
    def hist(x, c):
        return np.histogram(x[..., c], 32, (0, 256))[0] / x[..., c].size
    return float(np.mean([np.abs(hist(fake, c) - hist(real, c)).sum() for c in range(3)]))


def test_short_training_moves_samples_toward_the_data(tmp_path):
    config = tiny_config(max_steps=200, dataset="builtin:faces:512")
    config.model.options = {"ngf": 16, "ndf": 16}
    config.train.batch_size = 32
    config.train.log_every = 10
    config.optim.ema_halflife_images = 500
    trainer = Trainer(config, tmp_path / "run")
    real = load_dataset("builtin:faces:512", 32).images
    seeds = range(256)
    before = load_generator_from(trainer).sample(seeds=seeds)
    assert trainer.train() == "finished"
    after = load_generator(tmp_path / "run").sample(seeds=seeds)
    assert _histogram_distance(after, real) < 0.6 * _histogram_distance(before, real)
    assert _moment_distance(after, real) < 0.8 * _moment_distance(before, real)
    records = [r for r in Run(tmp_path / "run").metrics() if r["kind"] == "train"]
    assert [r["step"] for r in records] == list(range(10, 201, 10))
    assert all(np.isfinite(r["loss_g"]) and 0 <= r["d_real"] <= 1 for r in records)


def load_generator_from(trainer: Trainer):
    from engine.generator import Generator

    info = {"latent_dim": trainer.latent_dim, "resolution": 32, "model": "dcgan"}
    return Generator(trainer.ema.ema, info)


def _tensors(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v for k, v in trainer.G.state_dict().items()}
    out.update({f"D.{k}": v for k, v in trainer.D.state_dict().items()})
    out.update({f"E.{k}": v for k, v in trainer.ema.ema.state_dict().items()})
    for name, opt in (("oG", trainer.opt_g), ("oD", trainer.opt_d)):
        for idx, state in opt.state_dict()["state"].items():
            out.update({f"{name}.{idx}.{k}": v for k, v in state.items()})
    return out


def test_resume_equals_straight_run(tmp_path):
    def config(steps):
        cfg = tiny_config(max_steps=steps, checkpoint_every=7, memory_format="contiguous")  # one layout for both
        cfg.data.diffaugment = "color,translation,cutout"
        cfg.data.rotate_degrees = 5.0
        cfg.model.options["d_dropout"] = 0.2
        return cfg

    straight = Trainer(config(24), tmp_path / "straight")
    straight.train()
    first = Trainer(config(12), tmp_path / "split")
    first.train()
    resumed = Trainer(config(24), tmp_path / "split", resume=True)
    assert resumed.step == 12
    resumed.train()
    a, b = _tensors(straight), _tensors(resumed)
    assert a.keys() == b.keys()
    mismatched = [k for k in a if not torch.equal(a[k], b[k])]
    assert not mismatched, mismatched[:5]
    assert resumed.data.state_dict() == straight.data.state_dict()


def test_stop_request_finishes_step_and_checkpoints(tmp_path):
    trainer = Trainer(tiny_config(max_steps=1000), tmp_path / "run")
    flag = StopFlag()

    def stop_after_step_5(record):
        if record["step"] >= 5:
            Run(tmp_path / "run").request_stop()

    assert trainer.train(flag, on_log=stop_after_step_5) == "stopped"
    run = Run(tmp_path / "run")
    assert run.status()["state"] == "stopped"
    latest = json.loads(run.latest_checkpoint().read_text())
    assert latest["step"] == trainer.step == 5
    resumed = Trainer(tiny_config(max_steps=10), tmp_path / "run", resume=True)
    assert resumed.train() == "finished" and resumed.step == 10


def test_keep_last_k_and_damaged_latest_checkpoint(tmp_path):
    trainer = Trainer(tiny_config(max_steps=40, checkpoint_every=5, keep_checkpoints=2), tmp_path / "run")
    trainer.train()
    run = Run(tmp_path / "run")
    assert [p.name for p in run.checkpoints()] == ["ckpt_00000035.json", "ckpt_00000040.json"]
    run.latest_checkpoint().with_suffix(".safetensors").write_bytes(b"broken")
    resumed = Trainer(tiny_config(max_steps=45), tmp_path / "run", resume=True)
    assert resumed.step == 35


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    Trainer(tiny_config(max_steps=0), tmp_path / "run")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        Trainer(tiny_config(), tmp_path / "run", resume=True)


def test_limits_by_images_and_seconds(tmp_path):
    by_images = Trainer(tiny_config(max_steps=0, max_images=80), tmp_path / "a")
    by_images.train()
    assert by_images.images == 80 and by_images.step == 5
    by_time = Trainer(tiny_config(max_steps=0, max_seconds=1.5), tmp_path / "b")
    by_time.train()
    assert 1.5 <= by_time.train_seconds < 10
    assert Run(tmp_path / "b").status()["progress"] == 1.0


def test_evaluation_during_training_logs_swd_and_keeps_the_best(tmp_path):
    config = tiny_config(max_steps=12)
    config.metrics.every_images = 64
    config.metrics.names = ["swd", "fid"]
    config.metrics.num_samples = 64
    config.metrics.best_metric = "swd"
    config.metrics.live_samples = 32
    trainer = Trainer(config, tmp_path / "run")
    trainer.train()
    records = [r for r in Run(tmp_path / "run").metrics() if r["kind"] == "eval"]
    evals = [r for r in records if not r.get("live")]
    assert [r["images"] for r in evals] == [64, 128, 192]
    assert all(r["swd_64"] > 0 for r in evals)
    assert all("fid" in r["errors"] for r in evals)  # no Inception weights offline: training goes on with SWD
    live = [r["swd_32"] for r in records if r.get("live")]
    assert live and all(value > 0 for value in live)  # the live metric runs beside the periodic one
    best = json.loads((tmp_path / "run" / "checkpoints" / "best.json").read_text())
    assert best["best"]["key"] == "swd_64"  # with periodic evaluation the best follows it, not the live one
    assert best["best"]["value"] == min(r["swd_64"] for r in evals)


def test_a_new_run_refuses_a_directory_with_history(tmp_path):
    Trainer(tiny_config(max_steps=2), tmp_path / "run").train()
    with pytest.raises(FileExistsError, match="already holds a run"):
        Trainer(tiny_config(max_steps=2), tmp_path / "run")


def _statuses(monkeypatch) -> list[dict]:
    """Every status the trainer writes, in order."""
    written = []
    original = Run.write_status

    def record(self, **fields):
        written.append(fields)
        original(self, **fields)

    monkeypatch.setattr(Run, "write_status", record)
    return written


def test_status_names_each_start_up_phase_then_follows_the_steps(tmp_path, monkeypatch):
    written = _statuses(monkeypatch)
    monkeypatch.setattr(loop, "STATUS_EVERY", 1e9)  # only the first step and the log steps rewrite it
    trainer = Trainer(tiny_config(max_steps=7, log_every=5), tmp_path / "run")
    trainer.train()
    phases = [s["phase"] for s in written if s["state"] == "starting"]
    assert phases == ["loading the dataset", "building the model", "choosing the memory layout",
                      "writing the first grid", "first training step"]
    running = [s for s in written if s["state"] == "running"]
    assert [s["step"] for s in running] == [1, 5, 7]  # progress shows right after the first step
    assert all(s["img_per_sec"] > 0 and s["eta_seconds"] is not None for s in running)
    assert {s["started_at"] for s in written} == {trainer._launched_at}
    assert written[-1]["state"] == "finished" and "phase" not in written[-1]

    written.clear()
    monkeypatch.setattr(loop, "STATUS_EVERY", 0.0)
    Trainer(tiny_config(max_steps=7, log_every=5), tmp_path / "every").train()
    assert [s["step"] for s in written if s["state"] == "running"] == list(range(1, 8))


def test_eta_from_the_speed_and_the_nearest_limit(tmp_path):
    trainer = Trainer(tiny_config(max_steps=100, max_images=800, max_seconds=30.0), tmp_path / "run")
    trainer.step, trainer.images, trainer.train_seconds = 10, 160, 2.0
    assert trainer.eta(64.0) == pytest.approx((800 - 160) / 64)  # images run out before steps and time
    assert trainer.eta(10.0) == pytest.approx(28.0)  # slower: the time limit comes first
    assert Trainer(tiny_config(max_steps=0), tmp_path / "unlimited").eta(64.0) is None


def test_train_records_carry_wall_time_over_sessions(tmp_path, monkeypatch):
    monkeypatch.setenv(LAUNCH_ENV, str(time.time() - 100))  # launched 100 s ago: start-up counts as wall time
    Trainer(tiny_config(max_steps=10), tmp_path / "run").train()
    first = [r for r in Run(tmp_path / "run").metrics() if r["kind"] == "train"]
    assert all(r["wall"] >= 100 + r["time"] for r in first)
    saved = json.loads(Run(tmp_path / "run").latest_checkpoint().read_text())["wall_seconds"]
    monkeypatch.setenv(LAUNCH_ENV, str(time.time()))
    Trainer(tiny_config(max_steps=15), tmp_path / "run", resume=True).train()
    later = [r for r in Run(tmp_path / "run").metrics() if r["kind"] == "train"][len(first):]
    assert later and all(r["wall"] >= saved for r in later)


def test_a_stop_file_older_than_the_launch_is_stale(tmp_path):
    run = Run(tmp_path / "run")
    run.request_stop()
    os.utime(run.stop_path, (time.time() - 60, time.time() - 60))  # left over from an earlier session
    trainer = Trainer(tiny_config(max_steps=3), run.path)
    assert trainer.train() == "finished" and trainer.step == 3


def test_a_stop_requested_during_start_up_ends_the_run_before_its_first_step(tmp_path, monkeypatch):
    monkeypatch.setenv(LAUNCH_ENV, str(time.time() - 5))  # the worker was launched, then Stop was pressed
    run = Run(tmp_path / "run")
    run.request_stop()
    trainer = Trainer(tiny_config(max_steps=50), run.path)
    assert trainer.train() == "stopped" and trainer.step == 0
    assert run.status()["state"] == "stopped" and not run.grids()
    meta = json.loads(run.latest_checkpoint().read_text())
    assert meta["step"] == 0 and "memory_format" not in meta  # the layout timing was skipped: resume decides
    monkeypatch.setenv(LAUNCH_ENV, str(time.time()))  # launched again: that STOP is now stale
    resumed = Trainer(tiny_config(max_steps=5), run.path, resume=True)
    assert resumed.train() == "finished" and resumed.step == 5


def test_each_session_records_its_speed_for_the_expectations(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    config = tiny_config(max_steps=10)
    assert expectation(config, torch.device("cpu")).img_per_sec is None
    Trainer(config, tmp_path / "measured").train()
    expected = expectation(config, torch.device("cpu"))
    assert expected.img_per_sec > 0 and "measured" in expected.source
