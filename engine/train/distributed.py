"""torchrun support: process group set-up, DDP wrapping and the few collectives the loop needs.

Without torchrun (no WORLD_SIZE) everything here is a no-op and the loop runs in one process.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from engine.models import AuxDiscriminator, Capabilities

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    device: torch.device | None = None
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class DiscriminatorPair(nn.Module):
    """D on real and fake in one forward call, so DDP sees one forward per backward."""

    def __init__(self, discriminator: nn.Module, aux_loss: bool) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.has_aux = aux_loss

    def forward(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None,
                mixed: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits "real" and "fake"; "mixed" when interpolates for a gradient penalty are given;
        "aux" (D's self-supervised loss on the real batch) when D has one (an AuxDiscriminator)."""
        if self.has_aux:
            real_logits, aux = cast(AuxDiscriminator, self.discriminator).forward_with_aux(real, labels)
            out = {"real": real_logits, "aux": aux}
        else:
            out = {"real": self.discriminator(real, labels)}
        out["fake"] = self.discriminator(fake, labels)
        if mixed is not None:
            out["mixed"] = self.discriminator(mixed, labels)
        return out


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
        atexit.register(_leave_group)
    return DistInfo(rank, world_size, device, local_rank)


_finished = False  # this rank's training returned normally (set by finished())


def finished() -> None:
    """This rank's training returned normally, so at exit it waits for the others before leaving the group."""
    global _finished
    _finished = True


def _leave_group() -> None:
    """At exit, leave the process group while Python still runs: a rank that finished first and left alone
    aborted ('terminate called without an active exception'), whoever drove the training (the CLI, or a script
    with a Trainer), so a rank whose training finished waits for the others first. A rank that failed does not
    wait: its peers may be inside a collective it never joins, and a barrier would hang the launch instead of
    failing it. A peer that is gone already ends the wait with an error, which changes nothing here."""
    if not dist.is_initialized():
        return
    if _finished:
        try:
            dist.barrier()
        except RuntimeError as exc:
            log.debug("leaving the process group without the other ranks: %s", exc)
    dist.destroy_process_group()


def wrap(generator: nn.Module, discriminator: nn.Module, info: DistInfo, sync_batchnorm: bool,
         capabilities: Capabilities) -> tuple[nn.Module, nn.Module]:
    """The modules the training step calls: plain in one process, DDP under torchrun."""
    pair = DiscriminatorPair(discriminator, capabilities.aux_loss)
    if not info.active:
        return generator, pair
    if sync_batchnorm:
        generator = nn.SyncBatchNorm.convert_sync_batchnorm(generator)
        pair = nn.SyncBatchNorm.convert_sync_batchnorm(pair)
    ids = [info.device.index] if info.device is not None and info.device.type == "cuda" else None
    growing = capabilities.grows  # a growing model leaves its later blocks unused for a while
    return (DistributedDataParallel(generator, device_ids=ids, find_unused_parameters=growing),
            DistributedDataParallel(pair, device_ids=ids, find_unused_parameters=growing))


def any_flags(flags: tuple[bool, ...], info: DistInfo) -> tuple[bool, ...]:
    """Each flag, true on every rank when it is true on any rank (one collective for all)."""
    if not info.active:
        return flags
    values = torch.tensor([1.0 if f else 0.0 for f in flags], device=info.device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in values.tolist())


def mean_over_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The average of ``value`` over all ranks (the value itself in one process)."""
    if not info.active:
        return value
    total = value.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / info.world_size


def main_first(load: Callable[[], T], info: DistInfo) -> T:
    """``load()`` on each machine's first process (local rank 0) first, e.g. to decode a dataset into
    that machine's cache, then on the others."""
    if not info.active:
        return load()
    if info.local_rank == 0:
        try:
            return load()
        finally:
            dist.barrier()  # also when loading failed: the others then fail with the same message
    dist.barrier()
    return load()
