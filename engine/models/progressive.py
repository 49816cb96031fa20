"""Progressive GAN (Karras et al. 2018), simplified: G and D grow from 4×4 or 8×8 to the target
resolution, fading each new block in over a number of training images.

The trainer calls ``set_progress(images_seen)`` on G and D every step. G always returns images at
the target resolution (the current stage's image, nearest-upsampled) and D average-pools its input
down to the current stage, so the data path never changes while the networks grow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.config import ConfigError
from engine.base import records
from engine.models.registry import Capabilities, GanPair, ModelSettings, register_model
from engine.models.shapes import doublings


@dataclass
class ProgressiveOptions:
    """Widths are channels(r) = min(fmap_max, fmap_base // r) at resolution r."""

    latent_dim: int = 512
    start_resolution: int = 4  # 4 or 8: the resolution of the first stage
    fade_images: int = 400_000  # images over which each new block fades in (α 0 → 1)
    stable_images: int = 400_000  # images trained at each stage after its fade (the first stage: only these)
    fmap_base: int = 8192
    fmap_max: int = 256


@dataclass(frozen=True)
class ProgressiveSchedule:
    """Stage k trains at start_resolution·2^k. Stage 0 trains stable_images; every later stage fades
    its block in over fade_images, then trains stable_images; the last stage then stays at α = 1."""

    start_resolution: int
    resolution: int
    fade_images: int
    stable_images: int

    def __post_init__(self) -> None:
        if self.start_resolution not in (4, 8) or self.resolution < self.start_resolution:
            raise ConfigError(f"progressive start_resolution must be 4 or 8 and at most the resolution, "
                              f"not {self.start_resolution}")
        if self.fade_images < 0 or self.stable_images < 0 or self.fade_images + self.stable_images == 0:
            raise ConfigError("progressive fade_images and stable_images must be non-negative, not both 0")

    @property
    def num_stages(self) -> int:
        return int(math.log2(self.resolution // self.start_resolution)) + 1

    def stage_resolution(self, stage: int) -> int:
        return self.start_resolution * 2 ** stage

    def at(self, images: int) -> tuple[int, float]:
        """(stage index, fade-in α) after ``images`` training images."""
        if images < self.stable_images:
            return 0, 1.0
        stage, within = divmod(images - self.stable_images, self.fade_images + self.stable_images)
        stage += 1
        if stage >= self.num_stages:
            return self.num_stages - 1, 1.0
        return stage, min(1.0, within / self.fade_images) if self.fade_images else 1.0


class EqualConv2d(nn.Conv2d):
    """Conv with weights ~ N(0, 1) scaled at run time by gain/√fan_in (equalised learning rate);
    "same" padding."""

    def __init__(self, cin: int, cout: int, kernel: int, gain: float = math.sqrt(2)) -> None:
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        self.scale = gain / math.sqrt(cin * kernel * kernel)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualLinear(nn.Linear):
    """Linear layer with weights ~ N(0, 1) scaled at run time by gain/√fan_in."""

    def __init__(self, cin: int, cout: int, gain: float = math.sqrt(2)) -> None:
        super().__init__(cin, cout)
        self.scale = gain / math.sqrt(cin)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit mean square (over dim 1)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one channel: the standard deviation of each feature across a group of samples, averaged
    over features and pixels. Samples i and j share a group when i ≡ j mod N/g, with g the largest
    size ≤ min(group_size, N) that divides N."""
    n, c, h, w = x.shape
    g = next(s for s in range(min(group_size, n), 0, -1) if n % s == 0)
    y = x.float().reshape(g, n // g, c, h, w)
    std = (y.var(dim=0, correction=0) + 1e-8).sqrt().mean(dim=(1, 2, 3))
    return torch.cat([x, std.repeat(g).view(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)], dim=1)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


# The buffers as last seen: (stage, alpha, their versions, the stage index and α they hold).
_Known = tuple[torch.Tensor, torch.Tensor, int, int, int, float]


class _Growing(nn.Module):
    """The schedule, plus the stage index and α as persistent float buffers (saved in checkpoints and
    copied to the EMA generator with the other buffers)."""

    stage: torch.Tensor
    alpha: torch.Tensor

    def __init__(self, schedule: ProgressiveSchedule, fmap_base: int, fmap_max: int) -> None:
        super().__init__()
        self.schedule = schedule
        self.resolution = schedule.resolution
        self.fmap_base, self.fmap_max = fmap_base, fmap_max
        self.register_buffer("stage", torch.zeros(()))
        self.register_buffer("alpha", torch.ones(()))
        self._known: _Known | None = None

    def channels(self, resolution: int) -> int:
        return min(self.fmap_max, self.fmap_base // resolution)

    def set_progress(self, images: int) -> None:
        """Move to the stage and α the schedule gives after ``images`` training images."""
        stage, alpha = self.schedule.at(images)
        self.stage.fill_(stage)
        self.alpha.fill_(alpha)
        self._remember(stage, float(np.float32(alpha)))

    def current(self) -> tuple[int, float]:
        """(stage, α) as in the buffers. Read back from the device only when a buffer was replaced or
        changed in place since last seen (load_state_dict, EMA copies), so a training step does not
        wait for the device."""
        known = self._known
        if (known is None or known[0] is not self.stage or known[1] is not self.alpha
                or known[2] != self.stage._version or known[3] != self.alpha._version):
            stage, alpha = torch.stack([self.stage, self.alpha]).tolist()
            known = self._remember(int(stage), float(alpha))
        return known[4], known[5]

    def _remember(self, stage: int, alpha: float) -> _Known:
        self._known = (self.stage, self.alpha, self.stage._version, self.alpha._version, stage, alpha)
        return self._known

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state["_known"] = None  # a copy's buffers have their own version counters
        return state


class _GBlock(nn.Module):
    """Nearest ×2, then two 3×3 convs, each followed by LeakyReLU and pixel norm."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = EqualConv2d(cin, cout, 3), EqualConv2d(cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return pixel_norm(_lrelu(self.conv2(pixel_norm(_lrelu(self.conv1(x))))))


class ProgressiveGenerator(_Growing):
    """z → 4×4 → … → the current stage; new blocks fade in: lerp(up(toRGB_prev(h)), toRGB(block(h)), α)."""

    def __init__(self, opts: ProgressiveOptions, schedule: ProgressiveSchedule) -> None:
        super().__init__(schedule, opts.fmap_base, opts.fmap_max)
        c4 = self.channels(4)
        self.latent_dim = opts.latent_dim
        self.dense = EqualLinear(opts.latent_dim, c4 * 16, gain=math.sqrt(2) / 4)  # as in the paper's code
        self.conv4 = EqualConv2d(c4, c4, 3)
        self.blocks = nn.ModuleDict({str(r): _GBlock(self.channels(r // 2), self.channels(r))
                                     for r in doublings(8, self.resolution)})
        self.to_rgb = nn.ModuleDict({str(r): EqualConv2d(self.channels(r), 3, 1, gain=1.0)
                                     for r in doublings(schedule.start_resolution, self.resolution)})

    def progress_info(self) -> dict[str, float]:
        stage, alpha = self.current()
        return {records.STAGE_RESOLUTION: float(self.schedule.stage_resolution(stage)), records.ALPHA: alpha}

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        stage, alpha = self.current()
        size = self.schedule.stage_resolution(stage)
        h = pixel_norm(_lrelu(self.dense(pixel_norm(z.flatten(1))).view(z.shape[0], -1, 4, 4)))
        h = pixel_norm(_lrelu(self.conv4(h)))
        for r in doublings(8, size // 2):
            h = self.blocks[str(r)](h)
        if size == 4:
            rgb = self.to_rgb["4"](h)
        else:
            rgb = self.to_rgb[str(size)](self.blocks[str(size)](h))
            if stage > 0 and alpha < 1:
                previous = F.interpolate(self.to_rgb[str(size // 2)](h), scale_factor=2, mode="nearest")
                rgb = previous + (rgb - previous) * alpha
        images = torch.tanh(rgb)
        if size < self.resolution:
            images = F.interpolate(images, scale_factor=self.resolution // size, mode="nearest")
        return images


class _DBlock(nn.Module):
    """Two 3×3 convs with LeakyReLU, then 2×2 average pooling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = EqualConv2d(cin, cin, 3), EqualConv2d(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(_lrelu(self.conv2(_lrelu(self.conv1(x)))), 2)


class ProgressiveDiscriminator(_Growing):
    """Average-pools target-resolution images to the current stage; the newest block fades in:
    lerp(fromRGB_prev(pool(x)), block(fromRGB(x)), α). Ends with minibatch stddev, a 3×3 conv and two
    dense layers at 4×4."""

    def __init__(self, opts: ProgressiveOptions, schedule: ProgressiveSchedule) -> None:
        super().__init__(schedule, opts.fmap_base, opts.fmap_max)
        c4 = self.channels(4)
        self.from_rgb = nn.ModuleDict({str(r): EqualConv2d(3, self.channels(r), 1)
                                       for r in doublings(schedule.start_resolution, self.resolution)})
        self.blocks = nn.ModuleDict({str(r): _DBlock(self.channels(r), self.channels(r // 2))
                                     for r in doublings(8, self.resolution)})
        self.conv4 = EqualConv2d(c4 + 1, c4, 3)
        self.dense = EqualLinear(c4 * 16, c4)
        self.out = EqualLinear(c4, 1, gain=1.0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        stage, alpha = self.current()
        size = self.schedule.stage_resolution(stage)
        if size < self.resolution:
            x = F.avg_pool2d(x, self.resolution // size)
        h = _lrelu(self.from_rgb[str(size)](x))
        if size > 4:
            h = self.blocks[str(size)](h)
            if stage > 0 and alpha < 1:
                previous = _lrelu(self.from_rgb[str(size // 2)](F.avg_pool2d(x, 2)))
                h = previous + (h - previous) * alpha
            for r in reversed(doublings(8, size // 2)):
                h = self.blocks[str(r)](h)
        h = _lrelu(self.conv4(minibatch_stddev(h)))
        return self.out(_lrelu(self.dense(h.flatten(1)))).flatten()


@register_model("progressive", "Progressive GAN (Karras et al. 2018), simplified: grows from 4×4/8×8 with "
                "fade-in, minibatch-stddev, equalised LR", (32, 64, 128, 256), ProgressiveOptions,
                capabilities=Capabilities(grows=True),
                settings=ModelSettings(
                    tiny={"latent_dim": 32, "fmap_base": 256, "fmap_max": 32, "fade_images": 32, "stable_images": 16},
                    small={"latent_dim": 64, "fmap_base": 512, "fmap_max": 64, "fade_images": 640,
                           "stable_images": 640},
                    recipe="face-course-progressive-128", small_optim=dict(beta1=0.0, beta2=0.99),
                    schedule_options=("fade_images", "stable_images")))
def build_progressive(opts: ProgressiveOptions, resolution: int, num_classes: int) -> GanPair:
    if opts.latent_dim < 1 or opts.fmap_max < 1 or opts.fmap_base < resolution:
        raise ConfigError(f"progressive latent_dim and fmap_max must be positive and fmap_base at least the "
                          f"resolution ({resolution})")
    schedule = ProgressiveSchedule(opts.start_resolution, resolution, opts.fade_images, opts.stable_images)
    return GanPair(ProgressiveGenerator(opts, schedule), ProgressiveDiscriminator(opts, schedule), opts.latent_dim)
