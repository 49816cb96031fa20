"""Adversarial autoencoder: reconstruction improves, codes follow the prior, the studio-facing
Generator reconstructs images from a run and from an exported folder."""

import numpy as np
import pytest
import torch

from engine import export_generator, load_dataset, load_generator
from engine.runs import Run
from engine.train import Trainer
from tests.conftest import tiny_config

OPTIONS = {"ngf": 16, "nef": 16, "latent_dim": 32, "d_hidden": 64}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config = tiny_config(max_steps=120, dataset="builtin:faces:512", log_every=10, checkpoint_every=120)
    config.model.name, config.model.options = "aae", dict(OPTIONS)
    config.train.batch_size = 32
    config.optim.ema_halflife_images = 300
    run_dir = tmp_path_factory.mktemp("aae") / "run"
    trainer = Trainer(config, run_dir)
    trainer.train()
    return trainer, run_dir


def test_reconstruction_error_falls(trained):
    _, run_dir = trained
    recon = [r["recon"] for r in Run(run_dir).metrics() if r["kind"] == "train"]
    assert len(recon) == 12
    assert recon[-1] < 0.6 * recon[0]
    assert all(np.isfinite(recon))


def test_codes_of_real_images_follow_the_prior(trained):
    trainer, _ = trained
    x = torch.from_numpy(trainer.real_images[:256]).permute(0, 3, 1, 2).float() / 127.5 - 1
    codes = trainer.E.eval()(x).detach()
    trainer.E.train()
    assert 0.5 < float(codes.std()) < 1.5  # the encoder starts near 0 (N(0, 0.02) weights); D pulls it to N(0, 1)
    assert abs(float(codes.mean())) < 0.3


def test_generator_reconstructs_from_the_run_and_the_export(trained, tmp_path):
    _, run_dir = trained
    real = load_dataset("builtin:faces:512", 32).images[:64]
    gen = load_generator(run_dir)
    recon = gen.reconstruct(real)
    assert recon.shape == real.shape and recon.dtype == np.uint8
    samples = gen.sample(seeds=range(64))
    error = np.abs(recon.astype(float) - real).mean()
    assert error < 0.7 * np.abs(samples.astype(float) - real).mean()

    exported = load_generator(export_generator(run_dir, tmp_path / "export"))
    assert (tmp_path / "export" / "encoder.safetensors").is_file()
    assert np.array_equal(exported.reconstruct(real), recon)


def test_models_without_an_encoder_say_so(tmp_path):
    Trainer(tiny_config(max_steps=2), tmp_path / "run").train()
    with pytest.raises(ValueError, match="only autoencoders"):
        load_generator(tmp_path / "run").reconstruct(np.zeros((1, 32, 32, 3), np.uint8))
