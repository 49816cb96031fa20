"""SNGAN (Miyato et al. 2018): ResNet generator and a spectrally normalised ResNet discriminator,
trained with the hinge loss (set loss.kind=hinge, as the preset does)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.models.registry import GanPair, ModelSettings, register_model


@dataclass
class SNGANOptions:
    """Widths as in the paper's CIFAR ResNets (G 256, D 128 channels)."""

    latent_dim: int = 128
    g_channels: int = 256
    d_channels: int = 128


class GenBlock(nn.Module):
    """BN-ReLU-upsample-conv-BN-ReLU-conv with an upsampled 1×1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv1(F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest"))
        return self.conv2(F.relu(self.bn2(h))) + self.skip(up)


class DisBlock(nn.Module):
    """(ReLU)-conv-ReLU-conv-avgpool with a conv-avgpool shortcut, all spectrally normalised."""

    def __init__(self, cin: int, cout: int, first: bool) -> None:
        super().__init__()
        self.first = first
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 3, 1, 1))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout, 3, 1, 1))
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        shortcut = self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2)
        return h + shortcut


class SNGANGenerator(nn.Module):
    def __init__(self, opts: SNGANOptions, resolution: int) -> None:
        super().__init__()
        self.channels = opts.g_channels
        self.project = nn.Linear(opts.latent_dim, 16 * opts.g_channels)
        blocks = int(math.log2(resolution)) - 2
        self.blocks = nn.Sequential(*[GenBlock(opts.g_channels, opts.g_channels) for _ in range(blocks)])
        self.out = nn.Sequential(nn.BatchNorm2d(opts.g_channels), nn.ReLU(True),
                                 nn.Conv2d(opts.g_channels, 3, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.blocks(self.project(z).view(-1, self.channels, 4, 4)))


class SNGANDiscriminator(nn.Module):
    def __init__(self, opts: SNGANOptions, resolution: int) -> None:
        super().__init__()
        downs = int(math.log2(resolution)) - 3  # down to 8×8, then one block without pooling
        ch = opts.d_channels
        self.blocks = nn.Sequential(DisBlock(3, ch, first=True), *[DisBlock(ch, ch, first=False)
                                                                   for _ in range(downs - 1)])
        self.last = nn.Sequential(nn.ReLU(), spectral_norm(nn.Conv2d(ch, ch, 3, 1, 1)), nn.ReLU(),
                                  spectral_norm(nn.Conv2d(ch, ch, 3, 1, 1)))
        self.head = spectral_norm(nn.Linear(ch, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(x)
        h = h + self.last(h)
        return self.head(F.relu(h).sum(dim=(2, 3))).flatten()


@register_model("sngan", "SNGAN (Miyato et al. 2018): ResNet G, spectrally normalised ResNet D, hinge loss",
                (32, 64, 128), SNGANOptions,
                settings=ModelSettings(tiny={"g_channels": 16, "d_channels": 16},
                                       small={"g_channels": 16, "d_channels": 16}, recipe="sngan-hinge-64",
                                       small_optim=dict(beta1=0.0, beta2=0.9)))
def build_sngan(opts: SNGANOptions, resolution: int, num_classes: int) -> GanPair:
    return GanPair(SNGANGenerator(opts, resolution), SNGANDiscriminator(opts, resolution), opts.latent_dim)
