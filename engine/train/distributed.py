"""torchrun support: process group set-up, DDP wrapping and the few collectives the loop needs.

Without torchrun (no WORLD_SIZE) everything here is a no-op and the loop runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    device: torch.device | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class DiscriminatorPair(nn.Module):
    """D on real and fake in one forward call, so DDP sees one forward per backward."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None,
                mixed: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """D(real), D(fake), and D(mixed) when interpolates for a gradient penalty are given."""
        out = (self.discriminator(real, labels), self.discriminator(fake, labels))
        return out if mixed is None else (*out, self.discriminator(mixed, labels))


def setup() -> DistInfo:
    """Join the process group when launched by torchrun (gloo on CPU, NCCL on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    wants_cuda = torch.cuda.is_available() and os.environ.get("GAN_STUDIO_DIST_DEVICE", "auto") != "cpu"
    if wants_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if wants_cuda else "gloo")
    return DistInfo(rank, world_size, device)


def wrap(generator: nn.Module, discriminator: nn.Module, info: DistInfo, sync_batchnorm: bool
         ) -> tuple[nn.Module, nn.Module]:
    """The modules the training step calls: plain in one process, DDP under torchrun."""
    pair = DiscriminatorPair(discriminator)
    if not info.active:
        return generator, pair
    if sync_batchnorm:
        generator = nn.SyncBatchNorm.convert_sync_batchnorm(generator)
        pair = nn.SyncBatchNorm.convert_sync_batchnorm(pair)
    ids = [info.device.index] if info.device is not None and info.device.type == "cuda" else None
    return DistributedDataParallel(generator, device_ids=ids), DistributedDataParallel(pair, device_ids=ids)


def any_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank when any rank's flag is set."""
    if not info.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
