"""LSGAN (Mao et al. 2017): a least-squares loss on the discriminator's raw score, with networks after the
paper's scene model (a linear projection and 3×3 transposed convolutions in G, 5×5 strided convolutions and
a linear score in D). The worked example of docs/adding-a-model.md: this file is the whole model."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from engine.config import Config, DataConfig, LossConfig, ModelConfig, OptimConfig, TrainConfig
from engine.models.dcgan import dcgan_init
from engine.models.losses import Loss, register_loss
from engine.models.registry import GanPair, ModelSettings, Recipe, register_model


@dataclass
class LSGANOptions:
    """Widths double per block toward 4×4, capped at g_max_channels (G) and d_max_channels (D)."""

    latent_dim: int = 1024
    ngf: int = 64  # G width at full resolution
    ndf: int = 64  # D width after its first convolution
    g_max_channels: int = 256
    d_max_channels: int = 512
    d_slope: float = 0.2


def _widths(base: int, count: int, cap: int) -> list[int]:
    return [min(base * 2 ** i, cap) for i in range(count)]


class LSGANGenerator(nn.Module):
    """z → linear to 4×4 → per doubling a 3×3 stride-2 transposed conv (the first two followed by a stride-1
    one) → a 3×3 stride-1 transposed conv to RGB; BatchNorm and ReLU between, Tanh at the end."""

    def __init__(self, opts: LSGANOptions, resolution: int) -> None:
        super().__init__()
        doublings = int(math.log2(resolution)) - 2
        widths = _widths(opts.ngf, doublings + 1, opts.g_max_channels)[::-1]  # 4×4 … resolution
        self.first_width = widths[0]
        self.project = nn.Linear(opts.latent_dim, widths[0] * 16, bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(True)]
            if i < 2:
                layers += [nn.ConvTranspose2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.project(z).view(z.shape[0], self.first_width, 4, 4))


class LSGANDiscriminator(nn.Module):
    """5×5 stride-2 convs down to 4×4 (BatchNorm after all but the first, LeakyReLU), then a linear score."""

    def __init__(self, opts: LSGANOptions, resolution: int) -> None:
        super().__init__()
        widths = _widths(opts.ndf, int(math.log2(resolution)) - 2, opts.d_max_channels)
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip([3, *widths[:-1]], widths)):
            layers.append(nn.Conv2d(cin, cout, 5, 2, 2, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(opts.d_slope, True))
        self.features = nn.Sequential(*layers)
        self.score = nn.Linear(widths[-1] * 16, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.score(self.features(x).flatten(1)).flatten()


@register_loss("least-squares", "Least squares (LSGAN)", "D pulls its score of real images to 1 and of fakes to 0, "
               "G pulls its fakes' score to 1, each by half the squared error (Mao et al. 2017, 0-1 coding). "
               "The lsgan model needs it.")
class LeastSquaresLoss(Loss):
    """½·E[(D(x) − 1)²] + ½·E[D(G(z))²] for D, ½·E[(D(G(z)) − 1)²] for G."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean())

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * (fake_logits - 1).square().mean()


LSGAN_64 = Recipe(
    "lsgan-64",
    Config(data=DataConfig(resolution=64),
           model=ModelConfig("lsgan", {}),
           loss=LossConfig("least-squares"),
           optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999),
           train=TrainConfig(batch_size=64)),
    cpu_batch_size=32, cpu_resolution=64, cpu_options={"ngf": 16, "ndf": 32}, cpu_grid_every=50)


@register_model("lsgan", "LSGAN (Mao et al. 2017): least-squares loss; 3×3 transposed-conv G, 5×5 strided-conv D",
                (32, 64, 128, 256), LSGANOptions, loss="least-squares",
                settings=ModelSettings(tiny={"latent_dim": 32, "ngf": 4, "ndf": 8},
                                       small={"latent_dim": 16, "ngf": 16, "ndf": 16, "g_max_channels": 64},
                                       recipe=LSGAN_64))
def build_lsgan(opts: LSGANOptions, resolution: int, num_classes: int) -> GanPair:
    g, d = LSGANGenerator(opts, resolution), LSGANDiscriminator(opts, resolution)
    dcgan_init(g)
    dcgan_init(d)
    return GanPair(g, d, opts.latent_dim)
