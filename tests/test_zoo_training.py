"""Every model in the zoo learns: a short real training on built-in faces moves its samples toward
the data. Plus the progressive GAN's fade-in as the trainer drives it, across a resume."""

import numpy as np
import pytest

from engine import load_dataset, load_generator
from engine.generator import Generator
from engine.models import get_model, list_models
from engine.runs import Run
from engine.train import Trainer
from tests.conftest import tiny_config

DATASET = "builtin:faces:512"


def _histogram_distance(fake: np.ndarray, real: np.ndarray) -> float:
    """L1 distance between 32-bin colour histograms, averaged over channels (0 to 2)."""
    def hist(x, c):
        return np.histogram(x[..., c], 32, (0, 256))[0] / x[..., c].size
    return float(np.mean([np.abs(hist(fake, c) - hist(real, c)).sum() for c in range(3)]))


def _moment_distance(fake: np.ndarray, real: np.ndarray) -> float:
    """Distance between per-pixel mean and std images: 0 when the two sets match in both."""
    f, r = fake.astype(np.float64) / 255, real.astype(np.float64) / 255
    return float(np.abs(f.mean(0) - r.mean(0)).mean() + np.abs(f.std(0) - r.std(0)).mean())


@pytest.mark.parametrize("name", sorted(m.name for m in list_models()))
def test_short_training_moves_samples_toward_the_data(name, tmp_path):
    """Each model at its declared small options (ModelSettings.small, small_optim, small_loss): 160 steps in seconds."""
    settings = get_model(name).settings
    config = tiny_config(max_steps=160, dataset=DATASET, log_every=20, checkpoint_every=160, grid_every=1000)
    config.model.name, config.model.options = name, dict(settings.small)
    config.loss.kind = get_model(name).loss or "bce"
    config.train.batch_size = 32
    config.optim.ema_halflife_images = 500
    for key, value in settings.small_optim.items():
        setattr(config.optim, key, value)
    for key, value in settings.small_loss.items():
        setattr(config.loss, key, value)
    Trainer(config, tmp_path / "run").train()

    real = load_dataset(DATASET, 32).images
    seeds = range(256)
    labels = [s % 5 for s in seeds]
    after = load_generator(tmp_path / "run").sample(seeds=seeds, labels=labels)
    start = Trainer(config, tmp_path / "fresh")  # same seed, untrained: the starting point
    initial = Generator(start.ema.ema, {"latent_dim": start.latent_dim, "resolution": 32, "model": name},
                        ).sample(seeds=seeds, labels=labels)
    hist_before, hist_after = _histogram_distance(initial, real), _histogram_distance(after, real)
    mom_before, mom_after = _moment_distance(initial, real), _moment_distance(after, real)
    assert hist_after < 0.8 * hist_before, (hist_before, hist_after)
    assert mom_after < 0.85 * mom_before, (mom_before, mom_after)
    records = [r for r in Run(tmp_path / "run").metrics() if r["kind"] == "train"]
    assert len(records) == 8 and all(np.isfinite(r["loss_g"]) and np.isfinite(r["loss_d"]) for r in records)


def _progressive_config(steps: int):
    config = tiny_config(max_steps=steps, log_every=1, checkpoint_every=100, grid_every=1000)
    config.model.name = "progressive"
    config.model.options = {"latent_dim": 16, "fmap_base": 256, "fmap_max": 16, "start_resolution": 8,
                            "fade_images": 64, "stable_images": 32}
    return config


def test_progressive_fade_in_follows_images_and_continues_after_a_resume(tmp_path):
    straight = Trainer(_progressive_config(12), tmp_path / "a")
    straight.train()
    records = [r for r in Run(tmp_path / "a").metrics() if r["kind"] == "train"]
    stages = [(r["images"], r["stage_resolution"], r["alpha"]) for r in records]
    # batch 16: 8 px stable for 32 images, then 16 px fades in over 64 images (α = seen/64), ...
    assert stages[0][1:] == (8, 1.0) and stages[1][1:] == (8, 1.0)
    assert [s[1] for s in stages[2:6]] == [16] * 4
    assert [s[2] for s in stages[2:6]] == [0.0, 0.25, 0.5, 0.75]
    assert stages[6][1:] == (16, 1.0)
    assert stages[-1][1] == 32

    Trainer(_progressive_config(4), tmp_path / "b").train()  # stops in the middle of the first fade
    mid = [r for r in Run(tmp_path / "b").metrics() if r["kind"] == "train"][-1]
    assert mid["stage_resolution"] == 16 and 0 < mid["alpha"] < 1
    resumed = Trainer(_progressive_config(12), tmp_path / "b", resume=True)
    resumed.train()
    again = [(r["images"], r["stage_resolution"], r["alpha"]) for r in Run(tmp_path / "b").metrics()
             if r["kind"] == "train"]
    assert again == stages
    a, b = straight.G.state_dict(), resumed.G.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert load_generator(tmp_path / "b").module.progress_info() == {"stage_resolution": 32.0, "alpha": 0.75}
