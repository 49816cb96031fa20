"""Adversarial autoencoder (Makhzani et al. 2015): a convolutional encoder and a mirrored decoder
trained to reconstruct images, while a discriminator on the latent code pushes the codes of real
images toward the N(0, I) prior, so decoding prior draws gives new images."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from engine.config import ConfigError
from engine.models.dcgan import DCGANGenerator, DCGANOptions, dcgan_init
from engine.models.registry import Capabilities, GanPair, ModelSettings, choice, register_model


@dataclass
class AAEOptions:
    """Encoder/decoder widths, the latent discriminator and the reconstruction objective."""

    latent_dim: int = 64
    ngf: int = 64  # decoder width at its last block (a DCGAN generator)
    nef: int = 64  # encoder width at its first block
    max_channels: int = 512
    encoder_slope: float = 0.2  # LeakyReLU slope in the encoder; 0 gives ReLU
    d_hidden: int = 512  # width of the latent discriminator's linear layers
    reconstruction: str = choice("mse", "l1")
    adversarial_weight: float = 0.05  # weight of "fool the latent D" next to the reconstruction loss


class Encoder(nn.Module):
    """Strided convs with BatchNorm (the DCGAN discriminator's layout) down to 4×4, then a linear
    map to the code."""

    def __init__(self, opts: AAEOptions, resolution: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i in range(int(math.log2(resolution)) - 2):
            cout = min(opts.nef * 2 ** i, opts.max_channels)
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(opts.encoder_slope, True))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.code = nn.Linear(cin * 16, opts.latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(self.features(x).flatten(1))


class LatentDiscriminator(nn.Module):
    """Linear layers with LeakyReLU on the code; one logit per sample (sigmoid inside the BCE loss)."""

    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2, True),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True), nn.Linear(hidden, 1))

    def forward(self, code: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(code).flatten()


@register_model("aae", "Adversarial autoencoder (Makhzani et al. 2015): conv encoder, DCGAN decoder, "
                "discriminator on the latent code", (32, 64, 128, 256), AAEOptions, loss="bce",
                capabilities=Capabilities(step="autoencoder"),
                settings=ModelSettings(tiny={"ngf": 8, "nef": 8, "latent_dim": 16, "d_hidden": 32},
                                       small={"ngf": 16, "nef": 16, "latent_dim": 32, "d_hidden": 128},
                                       recipe="anime-aae-128"))
def build_aae(opts: AAEOptions, resolution: int, num_classes: int) -> GanPair:
    if opts.latent_dim < 1 or opts.ngf < 1 or opts.nef < 1 or opts.d_hidden < 1:
        raise ConfigError("aae latent_dim, ngf, nef and d_hidden must be positive")
    if opts.adversarial_weight < 0:
        raise ConfigError("aae adversarial_weight must be zero or positive")
    decoder = DCGANGenerator(DCGANOptions(latent_dim=opts.latent_dim, ngf=opts.ngf, max_channels=opts.max_channels,
                                          g_input="dense"), resolution)
    dcgan_init(decoder)
    encoder = Encoder(opts, resolution)
    dcgan_init(encoder)
    return GanPair(decoder, LatentDiscriminator(opts.latent_dim, opts.d_hidden), opts.latent_dim, encoder=encoder,
                   objective={"reconstruction": opts.reconstruction, "adversarial_weight": opts.adversarial_weight})
