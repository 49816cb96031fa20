"""Checkpoint files: tensors in safetensors, everything else in JSON written last (the commit mark)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.base.files import atomic_write, atomic_write_json, file_digest
from engine.base.formats import CHECKPOINT_FORMAT, CheckpointError, CheckpointMeta

__all__ = ["CheckpointError", "load_checkpoint", "load_verified", "module_tensors", "read_checkpoint",
           "read_checkpoint_meta", "restore_optimizer", "save_checkpoint", "split_prefix"]


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer
                       ) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    state = opt.state_dict()
    tensors = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            tensors[f"{prefix}.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, state["param_groups"]


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor],
                         groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": groups}


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def split_prefix(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def save_checkpoint(path_json: Path, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], extra_tensors: dict[str, torch.Tensor],
                    state: dict[str, Any], tensors_name: str | None = None) -> None:
    """Write the tensors (``<name>.safetensors``, or ``tensors_name`` beside the JSON) then ``<name>.json``,
    which names, sizes and hashes them. A checkpoint rewritten under one name gets a new tensors name,
    so a kill between the two writes leaves the old pair whole."""
    tensors: dict[str, torch.Tensor] = {}
    groups = {}
    for prefix, module in modules.items():
        tensors.update(module_tensors(prefix, module))
    for prefix, opt in optimizers.items():
        flat, groups[prefix] = _flatten_optimizer(prefix, opt)
        tensors.update(flat)
    tensors.update({k: v.detach().cpu().contiguous() for k, v in extra_tensors.items()})
    path_tensors = path_json.parent / tensors_name if tensors_name else path_json.with_suffix(".safetensors")
    atomic_write(path_tensors, lambda tmp: save_file(tensors, str(tmp), metadata={"format": CHECKPOINT_FORMAT}))
    meta = CheckpointMeta(path_tensors.name, path_tensors.stat().st_size, file_digest(path_tensors), groups, state)
    atomic_write_json(path_json, meta.to_dict())


def read_checkpoint(path_json: Path) -> CheckpointMeta:
    """A checkpoint's JSON (its tensors are not read or verified)."""
    try:
        text = Path(path_json).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path_json}: {exc}") from exc
    return CheckpointMeta.from_json(text, str(path_json))


def read_checkpoint_meta(path_json: Path) -> dict[str, Any]:
    """A checkpoint's JSON as the flat object the trainer wrote (its state beside the file's own keys)."""
    return read_checkpoint(path_json).to_dict()


def load_checkpoint(path_json: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(the flat JSON object, tensors) of a checkpoint, verified against the size and hash it recorded."""
    meta, tensors = load_verified(path_json)
    return meta.to_dict(), tensors


def load_verified(path_json: Path) -> tuple[CheckpointMeta, dict[str, torch.Tensor]]:
    """(JSON, tensors) of a checkpoint, the tensors verified against the size and hash the JSON recorded."""
    meta = read_checkpoint(path_json)
    path_tensors = Path(path_json).parent / meta.tensors
    if not path_tensors.is_file() or path_tensors.stat().st_size != meta.tensors_bytes:
        raise CheckpointError(f"checkpoint tensors {path_tensors} are missing or incomplete")
    if file_digest(path_tensors) != meta.tensors_sha1:
        raise CheckpointError(f"checkpoint tensors {path_tensors} are corrupt (hash mismatch)")
    try:
        tensors = load_file(str(path_tensors))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint tensors {path_tensors}: {exc}") from exc
    return meta, tensors


def restore_optimizer(opt: torch.optim.Optimizer, prefix: str, meta: dict[str, Any],
                      tensors: dict[str, torch.Tensor]) -> None:
    opt.load_state_dict(_unflatten_optimizer(prefix, tensors, meta["optimizer_groups"][prefix]))
    for group in opt.param_groups:  # moments take their parameter's memory format (channels_last)
        for param in group["params"]:
            state = opt.state.get(param, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == param.shape:
                    state[key] = torch.empty_like(param).copy_(value)
