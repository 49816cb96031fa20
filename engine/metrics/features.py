"""Feature networks behind a registry: 'inception' is the standard one; tests and plugins add others."""

from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator

import numpy as np
import torch

from engine.metrics import weights

INCEPTION = "inception"


@dataclass
class FeatureSet:
    """Features of a set of images: `pool` (N×D, the FID/KID/PR space) and `logits` (N×C, for IS)."""

    pool: torch.Tensor
    logits: torch.Tensor | None = None
    _fid_stats: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.pool)

    def class_logits(self) -> torch.Tensor:
        """`logits`, which extracted features have (cached real features keep `pool` only)."""
        if self.logits is None:
            raise ValueError("these features have no class logits")
        return self.logits

    def fid_stats(self) -> dict[str, np.ndarray]:
        """Mean and covariance of `pool` as torch-fidelity computes them (computed once)."""
        if self._fid_stats is None:
            from torch_fidelity.metric_fid import fid_features_to_statistics  # slow import, only when used

            self._fid_stats = fid_features_to_statistics(self.pool)
        return self._fid_stats


@dataclass
class FeatureNet:
    """A network called on uint8 N×3×H×W images that returns (pool features, class logits), or (pool
    features,) when it has no classifier."""

    cache_id: str  # names the network and its weights; part of the real-statistics cache key
    module: torch.nn.Module
    device: torch.device
    no_classifier: str = ""  # why IS cannot use this network; empty when it has a classifier

    @torch.inference_mode()
    def extract(self, images: np.ndarray, batch_size: int = 64) -> FeatureSet:
        """Features of uint8 N×H×W×3 images, on the CPU as float32 (without logits when there is no classifier)."""
        pools, logits = [], []
        with full_precision(self.device):
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
                outputs = self.module(batch.permute(0, 3, 1, 2).to(self.device))
                pools.append(outputs[0].float().cpu())
                if not self.no_classifier:
                    logits.append(outputs[1].float().cpu())
        return FeatureSet(torch.cat(pools), torch.cat(logits) if logits else None)


@contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """No autocast and no TF32 inside: TF32 convolutions move Inception features by ~5e-4 (relative)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.autocast(device.type, enabled=False):
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


FeatureNetLoader = Callable[[str, torch.device], FeatureNet]
_NETS: dict[str, FeatureNetLoader] = {}


def register_feature_net(name: str, loader: FeatureNetLoader) -> None:
    """Make `loader(weights_path, device) -> FeatureNet` selectable as `name`.

    A loader raises MetricUnavailable when its weights cannot be had.
    """
    _NETS[name] = loader


def feature_net_names() -> list[str]:
    return sorted(_NETS)


def load_feature_net(name: str, weights_path: str, device: torch.device) -> FeatureNet:
    """Load a registered feature network; MetricUnavailable when it cannot run here."""
    if name not in _NETS:
        raise ValueError(f"unknown feature network {name!r} (known: {', '.join(feature_net_names())})")
    return _NETS[name](weights_path, device)


def build_inception(state_dict: dict[str, torch.Tensor], classifier: bool = True) -> torch.nn.Module:
    """torch-fidelity's Inception-v3 with the given weights.

    It resizes to 299×299 with the TensorFlow-1.x-compatible bilinear resize (no antialias), as the
    original FID/IS code did, and returns (pool3 2048-d features, logits without bias for IS); without
    `classifier` the logits layer (fc) is absent, `state_dict` has none, and it returns (pool3 features,).
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # torch-fidelity reads weights with torch.load(path, weights_only=False). We give it an in-memory
    # copy of tensors that were read with safetensors, so no file from disk is ever unpickled here.
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    if classifier:
        return FeatureExtractorInceptionV3(
            "gan-studio-inception", ["2048", "logits_unbiased"], feature_extractor_weights_path=buffer
        )
    return _headless_inception()("gan-studio-inception", ["2048"], feature_extractor_weights_path=buffer)


@lru_cache(maxsize=1)
def _headless_inception() -> type[torch.nn.Module]:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class HeadlessInceptionV3(FeatureExtractorInceptionV3):
        """torch-fidelity's Inception-v3 without its logits layer: it drops fc before loading the weights,
        so the strict load checks every other tensor."""

        def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
            del self.fc
            return super().load_state_dict(state_dict, strict, assign)

    return HeadlessInceptionV3


@lru_cache(maxsize=2)
def _inception_module(converted: weights.Converted, mtime_ns: int, device: str) -> torch.nn.Module:
    return build_inception(weights.load_tensors(converted), converted.classifier).to(device)


def _load_inception(weights_path: str, device: torch.device) -> FeatureNet:
    converted = weights.resolve(weights.INCEPTION, weights_path)
    module = _inception_module(converted, converted.path.stat().st_mtime_ns, str(device))
    no_classifier = "" if converted.classifier else weights.classifier_message(weights.INCEPTION, converted)
    return FeatureNet(converted.cache_id, module, device, no_classifier)


register_feature_net(INCEPTION, _load_inception)
