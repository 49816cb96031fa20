"""Every registered model: its declared test and benchmark settings, shapes at each resolution, and exact
resume through a checkpoint."""

import dataclasses

import numpy as np
import pytest
import torch

from engine import load_generator
from engine.config import ConfigError, LossConfig, OptimConfig
from engine.models.losses import WassersteinGPLoss, interpolates
from engine.models import Recipe, build_model, get_model, list_models
from engine.presets import PRESETS, RECOMMENDED, SIZES, recipe, suggested_config
from engine.train import Trainer
from tests.conftest import tiny_config

MODELS = [m.name for m in list_models()]


def tiny(name: str) -> dict:
    """The model's declared tiny options (a copy): builds at every resolution at once."""
    return dict(get_model(name).settings.tiny)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_declares_its_test_and_benchmark_settings(name):
    """Without them the parametrised tests and bench/zoo.py would skip the model: tiny and small options
    that build, optimiser overrides OptimConfig has, and a recipe that trains this model."""
    info = get_model(name)
    settings = info.settings
    assert settings is not None, f"register_model({name!r}, ..., settings=ModelSettings(...)) is missing"
    for options in (settings.tiny, settings.small):
        build_model(name, options, 32 if 32 in info.resolutions else info.resolutions[0], num_classes=5)
    assert set(settings.small_optim) <= {f.name for f in dataclasses.fields(OptimConfig)}
    assert set(settings.small_loss) <= {f.name for f in dataclasses.fields(LossConfig)}
    assert set(settings.schedule_options) <= set(info.options)
    assert settings.recipe_name in PRESETS and PRESETS[settings.recipe_name].model.name == name
    if isinstance(settings.recipe, Recipe):
        assert PRESETS[settings.recipe.name] is settings.recipe.config


@pytest.mark.parametrize("name", MODELS)
def test_shapes_at_every_supported_resolution(name):
    info = next(m for m in list_models() if m.name == name)
    labels = torch.tensor([0, 4])
    for resolution in info.resolutions:
        pair = build_model(name, tiny(name), resolution, num_classes=5)
        images = pair.generator(torch.randn(2, pair.latent_dim), labels)
        assert images.shape == (2, 3, resolution, resolution) and images.abs().max() <= 1
        judged = images if pair.encoder is None else pair.encoder(images)
        assert (info.capabilities.step == "autoencoder") == (pair.encoder is not None)
        assert judged.shape[0] == 2 and pair.discriminator(judged, labels).shape == (2,)
        assert pair.num_classes == (5 if info.conditional else 0)


@pytest.mark.parametrize("name", MODELS)
def test_resume_equals_a_straight_run(name, tmp_path):
    def config(steps):
        cfg = tiny_config(max_steps=steps, checkpoint_every=100, memory_format="contiguous")  # one layout for both
        cfg.model.name, cfg.model.options = name, tiny(name)
        cfg.loss.kind = get_model(name).loss or "bce"
        cfg.optim.n_critic = 2
        cfg.loss.penalty_every = 3  # lazy R1 + R2 (rpgan): D updates 0, 3, 6, 9 penalised, across the resume
        return cfg

    straight = Trainer(config(6), tmp_path / "a")
    straight.train()
    Trainer(config(3), tmp_path / "b").train()
    resumed = Trainer(config(6), tmp_path / "b", resume=True)
    resumed.train()
    for mine, theirs in ((straight.G, resumed.G), (straight.D, resumed.D), (straight.ema.ema, resumed.ema.ema)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_conditional_model_follows_the_class_and_needs_labels(tmp_path):
    config = tiny_config(max_steps=4)
    config.model.name, config.model.options = "cdcgan", tiny("cdcgan")
    Trainer(config, tmp_path / "run").train()
    gen = load_generator(tmp_path / "run")
    assert gen.num_classes == 5 and gen.class_names[:2] == ["cat", "dog"]
    cats, dogs = gen.sample(seeds=[1, 1], labels=[0, 1])
    assert not np.array_equal(cats, dogs)
    assert gen.directions(3)[0].shape == (3, gen.latent_dim)
    with pytest.raises(ConfigError, match="class-conditional"):
        build_model("cdcgan", {}, 32, num_classes=0)


def test_every_preset_builds():
    for name, config in PRESETS.items():
        pair = build_model(config.model.name, config.model.options, config.data.resolution, num_classes=5)
        assert pair.generator(torch.randn(2, pair.latent_dim)).shape[-1] == config.data.resolution, name


def test_suggested_config_is_the_recommended_recipe_at_the_cpu_size():
    cpu = torch.device("cpu")
    config = suggested_config(cpu)
    name = RECOMMENDED["cpu"]["builtin"]
    assert config == recipe(name, cpu)[0] and config.model.name == PRESETS[name].model.name
    size = SIZES[name]["cpu"]
    assert (config.train.batch_size, config.data.resolution) == (size.batch_size, size.resolution)
    assert all(config.model.options[k] == v for k, v in size.options.items())


def test_wgan_gp_penalty_uses_interpolates_and_pulls_gradient_norms_to_one():
    loss = WassersteinGPLoss(gp_weight=10.0)
    real, fake = torch.rand(8, 3, 4, 4), -torch.rand(8, 3, 4, 4)
    mixed = interpolates(real, fake, torch.rand(8, 1, 1, 1, generator=torch.Generator().manual_seed(0)))
    eps = ((mixed - fake) / (real - fake)).flatten(1)
    assert torch.allclose(eps, eps[:, :1].expand_as(eps), atol=1e-5) and (eps >= 0).all() and (eps <= 1).all()

    critic = torch.nn.Linear(48, 1, bias=False)
    with torch.no_grad():
        critic.weight.mul_(5.0 / critic.weight.norm())  # gradient norm 5 everywhere
    opt = torch.optim.Adam(critic.parameters(), lr=0.05)
    for _ in range(200):
        mixed = interpolates(real, fake, torch.rand(8, 1, 1, 1, generator=torch.Generator().manual_seed(1)))
        penalty = loss.penalty(mixed, critic(mixed.flatten(1)).flatten())
        opt.zero_grad()
        penalty.backward()
        opt.step()
    assert abs(critic.weight.norm().item() - 1.0) < 0.05


def test_wgan_gp_refuses_the_wrong_loss_and_a_batchnorm_critic(tmp_path):
    config = tiny_config()
    config.model.name, config.model.options = "wgan-gp", tiny("wgan-gp")
    with pytest.raises(ConfigError, match="loss.kind=wgan-gp"):
        Trainer(config, tmp_path / "run")
    with pytest.raises(ConfigError, match="BatchNorm"):
        build_model("wgan-gp", {"d_batchnorm": True}, 32)


EXTRA_RECIPES = {r.name for m in list_models() for r in m.settings.extra_recipes}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_from_the_cli(name, tmp_path):
    """One step of each recipe as published (its widths and resolution), on a batch of two images, with one D
    step per G step (n_critic = 5 would only repeat the same code), no live metric (hundreds of samples from a
    published-size generator are minutes on a CPU) and one memory layout (the CPU's choice between two is timed
    on a few steps: 8 s at R3GAN's published widths). A model's further recipes (R3GAN at 32 and 128 px) run at
    this device's size: the published widths are its main recipe's, already trained here."""
    from engine.cli import main

    size = "cpu" if name in EXTRA_RECIPES else "source"
    assert main(["train", "--preset", name, "--size", size, "--dataset", "builtin:faces:32", "--batch-size", "2",
                 "--max-steps", "1", "--device", "cpu", "--run-dir", str(tmp_path / "run"), "--no-progress",
                 "--set", "optim.n_critic=1", "--set", "train.grid_size=4", "--set", "metrics.live_samples=0",
                 "--set", "train.memory_format=contiguous"]) == 0
    gen = load_generator(tmp_path / "run")
    applied, _ = recipe(name, torch.device("cpu"), size)
    assert gen.model_name == PRESETS[name].model.name and gen.resolution == applied.data.resolution
