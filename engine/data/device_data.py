"""The uint8 dataset resident on the training device, with a resumable, seeded data order.

The data order is one stream for the whole run: epoch ``e`` is a seeded permutation of the
dataset, and each step takes the next ``global_batch`` items of the stream. Under torchrun rank
``r`` of ``K`` takes items ``r·b … (r+1)·b − 1`` of every global batch (``b = global_batch / K``),
so any process count sees the same global batches. With one process the whole dataset stays
resident; with several, each rank holds only its shard: the items of the current epoch (and, at
an epoch boundary, the next one) that fall to it, about 1/K of the dataset.
"""

from __future__ import annotations

import numpy as np
import torch

DEVICE_MEMORY_FRACTION = 0.4


class DeviceDataset:
    """Batches of uint8 images (N×H×W×3 on the host) served as float N×3×H×W in [-1, 1] on the device."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.host_images = images
        self.host_labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.device = device
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.stream = 0  # items of the data order consumed so far, over all ranks
        self._origin = 0  # stream position of a batch boundary
        self._global_batch = 0  # 0: no boundary yet, the next take sets one
        self._perms: dict[int, torch.Tensor] = {}
        self._shards: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        if world_size == 1:
            self.images, self.labels = self._resident(None)

    def __len__(self) -> int:
        return int(self.host_images.shape[0])

    @property
    def resident_images(self) -> int:
        """Images this process holds in (device or pinned) memory now."""
        if self.world_size == 1:
            return int(self.images.shape[0])
        return sum(int(shard[0].shape[0]) for shard in self._shards.values())

    def _resident(self, indices: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The images at sorted dataset ``indices`` (None: all) as NCHW uint8 and their labels, placed on
        the device when they fit, else in pinned host memory (CUDA) or host memory."""
        images = self.host_images if indices is None else self.host_images[indices]
        if not images.flags.writeable:  # a read-only memory map: read it
            images = np.array(images)
        labels = self.host_labels if indices is None else self.host_labels[torch.from_numpy(indices)]
        tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
        if self.device.type != "cuda":
            placed = tensor
        elif tensor.numel() < DEVICE_MEMORY_FRACTION * torch.cuda.mem_get_info(self.device)[0]:
            placed = tensor.to(self.device)
        else:
            placed = tensor.pin_memory()
        return placed, labels.to(placed.device)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = torch.randperm(len(self), generator=gen)
        return self._perms[epoch]

    def _shard(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The images and labels this rank holds for ``epoch`` and, for each position of the epoch,
        the slot holding its image (meaningful for this rank's positions only), on their device."""
        if epoch not in self._shards:
            perm = self._permutation(epoch)
            if self.world_size == 1:
                images, labels, slots = self.images, self.labels, perm
            else:
                positions = torch.arange(len(self)) + epoch * len(self)
                local = self._global_batch // self.world_size
                mine = (positions - self._origin).remainder(self._global_batch) // local == self.rank
                held = torch.sort(perm[mine]).values
                images, labels = self._resident(held.numpy())
                slots = torch.searchsorted(held, perm).clamp(max=max(len(held) - 1, 0))
            self._shards = {e: shard for e, shard in self._shards.items() if e >= epoch - 1}
            if images.device.type == "cuda":  # from pinned memory: the copy does not wait for the GPU
                slots = slots.pin_memory().to(images.device, non_blocking=True)
            self._shards[epoch] = (images, labels, slots)
        return self._shards[epoch]

    def take(self, global_batch: int, channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's part of the next global batch: float images in [-1, 1] (N×3×H×W) and labels, on the
        device. Indices are sliced from per-epoch tensors already on the device: no transfer per step."""
        if global_batch != self._global_batch:
            self._origin, self._global_batch = self.stream, global_batch
            self._shards = {}
        remaining = global_batch // self.world_size
        position = self.stream + self.rank * remaining
        self.stream += global_batch
        self._shards = {e: shard for e, shard in self._shards.items() if e >= position // len(self)}
        parts = []
        while remaining:
            epoch, within = divmod(position, len(self))
            count = min(remaining, len(self) - within)
            images, labels, slots = self._shard(epoch)
            idx = slots[within:within + count]
            parts.append((images.index_select(0, idx), labels.index_select(0, idx)))
            position += count
            remaining -= count
        images, labels = parts[0] if len(parts) == 1 else (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
        images = images.to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels.to(self.device, non_blocking=True)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.stream // len(self), "position": self.stream % len(self), "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.stream = int(state["epoch"]) * len(self) + int(state["position"]) % len(self)
        self._global_batch, self._perms, self._shards = 0, {}, {}
