"""Weights to start a new run from (fine-tuning or transfer): another run, a checkpoint, or an
exported generator folder. Only safetensors + JSON are read."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from engine.base.checkpoint import load_verified, read_checkpoint, split_prefix
from engine.base.formats import MODEL_FILE, CheckpointError, GeneratorInfo
from engine.config import ConfigError
from engine.hf.errors import HubError
from engine.hub.pull import HUB_PREFIX, pulled_path
from engine.models import check_model_size
from engine.runs import Run

PREFIXES = ("G", "D", "G_ema", "E")


def _check_source(source: str, model: str, resolution: int, info: GeneratorInfo) -> None:
    """The weights' declared model (their config.json or checkpoint JSON) is this run's model at this
    resolution, and small enough to read: checked before the tensors are loaded."""
    if info.model != model or info.resolution != resolution:
        raise ConfigError(f"train.init_from {source} holds a {info.model} model at {info.resolution} px; "
                          f"this run trains {model} at {resolution} px: choose the same model and resolution")
    try:
        check_model_size(*info.network, training=False, device="cpu")
    except ConfigError as exc:
        raise ConfigError(f"train.init_from {source}: {exc}") from None


def _declared(checkpoint: Path) -> GeneratorInfo | None:
    """The model a checkpoint declares, or None when it is not a readable checkpoint (loading it then says why)."""
    try:
        return read_checkpoint(checkpoint).generator_info()
    except CheckpointError:
        return None


def initial_weights(source: str, model: str, resolution: int) -> dict[str, dict[str, torch.Tensor]]:
    """State dicts by module prefix (G, D, G_ema, E); an exported folder gives only G_ema.
    ``hf:owner/name`` pulls a pushed model from the Hugging Face Hub first (its training state when pushed)."""
    try:
        path = pulled_path(source, training_state=True) if source.startswith(HUB_PREFIX) else Path(source).expanduser()
    except HubError as exc:
        raise ConfigError(f"train.init_from: {exc}") from None
    if (path / MODEL_FILE).is_file():
        return {"G_ema": _exported(source, path, model, resolution)}
    checkpoint = path if path.suffix == ".json" and path.is_file() else None
    if checkpoint is None and Run(path).exists():
        checkpoint = Run(path).latest_checkpoint()
    if checkpoint is None:
        raise ConfigError(f"train.init_from {source} is not a run with a checkpoint, a checkpoint .json or an "
                          "exported generator folder")
    declared = _declared(checkpoint)
    if declared is not None:
        _check_source(source, model, resolution, declared)
    try:
        _, tensors = load_verified(checkpoint)
    except CheckpointError as exc:
        raise ConfigError(f"train.init_from: {exc}") from None
    return {prefix: part for prefix in PREFIXES if (part := split_prefix(prefix, tensors))}


def _exported(source: str, path: Path, model: str, resolution: int) -> dict[str, torch.Tensor]:
    """An exported generator folder's weights, once its config.json matches this run."""
    try:
        info = GeneratorInfo.read(path)
    except CheckpointError as exc:
        raise ConfigError(f"train.init_from {source}: {exc}") from None
    _check_source(source, model, resolution, info)
    try:
        return load_file(str(path / MODEL_FILE))
    except (OSError, SafetensorError) as exc:
        raise ConfigError(f"train.init_from {source}: cannot read the exported generator ({exc})") from None
