"""DCGAN (Radford et al. 2015) at 32–256 px: one up/down-sampling block per doubling."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from engine.config import ConfigError
from engine.models.registry import GanPair, ModelSettings, choice, register_model


@dataclass
class DCGANOptions:
    """Hyper-parameters of the source projects' DCGANs."""

    latent_dim: int = 100
    ngf: int = 64  # G width at the last block; doubles per block toward 4×4
    ndf: int = 64  # D width at the first block
    max_channels: int = 1024
    g_input: str = choice("convt", "dense")  # convt: 4×4 transposed conv from z; dense: linear to 4×4×C
    g_batchnorm: bool = True
    g_activation: str = choice("relu", "lrelu")
    d_batchnorm: bool = True
    d_slope: float = 0.2
    d_dropout: float = 0.0
    init: str = choice("dcgan", "default")  # dcgan: N(0, 0.02); default: PyTorch's


def _widths(base: int, blocks: int, cap: int) -> list[int]:
    return [min(base * 2 ** i, cap) for i in range(blocks)]


class DCGANGenerator(nn.Module):
    def __init__(self, opts: DCGANOptions, resolution: int) -> None:
        super().__init__()
        blocks = int(math.log2(resolution)) - 2
        widths = _widths(opts.ngf, blocks, opts.max_channels)[::-1]  # 4×4 … resolution/2
        act = (lambda: nn.ReLU(True)) if opts.g_activation == "relu" else (lambda: nn.LeakyReLU(0.2, True))
        norm = (lambda c: nn.BatchNorm2d(c)) if opts.g_batchnorm else (lambda c: nn.Identity())
        self.latent_dim = opts.latent_dim
        self.dense = opts.g_input == "dense"
        self.project: nn.Linear | nn.ConvTranspose2d
        if self.dense:
            self.project = nn.Linear(opts.latent_dim, widths[0] * 16, bias=not opts.g_batchnorm)
        else:
            self.project = nn.ConvTranspose2d(opts.latent_dim, widths[0], 4, 1, 0, bias=not opts.g_batchnorm)
        self.first_width = widths[0]
        layers: list[nn.Module] = [norm(widths[0]), act()]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=not opts.g_batchnorm), norm(cout), act()]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.dense:
            x = self.project(z).view(z.shape[0], self.first_width, 4, 4)
        else:
            x = self.project(z.view(z.shape[0], -1, 1, 1))
        return self.body(x)


class DCGANDiscriminator(nn.Module):
    def __init__(self, opts: DCGANOptions, resolution: int) -> None:
        super().__init__()
        blocks = int(math.log2(resolution)) - 2
        widths = _widths(opts.ndf, blocks, opts.max_channels)
        layers: list[nn.Module] = []
        cin = 3
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=not (opts.d_batchnorm and i > 0)))
            if opts.d_batchnorm and i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(opts.d_slope, True))
            if opts.d_dropout > 0:
                layers.append(nn.Dropout(opts.d_dropout))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, 1, 4, 1, 0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x)).flatten()


def dcgan_init(module: nn.Module) -> None:
    """Weights N(0, 0.02); BatchNorm scale N(1, 0.02), bias 0 (Radford et al.)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@register_model("dcgan", "DCGAN (Radford et al. 2015): transposed-conv G, strided-conv D",
                (32, 64, 128, 256), DCGANOptions,
                settings=ModelSettings(tiny={"ngf": 8, "ndf": 8}, small={"ngf": 16, "ndf": 16},
                                       recipe="face-course-dcgan-64-ttur"))
def build_dcgan(opts: DCGANOptions, resolution: int, num_classes: int) -> GanPair:
    if opts.latent_dim < 1 or opts.ngf < 1 or opts.ndf < 1:
        raise ConfigError("dcgan latent_dim, ngf and ndf must be positive")
    g, d = DCGANGenerator(opts, resolution), DCGANDiscriminator(opts, resolution)
    if opts.init == "dcgan":
        dcgan_init(g)
        dcgan_init(d)
    return GanPair(g, d, opts.latent_dim)


@dataclass
class ConditionalDCGANOptions(DCGANOptions):
    """DCGAN options plus the size of G's class embedding."""

    embed_dim: int = 32


class ConditionalGenerator(nn.Module):
    """DCGAN G on [z, embedding(class)]."""

    def __init__(self, opts: ConditionalDCGANOptions, resolution: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, opts.embed_dim)
        self.body = DCGANGenerator(replace(opts, latent_dim=opts.latent_dim + opts.embed_dim), resolution)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        return self.body(torch.cat([z, self.embed(labels)], dim=1))


class ProjectionDiscriminator(nn.Module):
    """DCGAN D with a projection term ⟨embedding(class), pooled features⟩ (Miyato & Koyama 2018)."""

    def __init__(self, opts: ConditionalDCGANOptions, resolution: int, num_classes: int) -> None:
        super().__init__()
        self.body = DCGANDiscriminator(opts, resolution)
        self.embed = nn.Embedding(num_classes, self.body.head.in_channels)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)  # N(0, 1) would let the class term swamp D at the start

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = self.body.features(x)
        logits = self.body.head(features).flatten()
        if labels is None:
            return logits
        return logits + (self.embed(labels) * features.sum(dim=(2, 3))).sum(dim=1)


@register_model("cdcgan", "Conditional DCGAN: class embedding into G, projection discriminator",
                (32, 64, 128, 256), ConditionalDCGANOptions, conditional=True,
                settings=ModelSettings(tiny={"ngf": 8, "ndf": 8}, small={"ngf": 16, "ndf": 16},
                                       recipe="conditional-dcgan-64"))
def build_conditional_dcgan(opts: ConditionalDCGANOptions, resolution: int, num_classes: int) -> GanPair:
    g = ConditionalGenerator(opts, resolution, num_classes)
    d = ProjectionDiscriminator(opts, resolution, num_classes)
    if opts.init == "dcgan":
        dcgan_init(g)
        dcgan_init(d)
    return GanPair(g, d, opts.latent_dim, num_classes)


@dataclass
class WGANGPOptions(DCGANOptions):
    """DCGAN layout with a critic without BatchNorm (the gradient penalty is per sample)."""

    d_batchnorm: bool = False


@register_model("wgan-gp", "WGAN-GP (Gulrajani et al. 2017): DCGAN layout, critic without BatchNorm, "
                "gradient penalty λ=10", (32, 64, 128, 256), WGANGPOptions, loss="wgan-gp",
                settings=ModelSettings(tiny={"ngf": 8, "ndf": 8}, small={"ngf": 16, "ndf": 16}, recipe="wgan-gp-64",
                                       small_optim=dict(lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.9, n_critic=2)))
def build_wgan_gp(opts: WGANGPOptions, resolution: int, num_classes: int) -> GanPair:
    if opts.d_batchnorm:
        raise ConfigError("the WGAN-GP critic must not use BatchNorm: set d_batchnorm=false")
    return build_dcgan(opts, resolution, num_classes)
