"""FastGAN-style GAN for small datasets (Liu et al. 2021): a generator with skip-layer excitation and
a discriminator regularised by self-supervised reconstruction of real images. Trained with the
hinge loss; meant to be used with DiffAugment."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.config import ConfigError
from engine.models.dcgan import dcgan_init
from engine.models.registry import Capabilities, GanPair, ModelSettings, register_model
from engine.models.shapes import doublings

# Channels at each feature resolution, as multiples of ngf / ndf (the paper's table).
_WIDTH = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25}
_TWO_CONV = (8, 32, 128)  # G resolutions whose up-block has two convs (the paper alternates)


@dataclass
class FastGANOptions:
    """Widths scale the paper's channel table: ngf=64 gives 1024 channels at 4×4, 128 at 64×64."""

    latent_dim: int = 256
    ngf: int = 64
    ndf: int = 64


def _width(scale: int, resolution: int) -> int:
    return max(1, int(_WIDTH[resolution] * scale))


def _up_block(cin: int, cout: int, two_convs: bool = False) -> nn.Sequential:
    """Nearest ×2, conv 3×3, BatchNorm, GLU (halving the conv's 2·cout channels); optionally twice."""
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest"),
                               nn.Conv2d(cin, 2 * cout, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * cout), nn.GLU(1)]
    if two_convs:
        layers += [nn.Conv2d(cout, 2 * cout, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * cout), nn.GLU(1)]
    return nn.Sequential(*layers)


class SkipLayerExcitation(nn.Module):
    """Channel gates for a high-resolution map computed from a low-resolution one: adaptive average
    pool to 4×4, conv 4×4, LeakyReLU(0.1), conv 1×1, sigmoid → N×C_high×1×1."""

    def __init__(self, low_channels: int, high_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(low_channels, high_channels, 4, 1, 0, bias=False),
                                 nn.LeakyReLU(0.1), nn.Conv2d(high_channels, high_channels, 1, 1, 0, bias=False),
                                 nn.Sigmoid())

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return self.net(low)


class FastGANGenerator(nn.Module):
    """z → 4×4 (transposed conv, BN, GLU) → up-blocks to the resolution → conv 3×3 → tanh. The
    feature map at each resolution r with 8r ≤ resolution gates the one at 8r (``sle["r_8r"]``)."""

    def __init__(self, opts: FastGANOptions, resolution: int) -> None:
        super().__init__()
        width = lambda r: _width(opts.ngf, r)  # noqa: E731
        self.latent_dim = opts.latent_dim
        self.init = nn.Sequential(nn.ConvTranspose2d(opts.latent_dim, 2 * width(4), 4, 1, 0, bias=False),
                                  nn.BatchNorm2d(2 * width(4)), nn.GLU(1))
        self.ups = nn.ModuleDict({str(r): _up_block(width(r // 2), width(r), r in _TWO_CONV)
                                  for r in doublings(8, resolution)})
        self.sle = nn.ModuleDict({f"{r}_{8 * r}": SkipLayerExcitation(width(r), width(8 * r))
                                  for r in doublings(4, resolution // 8)})
        self.to_rgb = nn.Sequential(nn.Conv2d(width(resolution), 3, 3, 1, 1, bias=False), nn.Tanh())
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.init(z.view(z.shape[0], -1, 1, 1))
        features = {4: h}
        for key, up in self.ups.items():
            r = int(key)
            h = up(h)
            gate = f"{r // 8}_{r}"
            if gate in self.sle:
                h = h * self.sle[gate](features[r // 8])
            features[r] = h
        return self.to_rgb(h)


class DownBlockComp(nn.Module):
    """Halve the resolution: (conv 4×4 s2, BN, LReLU, conv 3×3, BN, LReLU + avg-pool, conv 1×1, BN,
    LReLU) / 2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout),
                                  nn.LeakyReLU(0.2), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))
        self.direct = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(cin, cout, 1, 1, 0, bias=False),
                                    nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


class Decoder(nn.Module):
    """8×8 features → ``size``×``size`` RGB in [-1, 1]: up-blocks, then conv 3×3 and tanh."""

    def __init__(self, cin: int, ndf: int, size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for r in doublings(16, size):
            cout = _width(max(1, ndf // 2), r)
            layers.append(_up_block(cin, cout))
            cin = cout
        layers += [nn.Conv2d(cin, 3, 3, 1, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FastGANDiscriminator(nn.Module):
    """Spectrally normalised convs: conv 3×3 + LReLU at full resolution, DownBlockComps to 8×8, then
    conv 1×1, BN, LReLU, conv 4×4 (a 5×5 map) averaged to one logit per image. Two decoders
    reconstruct real images from its features (see ``forward_with_aux``)."""

    def __init__(self, opts: FastGANOptions, resolution: int) -> None:
        super().__init__()
        width = lambda r: _width(opts.ndf, 2 * r)  # noqa: E731  (channels of the r×r features)
        self.resolution = resolution
        self.decode_size = min(resolution // 2, 64)
        self.stem = nn.Sequential(nn.Conv2d(3, width(resolution), 3, 1, 1, bias=False), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleDict({str(r // 2): DownBlockComp(width(r), width(r // 2))
                                    for r in reversed(doublings(16, resolution))})
        self.head = nn.Sequential(nn.Conv2d(width(8), width(8), 1, 1, 0, bias=False), nn.BatchNorm2d(width(8)),
                                  nn.LeakyReLU(0.2), nn.Conv2d(width(8), 1, 4, 1, 0, bias=False))
        self.decoder_full = Decoder(width(8), opts.ndf, self.decode_size)
        self.decoder_part = Decoder(width(16), opts.ndf, self.decode_size)
        dcgan_init(self)
        for conv in [m for m in self.modules() if isinstance(m, nn.Conv2d)]:
            spectral_norm(conv)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 16×16 and 8×8 feature maps."""
        h = self.stem(x)
        features = {}
        for key, down in self.downs.items():
            h = down(h)
            features[key] = h
        return features["16"], features["8"]

    def _logits(self, features8: torch.Tensor) -> torch.Tensor:
        return self.head(features8).mean(dim=(1, 2, 3))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self._logits(self._features(x)[1])

    def forward_with_aux(self, x: torch.Tensor, labels: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the reconstruction loss on real images x (N×3×R×R), with s = min(R/2, 64):

        - the 8×8 features decoded to s×s, against x area-downsampled to s×s;
        - one quadrant of the 16×16 features (8×8; the same quadrant for the whole batch, drawn with
          ``torch.randint`` from the global CPU generator) decoded to s×s, against the same quadrant of
          x area-downsampled to 2s×2s.

        The loss is the sum of the two mean absolute errors (float32), differentiable into D."""
        features16, features8 = self._features(x)
        s = self.decode_size
        target = x.detach().float()
        row, col = divmod(int(torch.randint(4, (1,))), 2)
        part = features16[:, :, 8 * row:8 * row + 8, 8 * col:8 * col + 8]
        part_target = F.interpolate(target, size=2 * s, mode="area")[:, :, s * row:s * row + s, s * col:s * col + s]
        aux = (F.l1_loss(self.decoder_full(features8).float(), F.interpolate(target, size=s, mode="area"))
               + F.l1_loss(self.decoder_part(part).float(), part_target))
        return self._logits(features8), aux


@register_model("fastgan", "FastGAN-style (Liu et al. 2021): skip-layer excitation G, self-supervised D; "
                "for small datasets with DiffAugment", (32, 64, 128, 256), FastGANOptions, loss="hinge",
                capabilities=Capabilities(aux_loss=True),
                settings=ModelSettings(tiny={"latent_dim": 32, "ngf": 4, "ndf": 4},
                                       small={"latent_dim": 64, "ngf": 4, "ndf": 8}, recipe="fastgan-64"))
def build_fastgan(opts: FastGANOptions, resolution: int, num_classes: int) -> GanPair:
    if opts.latent_dim < 1 or opts.ngf < 1 or opts.ndf < 1:
        raise ConfigError("fastgan latent_dim, ngf and ndf must be positive")
    return GanPair(FastGANGenerator(opts, resolution), FastGANDiscriminator(opts, resolution), opts.latent_dim)
