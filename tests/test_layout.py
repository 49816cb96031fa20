"""Memory layout: forced settings, the CPU timing choice, and runs that keep their layout."""

from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

from engine.config import ConfigError
from engine.runs import Run
from engine.train import Trainer
from engine.train import layout
from engine.train.layout import wants_channels_last
from tests.conftest import tiny_config

CPU = torch.device("cpu")


class TinyG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(z.view(-1, 4, 2, 2))


class SlowIn(nn.Module):
    """A D whose forward is slow on images in one layout (as a kernel without a fast path would be)."""

    def __init__(self, slow_when_channels_last: bool) -> None:
        super().__init__()
        self.slow_when_channels_last = slow_when_channels_last
        self.head = nn.Linear(12, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if x.is_contiguous() != self.slow_when_channels_last:
            time.sleep(0.03)
        return self.head(x.flatten(1))


class SleepyG(nn.Module):
    """A G whose forward sleeps ``per_latent`` seconds per latent; ``calls`` (shared by the copies the
    timing makes) records the batch of every forward."""

    calls: list[int] = []

    def __init__(self, per_latent: float) -> None:
        super().__init__()
        self.per_latent = per_latent
        self.conv = nn.Conv2d(4, 3, 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        SleepyG.calls.append(len(z))
        time.sleep(self.per_latent * len(z))
        return self.conv(z.view(-1, 4, 2, 2))


@pytest.fixture(autouse=True)
def _fresh_decisions(tmp_path, monkeypatch):
    """Each test starts with nothing decided: an empty in-process dict and its own cache directory."""
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    layout._decided.clear()
    SleepyG.calls.clear()
    yield
    layout._decided.clear()


def test_forced_settings_and_devices_that_are_not_timed():
    g, d = TinyG(), SlowIn(True)
    assert wants_channels_last("channels_last", CPU, g, d, 8, 16, True)
    assert not wants_channels_last("contiguous", torch.device("cuda"), g, d, 8, 16, True)
    assert wants_channels_last("auto", torch.device("cuda"), g, d, 8, 16, True)
    assert not wants_channels_last("auto", torch.device("mps"), g, d, 8, 16, True)
    assert not wants_channels_last("auto", CPU, g, d, 8, 16, True, measure=False)
    with pytest.raises(ValueError, match="channels_last, contiguous"):
        wants_channels_last("nhwc", CPU, g, d, 8, 16, True)


@pytest.mark.parametrize("slow_when_channels_last", [True, False])
def test_auto_on_cpu_keeps_the_layout_that_is_faster(slow_when_channels_last):
    g, d = TinyG(), SlowIn(slow_when_channels_last)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    rng = torch.get_rng_state()
    assert wants_channels_last("auto", CPU, g, d, 8, 16, True) == (not slow_when_channels_last)
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before.items()) and g.conv.weight.grad is None
    assert torch.equal(rng, torch.get_rng_state())
    assert g.conv.weight.is_contiguous()  # timed on copies


def test_the_decision_is_remembered_for_this_machine_and_shape(tmp_path, monkeypatch):
    g, d = TinyG(), SlowIn(False)
    assert wants_channels_last("auto", CPU, g, d, 8, 16, True)
    layout._decided.clear()  # a new process on this machine

    def timed_again(*args):
        raise AssertionError("timed again")

    monkeypatch.setattr(layout, "_timed_layouts", timed_again)
    assert wants_channels_last("auto", CPU, g, d, 8, 16, True)
    with pytest.raises(AssertionError, match="timed again"):  # another batch is another shape
        wants_channels_last("auto", CPU, g, d, 4, 16, True)
    layout._decided.clear()
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "another-machine"))
    with pytest.raises(AssertionError, match="timed again"):
        wants_channels_last("auto", CPU, g, d, 8, 16, True)


def test_a_network_too_slow_to_time_stays_contiguous_after_one_small_pass(monkeypatch):
    monkeypatch.setattr(layout, "BUDGET_SECONDS", 2.0)
    g, d = SleepyG(per_latent=0.2), SlowIn(False)  # the probe (2 latents) scaled to 8: 1.6 s > 2 s / 4
    assert not wants_channels_last("auto", CPU, g, d, 8, 16, True)
    assert SleepyG.calls == [layout.PROBE]
    assert not layout._decided and not (layout.cache_dir() / "memory_format.json").exists()
    assert not wants_channels_last("auto", CPU, g, d, 8, 16, True)
    assert SleepyG.calls == [layout.PROBE] * 2  # not remembered: tried again (the load may have passed)


def test_timing_rounds_stop_at_the_budget(monkeypatch):
    monkeypatch.setattr(layout, "BUDGET_SECONDS", 2.0)
    g, d = SleepyG(per_latent=0.035), TinyG()  # probe 0.07 s; a full pass 0.28 s, a round 0.56 s
    wants_channels_last("auto", CPU, g, d, 8, 16, False)
    full = SleepyG.calls[1:]
    assert SleepyG.calls[0] == layout.PROBE and set(full) <= {8}
    assert len(full) <= 2 + 2 * 2  # two warm-ups, then rounds while they end within 2 s: at most 2 of 4


def test_layout_is_recorded_and_kept_on_resume(tmp_path):
    trainer = Trainer(tiny_config(max_steps=4, memory_format="channels_last"), tmp_path / "run")
    trainer.train()
    meta = json.loads(Run(tmp_path / "run").latest_checkpoint().read_text())
    assert meta["memory_format"] == {"device": "cpu", "channels_last": True}
    resumed = Trainer(tiny_config(max_steps=8), tmp_path / "run", resume=True)
    assert resumed.channels_last
    conv = next(m for m in resumed.G.modules() if isinstance(m, nn.ConvTranspose2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    assert resumed.train() == "finished" and resumed.step == 8
    forced = Trainer(tiny_config(max_steps=10, memory_format="contiguous"), tmp_path / "run", resume=True)
    assert not forced.channels_last and forced.train() == "finished"


def test_layout_changes_speed_not_what_is_learned(tmp_path):
    weights = []
    for fmt in ("contiguous", "channels_last"):
        trainer = Trainer(tiny_config(max_steps=3, memory_format=fmt), tmp_path / fmt)
        trainer.train()
        weights.append({k: v.contiguous() for k, v in trainer.G.state_dict().items()})
    worst = max((weights[0][k].float() - weights[1][k].float()).abs().max().item() for k in weights[0])
    assert worst < 1e-4


def test_deterministic_runs_are_not_timed_and_bad_settings_are_config_errors(tmp_path, monkeypatch):
    channels_last_faster = {torch.contiguous_format: 1.0, torch.channels_last: 0.5}
    monkeypatch.setattr(layout, "_timed_layouts", lambda *args: channels_last_faster)
    assert Trainer(tiny_config(), tmp_path / "timed").channels_last
    assert not Trainer(tiny_config(deterministic=True), tmp_path / "a").channels_last
    with pytest.raises(ConfigError, match="train.memory_format"):
        Trainer(tiny_config(memory_format="nhwc"), tmp_path / "b")
