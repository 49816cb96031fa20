"""Schedules (engine.train.schedule): ramps of learning rates, Adam β2, the penalty weights, the EMA half-life
and DiffAugment's probability over the images seen; validated, set with --set, applied each step and
restored exactly on resume."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from engine.base import records
from engine.cli import apply_overrides
from engine.config import SCHEDULED, Config, ConfigError, Ramp
from engine.data.augment import Augmenter
from engine.models import Loss, get_model, list_models
from engine.runs import Run
from engine.train import Trainer
from engine.train.ema import EMA
from engine.train.schedule import Schedule, halve_learning_rate_curves, ramp_value, scheduled_values
from tests.conftest import tiny_config


def test_ramps_run_from_the_keys_value_to_final_then_stay():
    linear, cosine = Ramp("linear", 1.0), Ramp("cosine", 1.0)
    assert [ramp_value(linear, 3.0, t) for t in (0.0, 0.5, 1.0, 2.0)] == [3.0, 2.0, 1.0, 1.0]
    assert [ramp_value(cosine, 3.0, t) for t in (0.0, 0.5, 1.0, 2.0)] == [3.0, pytest.approx(2.0), 1.0, 1.0]
    assert ramp_value(cosine, 3.0, 0.25) == pytest.approx(1.0 + 2.0 * (1 + math.cos(math.pi / 4)) / 2)
    assert ramp_value(Ramp("constant", 1.0), 3.0, 0.5) == 3.0


def test_the_horizon_is_schedule_images_else_the_earlier_limit():
    config = tiny_config(max_steps=10)  # batch 16: 160 images
    config.schedule.lr_g = Ramp("linear", 0.0)
    assert config.schedule_horizon() == 160
    assert scheduled_values(config, 80)["lr_g"] == pytest.approx(config.optim.lr_g / 2)
    config.train.max_images = 100
    assert config.schedule_horizon() == 100
    config.schedule.images = 1000
    assert config.schedule_horizon() == 1000
    values = scheduled_values(config, 500)
    assert values.pop("lr_g") == pytest.approx(config.optim.lr_g / 2)
    assert values == {"lr_d": config.optim.lr_d, "beta2": config.optim.beta2, "gamma": config.loss.gamma,
                      "gp_weight": config.loss.gp_weight, "ema_halflife_images": config.optim.ema_halflife_images,
                      "augment_p": 1.0}


def test_a_ramp_without_a_horizon_and_augment_p_without_diffaugment_are_refused_naming_the_fix():
    config = tiny_config(max_steps=0, max_seconds=60.0)
    config.validate()  # constant ramps need no horizon
    config.schedule.beta2 = Ramp("cosine", 0.99)
    with pytest.raises(ConfigError, match=r"^schedule.images must be set .*schedule.beta2 is cosine.*set "
                                          r"schedule.images") as caught:
        config.validate()
    assert "\n" not in str(caught.value)
    config.schedule.images = 1000
    config.validate()
    config.schedule.augment_p = Ramp("linear", 0.5)
    with pytest.raises(ConfigError, match=r"^schedule.augment_p.shape must be constant without DiffAugment, got "
                                          r"'linear': .*data.diffaugment="):
        config.validate()
    config.schedule.augment_p.shape, config.data.augment_p = "constant", 0.5
    with pytest.raises(ConfigError, match=r"^data.augment_p must stay 1 without DiffAugment, got 0.5: "):
        config.validate()
    config.data.diffaugment = "color"
    config.validate()


def test_set_overrides_reach_nested_keys_and_round_trip_through_json():
    config = tiny_config()
    apply_overrides(config, ["schedule.lr_g.shape=cosine", "schedule.lr_g.final=0", "schedule.images=5000",
                             'schedule.augment_p={"shape": "linear", "final": 0.5}', "data.augment_p=0"])
    assert config.schedule.lr_g == Ramp("cosine", 0.0) and isinstance(config.schedule.lr_g.final, float)
    assert config.schedule.augment_p == Ramp("linear", 0.5)
    assert (config.schedule.images, config.data.augment_p) == (5000, 0.0)
    assert Config.from_json(config.to_json()) == config
    for bad, said in (("schedule.lr_g.speed=1", "unknown config key 'schedule.lr_g.speed'"),
                      ("schedule.lr_g.shape.x=1", "unknown config key"), ("schedule.momentum.shape=linear", "unknown"),
                      ("schedule.lr_g.final=fast", "schedule.lr_g.final must be float"),
                      ('schedule.lr_g={"shape": "linear", "end": 0}', r"unknown key\(s\) in schedule.lr_g: end")):
        with pytest.raises(ConfigError, match=said):
            apply_overrides(config, [bad])
    assert Config.from_dict({"data": {"spec": "x"}}).schedule == Config().schedule  # older config.json files


def test_diffaugment_probability_transforms_a_share_of_the_images_deterministically():
    x = torch.rand(64, 3, 8, 8)

    def augmented(p: float) -> torch.Tensor:
        return Augmenter(torch.device("cpu"), 3, False, 0.0, "color", p=p).diff(x)

    changed = (augmented(0.5) != x).flatten(1).any(1)
    assert 16 < int(changed.sum()) < 48
    assert torch.equal(augmented(0.5), augmented(0.5))
    assert torch.equal(augmented(0.0), x)
    assert bool((augmented(1.0) != x).flatten(1).any(1).all())
    ranks = [Augmenter(torch.device("cpu"), 3, False, 0.0, "color", rank, 2, p=0.5) for rank in (0, 1)]
    assert torch.equal(torch.cat([aug.diff(x[32 * r:32 * r + 32]) for r, aug in enumerate(ranks)]), augmented(0.5))


class _Weighted(Loss):
    """A loss with the penalty weight a schedule sets (as the R3GAN and WGAN-GP losses have)."""

    def __init__(self) -> None:
        self.gamma = 0.5


def test_schedule_sets_each_value_on_the_runs_parts_and_logs_the_active_ones():
    config = tiny_config(max_steps=10)
    config.data.diffaugment, config.optim.lr_scaling, config.optim.reference_batch = "color", "linear", 32
    for name, final in (("lr_g", 0.0), ("beta2", 0.9), ("gamma", 1.5), ("ema_halflife_images", 0.0),
                        ("augment_p", 0.0)):
        setattr(config.schedule, name, Ramp("linear", final))
    net = nn.Linear(2, 2)
    opt_g, opt_d = torch.optim.Adam(net.parameters()), torch.optim.Adam(net.parameters())
    loss, ema = _Weighted(), EMA(net, config.optim.ema_halflife_images, 0.0)
    augmenter = Augmenter(torch.device("cpu"), 0, False, 0.0, "color")
    schedule = Schedule(config, opt_g, opt_d, loss, ema, augmenter)
    schedule.apply(80)  # half of 10 steps of 16
    assert opt_g.param_groups[0]["lr"] == pytest.approx(config.optim.lr_g / 2 * 0.5)  # ramped, then scaled 16/32
    assert opt_d.param_groups[0]["lr"] == pytest.approx(config.optim.lr_d * 0.5)
    assert opt_g.param_groups[0]["betas"] == (config.optim.beta1, pytest.approx((0.999 + 0.9) / 2))
    assert loss.gamma == pytest.approx((config.loss.gamma + 1.5) / 2) and augmenter.p == 0.5
    assert ema.halflife_images == pytest.approx(config.optim.ema_halflife_images / 2)
    assert set(schedule.logged()) == {records.BETA2, records.GAMMA, records.EMA_HALFLIFE, records.AUGMENT_P}
    assert tuple(SCHEDULED) == records.SCHEDULED

    config.schedule.lr_g.final = 1e-4
    halve_learning_rate_curves(config)  # a rollback halves the whole learning-rate curve
    assert (config.optim.lr_g, config.schedule.lr_g.final, config.optim.lr_d) == (1e-4, 5e-5, 1e-4)


def test_a_ramp_of_a_weight_the_loss_does_not_have_is_refused_at_start(tmp_path):
    config = tiny_config(max_steps=2)
    config.schedule.gamma = Ramp("cosine", 0.0)
    with pytest.raises(ConfigError, match="^schedule.gamma.shape must be constant with loss.kind=bce"):
        Trainer(config, tmp_path / "run")


def test_resume_with_every_ramp_equals_a_straight_run(tmp_path):
    """Linear and cosine ramps of every value a WGAN-GP run has, over the run's own 8 steps; one session
    stopped at step 4 and resumed ends bit-identical to a straight run, with the same logged values."""
    def config() -> Config:
        cfg = tiny_config(max_steps=8, log_every=2, checkpoint_every=100, batch_size=8, grid_size=4,
                          memory_format="contiguous")
        cfg.model.name, cfg.model.options, cfg.loss.kind = "wgan-gp", {"ngf": 8, "ndf": 8}, "wgan-gp"
        cfg.data.diffaugment, cfg.data.augment_p, cfg.metrics.live_samples = "color,translation", 0.2, 0
        cfg.optim.lr_scaling = "sqrt"
        ramps = {"lr_g": Ramp("cosine", 0.0), "lr_d": Ramp("linear", 1e-5), "beta2": Ramp("cosine", 0.9),
                 "gp_weight": Ramp("linear", 1.0), "ema_halflife_images": Ramp("cosine", 50.0),
                 "augment_p": Ramp("linear", 0.9)}
        for name, ramp in ramps.items():
            setattr(cfg.schedule, name, ramp)
        return cfg

    straight = Trainer(config(), tmp_path / "straight")
    straight.train()
    first = Trainer(config(), tmp_path / "split")

    def stop_at_4(record: dict) -> None:
        if record["step"] == 4:
            first.run.request_stop()

    assert first.train(on_log=stop_at_4) == "stopped" and first.step == 4
    resumed = Trainer(config(), tmp_path / "split", resume=True)
    expected = scheduled_values(config(), 4 * 8)
    assert resumed.loss.gp_weight == expected["gp_weight"] and resumed.aug.p == expected["augment_p"]
    assert resumed.opt_d.param_groups[0]["lr"] == expected["lr_d"] * math.sqrt(8 / 64)
    assert resumed.train() == "finished"

    for mine, theirs in ((straight.G, resumed.G), (straight.D, resumed.D), (straight.ema.ema, resumed.ema.ema)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    for a, b in zip(straight.opt_d.state.values(), resumed.opt_d.state.values()):
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])

    def logged(trainer: Trainer) -> list[dict[str, float]]:
        lines = records.train_records(Run(trainer.run.path).metrics())
        return [{k: v for k, v in r.values.items() if k in records.SCHEDULED} | {"step": r.step} for r in lines]

    straight_values = logged(straight)
    assert logged(resumed) == straight_values and [v["step"] for v in straight_values] == list(range(2, 9, 2))
    assert set(straight_values[0]) == {"step", *records.SCHEDULED} - {records.GAMMA}
    assert straight_values[0][records.AUGMENT_P] < straight_values[-1][records.AUGMENT_P]
    assert straight_values[0][records.LR_G] > straight_values[-1][records.LR_G]


@pytest.mark.parametrize("name", [m.name for m in list_models()])
def test_every_model_trains_with_a_cosine_learning_rate(name, tmp_path):
    config = tiny_config(max_steps=2, log_every=1, batch_size=4, grid_size=4, memory_format="contiguous")
    config.model.name, config.model.options = name, dict(get_model(name).settings.tiny)
    config.loss.kind = get_model(name).loss or "bce"
    config.metrics.live_samples = 0
    config.schedule.lr_g, config.schedule.lr_d = Ramp("cosine", 0.0), Ramp("cosine", 0.0)
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.train() == "finished"
    lrs = [(r.values[records.LR_G], r.values[records.LR_D]) for r in records.train_records(trainer.run.metrics())]
    assert lrs == [(config.optim.lr_g, config.optim.lr_d),
                   (pytest.approx(config.optim.lr_g / 2), pytest.approx(config.optim.lr_d / 2))]
