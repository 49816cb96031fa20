"""Weights to start a new run from (fine-tuning or transfer): another run, a checkpoint, or an
exported generator folder. Only safetensors + JSON are read."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from engine.config import ConfigError
from engine.runs import Run
from engine.runs.files import read_json
from engine.train.checkpoint import CheckpointError, load_checkpoint, split_prefix

PREFIXES = ("G", "D", "G_ema", "E")


def _check_kind(source: str, model: str, resolution: int, their_model: str, their_resolution: int) -> None:
    if their_model != model or int(their_resolution) != resolution:
        raise ConfigError(f"train.init_from {source} holds a {their_model} model at {their_resolution} px; "
                          f"this run trains {model} at {resolution} px: choose the same model and resolution")


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
        try:
            info = read_json(path / "config.json")
            weights = load_file(str(path / "model.safetensors"))
        except (OSError, ValueError, SafetensorError) as exc:
            raise ConfigError(f"train.init_from {source}: cannot read the exported generator ({exc})") from None
        _check_kind(source, model, resolution, info.get("model", "?"), info.get("resolution", 0))
        return {"G_ema": weights}
    checkpoint = path if path.suffix == ".json" and path.is_file() else None
    if checkpoint is None and Run(path).exists():
        checkpoint = Run(path).latest_checkpoint()
    if checkpoint is None:
        raise ConfigError(f"train.init_from {source} is not a run with a checkpoint, a checkpoint .json or an "
                          "exported generator folder")
    try:
        meta, tensors = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise ConfigError(f"train.init_from: {exc}") from None
    _check_kind(source, model, resolution, meta["model"], meta["resolution"])
    return {prefix: part for prefix in PREFIXES if (part := split_prefix(prefix, tensors))}
