"""A trained generator as users meet it: load from a run, a checkpoint or an exported folder, then
sample uint8 images from seeds or latents, interpolate, and find latent directions."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from engine import __version__
from engine.base.checkpoint import load_verified, split_prefix
from engine.base.files import atomic_write, atomic_write_json
from engine.base.formats import CONFIG_FILE, ENCODER_FILE, GENERATOR_FORMAT, MODEL_FILE, CheckpointError, GeneratorInfo
from engine.grid import to_uint8
from engine.hf.errors import HubError
from engine.hub.pull import HUB_PREFIX, pull_model, pulled_path
from engine.models import build_model, check_model_size
from engine.runs import Run


class Generator:
    """Samples images from a trained generator network (EMA weights, eval mode)."""

    def __init__(self, module: nn.Module, info: GeneratorInfo | Mapping[str, Any], device: torch.device | str = "cpu",
                 encoder: nn.Module | None = None) -> None:
        self.device = torch.device(device)
        self.module = module.to(self.device).eval().requires_grad_(False)
        self.encoder = encoder.to(self.device).eval().requires_grad_(False) if encoder is not None else None
        self.info = info if isinstance(info, GeneratorInfo) else GeneratorInfo.from_dict(info)
        self.latent_dim = self.info.latent_dim
        self.resolution = self.info.resolution
        self.num_classes = self.info.num_classes
        self.class_names = list(self.info.class_names)
        self.model_name = self.info.model
        self.dataset = self.info.dataset  # the training images' spec, when known

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
    def from_pretrained(cls, repo_id_or_path: str | os.PathLike[str], revision: str | None = None, *,
                        device: torch.device | str = "cpu", token: str | None = None) -> "Generator":
        """A pushed generator from the Hugging Face Hub ('owner/name': only config.json and safetensors weights
        are downloaded, once, into the Hub cache) or from a local folder, run or checkpoint."""
        local = Path(repo_id_or_path).expanduser()
        if local.exists():
            return load_generator(local, device)
        return load_generator(pull_model(str(repo_id_or_path), revision, token=token).path, device)

    def save_pretrained(self, save_directory: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` (+ the encoder's) and ``config.json``: what ``from_pretrained`` reads."""
        out = Path(save_directory)
        _save_weights(out / MODEL_FILE, self.module)
        if self.encoder is not None:
            _save_weights(out / ENCODER_FILE, self.encoder)
        info = replace(self.info, engine_version=__version__, extra={**self.info.extra, **(extra or {})})
        atomic_write_json(out / CONFIG_FILE, info.to_dict())
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


def _build(info: GeneratorInfo, weights: dict[str, torch.Tensor], device: torch.device | str,
           encoder_weights: dict[str, torch.Tensor] | None = None) -> Generator:
    check_model_size(*info.network, training=False, device=device)  # a config.json may describe any size
    pair = build_model(*info.network)
    encoder = pair.encoder if encoder_weights else None
    try:
        pair.generator.load_state_dict(weights)
        if encoder is not None and encoder_weights:
            encoder.load_state_dict(encoder_weights)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit model {info.model}: {str(exc).splitlines()[0]}") from exc
    return Generator(pair.generator, info, device, encoder)


def _from_checkpoint(path: Path, device: torch.device | str) -> Generator:
    meta, tensors = load_verified(path)
    return _build(meta.generator_info(), split_prefix("G_ema", tensors), device, split_prefix("E", tensors))


def load_generator(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Generator:
    """Load from a run directory (its latest checkpoint), a checkpoint .json, an exported folder, or a
    Hugging Face Hub model 'hf:owner/name[@revision]'."""
    if str(path).startswith(HUB_PREFIX):
        try:
            path = pulled_path(str(path))
        except HubError as exc:
            raise CheckpointError(str(exc)) from exc
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".json":
        return _from_checkpoint(path, device)
    if (path / MODEL_FILE).is_file():
        info = GeneratorInfo.read(path)
        check_model_size(*info.network, training=False, device=device)  # before its weights are read
        try:
            weights = load_file(str(path / MODEL_FILE))
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


def export_generator(source: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                     extra: dict[str, Any] | None = None) -> Path:
    """Write the EMA generator as ``model.safetensors`` + ``config.json`` (loadable by load_generator)."""
    return load_generator(source).save_pretrained(out_dir, extra)


def _save_weights(path: Path, module: nn.Module) -> None:
    weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(weights, str(tmp), metadata={"format": GENERATOR_FORMAT}))
