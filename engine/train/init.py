"""Weights to start a new run from (fine-tuning or transfer): another run, a checkpoint, or an
exported generator folder. Only safetensors + JSON are read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from engine.config import ConfigError
from engine.models import check_model_size
from engine.runs import Run
from engine.runs.files import read_json
from engine.train.checkpoint import FORMAT, CheckpointError, load_checkpoint, split_prefix

PREFIXES = ("G", "D", "G_ema", "E")


def _check_source(source: str, model: str, resolution: int, info: dict[str, Any]) -> None:
    """The weights' declared model (their config.json or checkpoint JSON) is this run's model at this
    resolution, and small enough to read: checked before the tensors are loaded."""
    their_model, their_resolution = info.get("model", "?"), info.get("resolution", 0)
    if their_model != model or int(their_resolution) != resolution:
        raise ConfigError(f"train.init_from {source} holds a {their_model} model at {their_resolution} px; "
                          f"this run trains {model} at {resolution} px: choose the same model and resolution")
    try:
        check_model_size(model, info.get("model_options", {}), resolution, int(info.get("num_classes", 0)),
                         training=False, device="cpu")
    except ConfigError as exc:
        raise ConfigError(f"train.init_from {source}: {exc}") from None


def _declared(checkpoint: Path) -> dict[str, Any] | None:
    """A checkpoint's JSON, or None when it is not a readable checkpoint (loading it then says why)."""
    try:
        meta = read_json(checkpoint)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def _pulled(source: str) -> Path:
    """The pulled repo's training state (G, D, EMA) when it was pushed with one, else its generator."""
    from engine.generator import HUB_PREFIX
    from engine.hub import HubError, pull_model

    repo, _, revision = source.removeprefix(HUB_PREFIX).partition("@")
    try:
        try:
            return pull_model(repo, revision or None, with_training_state=True).training_dir
        except HubError:
            return pull_model(repo, revision or None).path
    except HubError as exc:
        raise ConfigError(f"train.init_from: {exc}") from None


def initial_weights(source: str, model: str, resolution: int) -> dict[str, dict[str, torch.Tensor]]:
    """State dicts by module prefix (G, D, G_ema, E); an exported folder gives only G_ema.
    ``hf:owner/name`` pulls a pushed model from the Hugging Face Hub first (its training state when pushed)."""
    from engine.generator import HUB_PREFIX  # engine.generator imports the train package

    path = _pulled(source) if source.startswith(HUB_PREFIX) else Path(source).expanduser()
    if (path / "model.safetensors").is_file():
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
        _, tensors = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise ConfigError(f"train.init_from: {exc}") from None
    return {prefix: part for prefix in PREFIXES if (part := split_prefix(prefix, tensors))}


def _exported(source: str, path: Path, model: str, resolution: int) -> dict[str, torch.Tensor]:
    """An exported generator folder's weights, once its config.json matches this run."""
    try:
        info = read_json(path / "config.json")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"train.init_from {source}: cannot read the exported generator ({exc})") from None
    _check_source(source, model, resolution, info if isinstance(info, dict) else {})
    try:
        return load_file(str(path / "model.safetensors"))
    except (OSError, SafetensorError) as exc:
        raise ConfigError(f"train.init_from {source}: cannot read the exported generator ({exc})") from None
