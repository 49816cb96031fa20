"""Named recipes from the projects our users come from, and device-sized defaults."""

from __future__ import annotations

import copy

import torch

from engine.config import Config, DataConfig, LossConfig, ModelConfig, OptimConfig, TrainConfig


def suggested_config(device: torch.device) -> Config:
    """A configuration that shows faces quickly on this device: a narrow DCGAN at 32 px on a CPU, the
    FastGAN preset (the recommended model) on a GPU."""
    if device.type == "cpu":
        return Config(data=DataConfig(resolution=32), model=ModelConfig("dcgan", {"ngf": 32, "ndf": 32}),
                      train=TrainConfig(batch_size=32, log_every=10, grid_every=50, checkpoint_every=250))
    config = preset("fastgan-64")
    config.train.log_every, config.train.grid_every, config.train.checkpoint_every = 100, 1000, 5000
    return config


PRESETS: dict[str, Config] = {
    "afhq-dcgan-128": Config(
        data=DataConfig(resolution=128, flip=False, rotate_degrees=10.0),
        model=ModelConfig("dcgan", {"latent_dim": 100, "ngf": 64, "ndf": 64, "d_dropout": 0.3}),
        loss=LossConfig("bce"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "anime-dcgan-64": Config(
        data=DataConfig(resolution=64, flip=True),
        model=ModelConfig("dcgan", {"latent_dim": 128, "g_input": "dense", "max_channels": 1024, "ngf": 128}),
        loss=LossConfig("bce", label_smoothing=0.1),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "face-course-basic-28": Config(
        data=DataConfig(resolution=28, flip=False),
        model=ModelConfig("basic", {"latent_dim": 100}),
        optim=OptimConfig(lr_g=2e-4, lr_d=1e-4),
        train=TrainConfig(batch_size=64)),
    "sngan-hinge-64": Config(
        data=DataConfig(resolution=64),
        model=ModelConfig("sngan", {}),
        loss=LossConfig("hinge"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.9, n_critic=5),
        train=TrainConfig(batch_size=64)),
    "wgan-gp-64": Config(
        data=DataConfig(resolution=64),
        model=ModelConfig("wgan-gp", {}),
        loss=LossConfig("wgan-gp", gp_weight=10.0),
        optim=OptimConfig(lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, n_critic=5),
        train=TrainConfig(batch_size=64)),
    "anime-dcgan-128": Config(
        data=DataConfig(resolution=128, flip=True),
        model=ModelConfig("dcgan", {"latent_dim": 100, "g_activation": "relu", "g_batchnorm": True,
                                    "d_batchnorm": True, "d_slope": 0.2}),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "anime-aae-128": Config(
        data=DataConfig(resolution=128, flip=True),
        model=ModelConfig("aae", {"latent_dim": 128, "encoder_slope": 0.2, "reconstruction": "mse"}),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "cat-faces-simple-gan-64": Config(
        data=DataConfig(resolution=64, flip=True),
        model=ModelConfig("basic", {"latent_dim": 100, "hidden": 1024}),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "conditional-dcgan-64": Config(
        data=DataConfig(resolution=64),
        model=ModelConfig("cdcgan", {"latent_dim": 100}),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4),
        train=TrainConfig(batch_size=64)),
    "face-course-progressive-128": Config(
        data=DataConfig(resolution=128, flip=True),
        model=ModelConfig("progressive", {"latent_dim": 512, "start_resolution": 4, "fade_images": 400_000,
                                          "stable_images": 400_000}),
        loss=LossConfig("wgan-gp", gp_weight=10.0),
        optim=OptimConfig(lr_g=2e-4, lr_d=1e-4, beta1=0.0, beta2=0.99),
        train=TrainConfig(batch_size=64)),
    "fastgan-64": Config(
        data=DataConfig(resolution=64, flip=True, diffaugment="color,translation,cutout"),
        model=ModelConfig("fastgan", {"latent_dim": 256, "ngf": 64, "ndf": 64}),
        loss=LossConfig("hinge"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999),
        train=TrainConfig(batch_size=16)),  # small batches, many steps (the paper trains with 8)
    "face-course-dcgan-64-ttur": Config(
        data=DataConfig(resolution=64),
        model=ModelConfig("dcgan", {"latent_dim": 100}),
        optim=OptimConfig(lr_g=2e-4, lr_d=1e-4),
        train=TrainConfig(batch_size=64)),
}


def preset(name: str) -> Config:
    """A fresh copy of a named preset."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
