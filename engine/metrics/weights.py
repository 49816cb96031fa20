"""Find, download and verify the Inception weights; keep one safetensors copy in the cache.

Order: an explicit path (CLI flag, config field, studio field), then $GAN_STUDIO_INCEPTION_WEIGHTS,
then the converted copy in the cache, then the original .pth in the cache folder or in torch's hub
cache, then a download (not while GAN_STUDIO_OFFLINE=1 or HF_HUB_OFFLINE=1). A .pth is unpickled only
after its SHA-256 matched the published file's, and only with torch.load(weights_only=True); it is
converted once to safetensors, which is what is loaded from then on.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine.base.environment import cache_dir, offline
from engine.base.files import file_digest
from engine.metrics.errors import MetricUnavailable

ENV_VAR = "GAN_STUDIO_INCEPTION_WEIGHTS"
CLI_FLAG = "--inception-weights"
CONFIG_FIELD = "metrics.inception_weights"
DOWNLOAD_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class WeightsSpec:
    """A published weights file and the SHA-256 of its exact bytes."""

    file_name: str
    url: str
    sha256: str
    cache_id: str  # also names the converted copy: <cache_id>.safetensors

    @property
    def converted_name(self) -> str:
        return f"{self.cache_id}.safetensors"


INCEPTION = WeightsSpec(
    file_name="weights-inception-2015-12-05-6726825d.pth",
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",  # 95,628,359 bytes
    cache_id="inception-2015-12-05-6726825d",
)

_failed_downloads: dict[str, str] = {}  # url -> reason; one attempt per process


def weights_dir() -> Path:
    """Where downloaded or dropped-in weights live: <cache>/metrics/weights."""
    return cache_dir() / "metrics" / "weights"


def missing_message(spec: WeightsSpec, reason: str) -> str:
    """The user-facing text: which file, where to put it, and the three ways to point at it."""
    return (
        f"The Inception weights {spec.file_name} (needed by FID, KID, IS, precision/recall) are not on "
        f"this machine and {reason}. On a machine with internet download {spec.url} and put it in "
        f"{weights_dir()}/, or point at it with {ENV_VAR}=PATH, the CLI flag {CLI_FLAG} PATH, or "
        f"{CONFIG_FIELD} (the studio's Inception weights field). SWD needs no weights."
    )


def resolve(spec: WeightsSpec, explicit: str = "") -> Path:
    """A verified .safetensors copy of `spec`'s weights; MetricUnavailable when there is none."""
    if explicit:
        return _from_user_file(spec, Path(explicit).expanduser(), "the given inception weights path")
    if os.environ.get(ENV_VAR):
        return _from_user_file(spec, Path(os.environ[ENV_VAR]).expanduser(), ENV_VAR)
    converted = weights_dir() / spec.converted_name
    if converted.is_file():
        _check_converted(spec, converted)
        return converted
    for original in (weights_dir() / spec.file_name, Path(torch.hub.get_dir()) / "checkpoints" / spec.file_name):
        if original.is_file():
            return _convert(spec, original)
    downloaded = _download(spec)
    try:
        return _convert(spec, downloaded)
    finally:
        downloaded.unlink(missing_ok=True)


def _from_user_file(spec: WeightsSpec, path: Path, origin: str) -> Path:
    if not path.is_file():
        raise MetricUnavailable(
            f"Inception weights file {path} (from {origin}) does not exist. "
            + missing_message(spec, "the path points nowhere")
        )
    if path.suffix == ".safetensors":
        _check_converted(spec, path)
        return path
    return _convert(spec, path)


def _check_converted(spec: WeightsSpec, path: Path) -> None:
    try:
        with safe_open(str(path), "pt") as handle:
            source = (handle.metadata() or {}).get("source_sha256", "")
    except (SafetensorError, OSError) as exc:
        raise MetricUnavailable(f"{path} is not a readable safetensors file ({exc}); delete it and retry") from None
    if source != spec.sha256:
        raise MetricUnavailable(
            f"{path} is not a converted copy of {spec.file_name}; point at the original .pth instead"
        )


def _convert(spec: WeightsSpec, source: Path) -> Path:
    """Verify `source` by hash, unpickle it with weights_only=True and store it as safetensors."""
    digest = file_digest(source, "sha256")
    if digest != spec.sha256:
        raise MetricUnavailable(
            f"{source} is not {spec.file_name}: its SHA-256 is {digest[:12]}…, expected {spec.sha256[:12]}…. "
            f"Use the file from {spec.url}"
        )
    target = weights_dir() / spec.converted_name
    if not target.is_file():
        state = torch.load(source, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise MetricUnavailable(f"{source} does not hold a plain state dict of tensors")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tensors = {name: tensor.contiguous() for name, tensor in state.items()}
        save_file(tensors, str(partial), metadata={"source": spec.file_name, "source_sha256": digest})
        os.replace(partial, target)
    return target


def _download(spec: WeightsSpec) -> Path:
    switch = offline()
    if switch:
        raise MetricUnavailable(missing_message(spec, f"downloads are off ({switch}=1)"))
    if spec.url in _failed_downloads:
        raise MetricUnavailable(missing_message(spec, _failed_downloads[spec.url]))
    target = weights_dir() / f"{spec.file_name}.{os.getpid()}.part"
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"downloading {spec.url} to {weights_dir()}", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(spec.url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(target, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
    except (urllib.error.URLError, OSError) as exc:
        target.unlink(missing_ok=True)
        _failed_downloads[spec.url] = f"could not be downloaded ({getattr(exc, 'reason', exc)})"
        raise MetricUnavailable(missing_message(spec, _failed_downloads[spec.url])) from None
    return target
