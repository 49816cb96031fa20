"""A trained generator as users meet it: load from a run, a checkpoint or an exported folder, then
sample uint8 images from seeds or latents, interpolate, and find latent directions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from engine.grid import to_uint8
from engine.models import build_model, check_model_size
from engine.runs import Run
from engine.runs.files import atomic_write, atomic_write_json, read_json
from engine.train.checkpoint import CheckpointError, load_checkpoint, split_prefix

EXPORT_FORMAT = "gan-studio-generator/1"
HUB_PREFIX = "hf:"
ENCODER_FILE = "encoder.safetensors"  # exported next to model.safetensors by autoencoders


class Generator:
    """Samples images from a trained generator network (EMA weights, eval mode)."""

    def __init__(self, module: nn.Module, info: dict[str, Any], device: torch.device | str = "cpu",
                 encoder: nn.Module | None = None) -> None:
        self.device = torch.device(device)
        self.module = module.to(self.device).eval().requires_grad_(False)
        self.encoder = encoder.to(self.device).eval().requires_grad_(False) if encoder is not None else None
        self.info = info
        self.latent_dim = int(info["latent_dim"])
        self.resolution = int(info["resolution"])
        self.num_classes = int(info.get("num_classes", 0))
        self.class_names: list[str] = list(info.get("class_names", []))
        self.model_name: str = info["model"]
        self.dataset: str | None = info.get("dataset")  # the training images' spec, when known

    def latents(self, seeds: Sequence[int]) -> torch.Tensor:
        """One N(0, I) latent per seed, the same for a seed on every machine."""
        return torch.stack([torch.randn(self.latent_dim, generator=torch.Generator().manual_seed(int(s)))
                            for s in seeds])

    @torch.no_grad()
    def sample(self, seeds: Sequence[int] | None = None, latents: torch.Tensor | None = None,
               truncation: float = 1.0, labels: Sequence[int] | None = None, batch_size: int = 64) -> np.ndarray:
        """uint8 N×H×W×3 images; truncation < 1 pulls latents toward the mean (0)."""
        if latents is None:
            if seeds is None:
                raise ValueError("give seeds or latents")
            latents = self.latents(seeds)
        latents = torch.as_tensor(latents, dtype=torch.float32) * float(truncation)
        label_tensor = torch.as_tensor(list(labels) if labels is not None else [0] * len(latents), dtype=torch.long)
        out = []
        for start in range(0, len(latents), batch_size):
            z = latents[start:start + batch_size].to(self.device)
            y = label_tensor[start:start + batch_size].to(self.device)
            out.append(to_uint8(self.module(z, y)))
        return np.concatenate(out) if out else np.zeros((0, self.resolution, self.resolution, 3), np.uint8)

    @torch.no_grad()
    def reconstruct(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Encode then decode uint8 N×H×W×3 images (adversarial autoencoders only)."""
        if self.encoder is None:
            raise ValueError(f"a {self.model_name} generator has no encoder: only autoencoders reconstruct images")
        out = []
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(self.device)
            x = x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
            out.append(to_uint8(self.module(self.encoder(x))))
        return np.concatenate(out) if out else np.zeros_like(images)

    def interpolate(self, z0: torch.Tensor, z1: torch.Tensor, steps: int, truncation: float = 1.0,
                    label: int = 0) -> np.ndarray:
        """Images along the spherical path from z0 to z1 (``steps`` points, both ends included)."""
        ts = torch.linspace(0, 1, steps)
        path = torch.stack([slerp(z0, z1, float(t)) for t in ts])
        return self.sample(latents=path, truncation=truncation, labels=[label] * steps)

    def directions(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top latent directions by closed-form factorisation of the first layer (SeFa, Shen & Zhou
        2021): unit vectors (count × latent_dim) and their singular values, strongest first."""
        weight = first_layer_weight(self.module, self.latent_dim)
        _, singular, vh = torch.linalg.svd(weight.float(), full_matrices=False)
        count = min(count, vh.shape[0])
        return vh[:count].cpu(), singular[:count].cpu()

    @classmethod
    def from_pretrained(cls, repo_id_or_path: str | os.PathLike, revision: str | None = None, *,
                        device: torch.device | str = "cpu", token: str | None = None) -> "Generator":
        """A pushed generator from the Hugging Face Hub ('owner/name': only config.json and safetensors weights
        are downloaded, once, into the Hub cache) or from a local folder, run or checkpoint."""
        local = Path(repo_id_or_path).expanduser()
        if local.exists():
            return load_generator(local, device)
        from engine.hub.pull import pull_model

        return load_generator(pull_model(str(repo_id_or_path), revision, token=token).path, device)

    def save_pretrained(self, save_directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` (+ the encoder's) and ``config.json``: what ``from_pretrained`` reads."""
        out = Path(save_directory)
        _save_weights(out / "model.safetensors", self.module)
        if self.encoder is not None:
            _save_weights(out / ENCODER_FILE, self.encoder)
        atomic_write_json(out / "config.json", dict(self.info, format=EXPORT_FORMAT, **(extra or {})))
        return out


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985); linear when the two are (anti)parallel."""
    a, b = z0.flatten().float(), z1.flatten().float()
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-4 or (torch.pi - omega).abs() < 1e-4:
        return ((1 - t) * a + t * b).view_as(z0)
    return ((torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)).view_as(z0)


def first_layer_weight(module: nn.Module, latent_dim: int) -> torch.Tensor:
    """The weights that map the latent (the first latent_dim inputs of the first layer that takes at
    least that many; a conditional model appends its class embedding after z), as (outputs × latent_dim)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear) and layer.in_features >= latent_dim:
            return layer.weight.detach()[:, :latent_dim]
        if isinstance(layer, nn.ConvTranspose2d) and layer.in_channels >= latent_dim:
            return layer.weight.detach().flatten(1).t()[:, :latent_dim]
    raise ValueError("this generator has no layer that takes the latent directly")


def _shape(info: dict[str, Any]) -> tuple[str, dict[str, Any], int, int]:
    """(model, options, resolution, classes) as a generator's config or checkpoint declares them."""
    try:
        return info["model"], info["model_options"], int(info["resolution"]), int(info.get("num_classes", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"the generator's config is incomplete or malformed ({type(exc).__name__}: {exc}); "
                              "export it again with python -m engine export") from None


def _build(info: dict[str, Any], weights: dict[str, torch.Tensor], device: torch.device | str,
           encoder_weights: dict[str, torch.Tensor] | None = None) -> Generator:
    shape = _shape(info)
    check_model_size(*shape, training=False, device=device)  # a config.json may describe any size
    pair = build_model(*shape)
    encoder = pair.encoder if encoder_weights else None
    try:
        pair.generator.load_state_dict(weights)
        if encoder is not None:
            encoder.load_state_dict(encoder_weights)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit model {info['model']}: {str(exc).splitlines()[0]}") from exc
    return Generator(pair.generator, info, device, encoder)


def _from_checkpoint(path: Path, device: torch.device | str) -> Generator:
    meta, tensors = load_checkpoint(path)
    info = {k: meta[k] for k in ("model", "model_options", "resolution", "latent_dim", "num_classes")}
    info["class_names"] = meta.get("dataset", {}).get("classes", [])
    info["dataset"] = meta.get("dataset", {}).get("spec")
    info["step"], info["images"] = meta["step"], meta["images"]
    return _build(info, split_prefix("G_ema", tensors), device, split_prefix("E", tensors))


def _pulled(spec: str) -> Path:
    """The local folder of 'hf:owner/name[@revision]', pulled from the Hub unless already cached."""
    from engine.hub import HubError, pull_model

    repo_id, _, revision = spec.removeprefix(HUB_PREFIX).partition("@")
    try:
        return pull_model(repo_id, revision or None).path
    except HubError as exc:
        raise CheckpointError(str(exc)) from exc


def load_generator(path: str | os.PathLike, device: torch.device | str = "cpu") -> Generator:
    """Load from a run directory (its latest checkpoint), a checkpoint .json, an exported folder, or a
    Hugging Face Hub model 'hf:owner/name[@revision]'."""
    path = _pulled(str(path)) if str(path).startswith(HUB_PREFIX) else Path(path).expanduser()
    if path.is_file() and path.suffix == ".json":
        return _from_checkpoint(path, device)
    if (path / "model.safetensors").is_file():
        try:
            info = read_json(path / "config.json")
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read exported generator in {path}: {exc}") from exc
        if not isinstance(info, dict) or info.get("format") != EXPORT_FORMAT:
            raise CheckpointError(f"{path / 'config.json'} is not a GAN Studio generator config ({EXPORT_FORMAT})")
        check_model_size(*_shape(info), training=False, device=device)  # before its weights are read
        try:
            weights = load_file(str(path / "model.safetensors"))
            encoder = load_file(str(path / ENCODER_FILE)) if (path / ENCODER_FILE).is_file() else None
        except (OSError, ValueError, SafetensorError) as exc:
            raise CheckpointError(f"cannot read exported generator in {path}: {exc}") from exc
        return _build(info, weights, device, encoder)
    run = Run(path)
    if run.exists():
        latest = run.latest_checkpoint()
        if latest is None:
            raise CheckpointError(f"run {path} has no checkpoint yet; wait for the first one or train longer")
        return _from_checkpoint(latest, device)
    raise CheckpointError(f"{path} is not a run directory, a checkpoint .json or an exported generator folder")


def export_generator(source: str | os.PathLike, out_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write the EMA generator as ``model.safetensors`` + ``config.json`` (loadable by load_generator)."""
    return load_generator(source).save_pretrained(out_dir, extra)


def _save_weights(path: Path, module: nn.Module) -> None:
    weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(weights, str(tmp), metadata={"format": EXPORT_FORMAT}))
