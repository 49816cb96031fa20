"""R3GAN (Huang, Gokaslan, Kuleshov & Tompkin, NeurIPS 2024, "The GAN is dead; long live the GAN! A Modern
GAN Baseline"): a ResNet generator and discriminator without normalisation layers, built from
inverted-bottleneck residual blocks (1×1 expand, grouped 3×3, 1×1 contract, leaky ReLU), fix-up initialised,
resampled with a fixed [1,2,1] low-pass filter, and trained with the relativistic pairing loss plus the R1 and
R2 penalties (``rpgan`` in engine/models/losses.py).

Two departures from the paper's code, both for this project's interfaces: G ends in Tanh (images in
[−1, 1] like every model of the zoo), and the model is unconditional (it ignores labels)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import Config, DataConfig, LossConfig, ModelConfig, OptimConfig, TrainConfig
from engine.models.registry import GanPair, ModelSettings, Recipe, register_model

CONVS_PER_BRANCH = 3  # m of the fix-up scaling: expand, grouped, contract


@dataclass
class R3GANOptions:
    """The paper's FFHQ-64 / CIFAR-10 networks by default: 768 channels up to 32×32, halved per doubling above
    (384 at 64×64), two blocks per stage, expansion 2, groups of 16 channels (cardinality 96 at width 768)."""

    latent_dim: int = 64
    channel_base: int = 24576  # width of the stage at resolution r: min(channel_max, channel_base // r)
    channel_max: int = 768
    blocks_per_stage: int = 2
    expansion: int = 2  # a block's hidden width is expansion × its width
    group_size: int = 16  # channels per group of the 3×3 convolution (cardinality = hidden width / group_size)
    slope: float = 0.2  # leaky ReLU


def stage_widths(opts: R3GANOptions, resolution: int) -> list[int]:
    """The width of each stage from 4×4 up to ``resolution``."""
    sizes = [4 * 2 ** i for i in range(int(math.log2(resolution)) - 1)]
    return [max(1, min(opts.channel_max, opts.channel_base // size)) for size in sizes]


def cardinality(hidden: int, group_size: int) -> int:
    """Groups of the 3×3 convolution: hidden / group_size, lowered to a divisor of ``hidden`` (at least 1)."""
    groups = max(1, hidden // group_size)
    while hidden % groups:
        groups -= 1
    return groups


class Upsample(nn.Module):
    """×2: nearest-neighbour then the [1,2,1]⊗[1,2,1] / 16 blur with edge padding, which together are exactly
    bilinear interpolation (half-pixel centres), computed as such (several times faster on a CPU than the
    depthwise convolution, and twice differentiable for the R1/R2 penalties)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class Downsample(nn.Module):
    """÷2: the [1,2,1]⊗[1,2,1] / 16 blur with edge padding, then 2×2 averaging; together a stride-2 [1,3,3,1] / 8
    filter per axis, computed from strided slices (the transpose of Upsample, up to a factor of 4)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        rows = p[..., 0:width:2] + 3 * (p[..., 1:width + 1:2] + p[..., 2:width + 2:2]) + p[..., 3:width + 2:2]
        return (rows[..., 0:height:2, :] + 3 * (rows[..., 1:height + 1:2, :] + rows[..., 2:height + 2:2, :])
                + rows[..., 3:height + 2:2, :]) / 64


def _init(layer: nn.Conv2d | nn.Linear, gain: float) -> None:
    """He-style init, N(0, gain² / fan_in), zero bias."""
    fan_in = layer.weight[0].numel()
    nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _conv1x1(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1, bias=bias)
    _init(conv, 1.0)
    return conv


class ResidualBlock(nn.Module):
    """x + contract(act(grouped3×3(act(expand(x))))), fix-up initialised: the branch's first two convolutions
    scaled by L^(−1/(2m−2)) (L blocks in the network, m = 3 convolutions per branch), the last one zero, so the
    block is the identity at initialisation."""

    def __init__(self, width: int, opts: R3GANOptions, total_blocks: int) -> None:
        super().__init__()
        hidden = width * opts.expansion
        self.expand = nn.Conv2d(width, hidden, 1)
        self.grouped = nn.Conv2d(hidden, hidden, 3, padding=1, groups=cardinality(hidden, opts.group_size))
        self.contract = nn.Conv2d(hidden, width, 1, bias=False)
        self.act = nn.LeakyReLU(opts.slope)
        gain = math.sqrt(2 / (1 + opts.slope ** 2)) * total_blocks ** (-1 / (2 * CONVS_PER_BRANCH - 2))
        _init(self.expand, gain)
        _init(self.grouped, gain)
        nn.init.zeros_(self.contract.weight)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.contract(self.act(self.grouped(self.act(self.expand(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class R3GANGenerator(nn.Module):
    """z → linear → a learned 4×4 basis per channel → per stage: residual blocks, then (between stages) a 1×1
    convolution where the width changes and ×2 upsampling → 1×1 convolution to RGB → Tanh."""

    basis: nn.Parameter

    def __init__(self, opts: R3GANOptions, resolution: int) -> None:
        super().__init__()
        widths = stage_widths(opts, resolution)
        total = opts.blocks_per_stage * len(widths)
        self.project = nn.Linear(opts.latent_dim, widths[0], bias=False)
        _init(self.project, 1.0)
        self.basis = nn.Parameter(torch.randn(widths[0], 4, 4))
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            if i:
                if width != widths[i - 1]:
                    layers.append(_conv1x1(widths[i - 1], width))
                layers.append(Upsample())
            layers += [ResidualBlock(width, opts, total) for _ in range(opts.blocks_per_stage)]
        self.body = nn.Sequential(*layers)
        self.to_rgb = _conv1x1(widths[-1], 3, bias=True)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.basis * self.project(z)[:, :, None, None]
        return torch.tanh(self.to_rgb(self.body(x)))


class R3GANDiscriminator(nn.Module):
    """1×1 convolution from RGB → per stage: residual blocks, then (between stages) ÷2 downsampling and a 1×1
    convolution where the width changes → at 4×4 a depthwise 4×4 convolution (the basis) → a linear score."""

    def __init__(self, opts: R3GANOptions, resolution: int) -> None:
        super().__init__()
        widths = stage_widths(opts, resolution)[::-1]
        total = opts.blocks_per_stage * len(widths)
        self.from_rgb = _conv1x1(3, widths[0])
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            if i:
                layers.append(Downsample())
                if width != widths[i - 1]:
                    layers.append(_conv1x1(widths[i - 1], width))
            layers += [ResidualBlock(width, opts, total) for _ in range(opts.blocks_per_stage)]
        self.body = nn.Sequential(*layers)
        self.basis = nn.Conv2d(widths[-1], widths[-1], 4, groups=widths[-1], bias=False)
        _init(self.basis, 1.0)
        self.score = nn.Linear(widths[-1], 1)
        _init(self.score, 1.0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.score(self.basis(self.body(self.from_rgb(x))).flatten(1)).flatten()


def _recipe(name: str, resolution: int, gamma: float, batch: int, ema_images: float, ema_rampup: float,
            cpu_resolution: int, cpu_gamma: float) -> Recipe:
    """A recipe after the paper's: Adam(2e-4, β₁ 0, β₂ 0.99) for both networks, x-flips, EMA of G whose
    half-life ramps linearly with the images seen up to ``ema_images``. Its CPU size: the narrow widths, batch
    32, γ for ``cpu_resolution`` and the lazy R1 + R2 on every 4th D update (twice the images per second)."""
    return Recipe(name,
                  Config(data=DataConfig(resolution=resolution, flip=True),
                         model=ModelConfig("r3gan", {}),
                         loss=LossConfig("rpgan", gamma=gamma),
                         optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.99,
                                           ema_halflife_images=ema_images, ema_rampup=ema_rampup),
                         train=TrainConfig(batch_size=batch)),
                  cpu_batch_size=32, cpu_resolution=cpu_resolution, cpu_options=_CPU_OPTIONS, cpu_grid_every=25,
                  cpu_settings={"loss.gamma": cpu_gamma, "loss.penalty_every": 4})


# 64 channels up to 8×8, halved per doubling above, one block per stage: ~50 img/s at 64 px on 2 busy cores
# where the paper's CIFAR widths capped at 64 channels (two blocks per stage) took 4 img/s.
_CPU_OPTIONS = {"channel_base": 512, "channel_max": 64, "blocks_per_stage": 1, "group_size": 8}
# The paper's presets (its EMA half-life reaches its final value after 20M images): CIFAR-10 at 32 px (γ 0.05,
# batch 512, half-life 5M images) and FFHQ at 64 px (γ 2, batch 256, half-life 500k). It has no 128 px preset:
# γ 17 is the geometric mean of its FFHQ-64 (2) and FFHQ-256 (150) values.
R3GAN_32 = _recipe("r3gan-32", 32, 0.05, 512, 5e6, 0.25, 32, 0.05)
R3GAN_64 = _recipe("r3gan-64", 64, 2.0, 256, 5e5, 0.025, 64, 2.0)
R3GAN_128 = _recipe("r3gan-128", 128, 17.0, 256, 5e5, 0.025, 64, 2.0)


@register_model("r3gan", "R3GAN (Huang et al. 2024): normalisation-free ResNet G and D of grouped inverted "
                "bottlenecks, fix-up init, [1,2,1] resampling; relativistic pairing loss with R1 + R2",
                (32, 64, 128, 256), R3GANOptions, loss="rpgan",
                settings=ModelSettings(tiny={"latent_dim": 8, "channel_base": 64, "channel_max": 8,
                                             "blocks_per_stage": 1, "expansion": 1, "group_size": 4},
                                       small={"latent_dim": 32, "channel_base": 512, "channel_max": 16,
                                              "blocks_per_stage": 1, "group_size": 8},
                                       small_optim={"beta1": 0.0, "beta2": 0.99}, small_loss={"penalty_every": 4},
                                       recipe=R3GAN_64, extra_recipes=(R3GAN_32, R3GAN_128)))
def build_r3gan(opts: R3GANOptions, resolution: int, num_classes: int) -> GanPair:
    return GanPair(R3GANGenerator(opts, resolution), R3GANDiscriminator(opts, resolution), opts.latent_dim)
