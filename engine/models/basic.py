"""Basic GAN (Goodfellow et al. 2014): fully-connected G and D, the teaching baseline."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.models.registry import GanPair, ModelSettings, register_model


@dataclass
class BasicGANOptions:
    """Hidden widths of the MLPs; G mirrors D."""

    latent_dim: int = 100
    hidden: int = 1024  # widest layer; the others are hidden/2 and hidden/4
    g_batchnorm: bool = True
    d_dropout: float = 0.3
    d_slope: float = 0.2


class BasicGenerator(nn.Module):
    def __init__(self, opts: BasicGANOptions, resolution: int) -> None:
        super().__init__()
        widths = [opts.hidden // 4, opts.hidden // 2, opts.hidden]
        layers: list[nn.Module] = []
        cin = opts.latent_dim
        for width in widths:
            layers += [nn.Linear(cin, width), nn.BatchNorm1d(width) if opts.g_batchnorm else nn.Identity(),
                       nn.LeakyReLU(0.2, True)]
            cin = width
        layers += [nn.Linear(cin, 3 * resolution * resolution), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.resolution = resolution

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.flatten(1)).view(-1, 3, self.resolution, self.resolution)


class BasicDiscriminator(nn.Module):
    def __init__(self, opts: BasicGANOptions, resolution: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3 * resolution * resolution
        for width in (opts.hidden, opts.hidden // 2, opts.hidden // 4):
            layers += [nn.Linear(cin, width), nn.LeakyReLU(opts.d_slope, True)]
            if opts.d_dropout > 0:
                layers.append(nn.Dropout(opts.d_dropout))
            cin = width
        layers.append(nn.Linear(cin, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1)).flatten()


@register_model("basic", "Basic GAN (Goodfellow et al. 2014): fully-connected G and D", (28, 32, 48, 64),
                BasicGANOptions,
                settings=ModelSettings(tiny={"hidden": 64}, small={"hidden": 256}, recipe="cat-faces-simple-gan-64"))
def build_basic(opts: BasicGANOptions, resolution: int, num_classes: int) -> GanPair:
    return GanPair(BasicGenerator(opts, resolution), BasicDiscriminator(opts, resolution), opts.latent_dim)
