"""The uint8 dataset resident on the training device, with a resumable, seeded data order."""

from __future__ import annotations

import numpy as np
import torch

DEVICE_MEMORY_FRACTION = 0.4


class DeviceDataset:
    """Whole dataset as uint8 NCHW on the device (or pinned host memory when it does not fit).

    Batches are gathered by index tensors and converted to float on the device; the order is a
    fresh permutation per epoch derived from the seed, so the position alone resumes it.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device, seed: int) -> None:
        tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
        self.device = device
        self.on_device = self._fits(tensor, device)
        if self.on_device:
            self.images = tensor.to(device)
        elif device.type == "cuda":
            self.images = tensor.pin_memory()
        else:
            self.images = tensor
        self.labels = torch.from_numpy(labels.astype(np.int64)).to(self.images.device)
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._perm = self._permutation(0)

    @staticmethod
    def _fits(tensor: torch.Tensor, device: torch.device) -> bool:
        if device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(device)
        return tensor.numel() < DEVICE_MEMORY_FRACTION * free

    def __len__(self) -> int:
        return self.images.shape[0]

    def _permutation(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self), generator=gen)

    def next_indices(self, count: int) -> torch.Tensor:
        """The next ``count`` indices of the data order (crossing epoch boundaries)."""
        parts = []
        while count > 0:
            take = min(count, len(self) - self.position)
            parts.append(self._perm[self.position:self.position + take])
            self.position += take
            count -= take
            if self.position == len(self):
                self.epoch += 1
                self.position = 0
                self._perm = self._permutation(self.epoch)
        return torch.cat(parts)

    def batch(self, indices: torch.Tensor, channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images in [-1, 1] (N×3×H×W) and labels on the device."""
        idx = indices.to(self.images.device)
        images = self.images.index_select(0, idx).to(self.device, non_blocking=True)
        images = images.float().div_(127.5).sub_(1.0)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, self.labels.index_select(0, idx).to(self.device, non_blocking=True)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"]) % len(self)
        self._perm = self._permutation(self.epoch)
