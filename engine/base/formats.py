"""The JSON that describes a network on disk, as dataclasses: a checkpoint's JSON (``CheckpointMeta``) and an
exported generator's config.json (``GeneratorInfo``). Both round-trip through strict JSON and record their
format and the version of the engine that wrote them.

Older files load too: one written before versions were recorded reads with ``engine_version`` None, and keys
this engine does not know are kept (``GeneratorInfo.extra``, ``CheckpointMeta.state``) and written back as
they were."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine import __version__
from engine.base.files import strict_json

CHECKPOINT_FORMAT = "gan-studio-checkpoint/1"
GENERATOR_FORMAT = "gan-studio-generator/1"
CONFIG_FILE, MODEL_FILE = "config.json", "model.safetensors"
MODEL_FILES = (CONFIG_FILE, MODEL_FILE)  # an exported generator folder
ENCODER_FILE = "encoder.safetensors"  # exported next to model.safetensors by autoencoders
_MISSING = object()


class CheckpointError(RuntimeError):
    """A checkpoint or an exported generator is missing, incomplete or of the wrong kind."""


def _take(data: Mapping[str, Any], key: str, kind: type, default: Any = _MISSING) -> Any:
    """``data[key]`` when it is of ``kind`` (a bool is no int), ``default`` when absent; ValueError otherwise."""
    value = data.get(key, default)
    if value is _MISSING:
        raise ValueError(f"it has no {key!r}")
    if value is not default and (not isinstance(value, kind) or isinstance(value, bool)):
        raise ValueError(f"its {key!r} is {value!r}")
    return value


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{where} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class GeneratorInfo(Mapping[str, Any]):
    """What an exported generator is: the network to build (model, options, resolution, latent size, classes)
    and, when known, what it was trained on and for how long. Also a read-only mapping of its JSON keys, so
    templates (the model card) read it by name."""

    model: str
    resolution: int
    latent_dim: int
    model_options: dict[str, Any] = field(default_factory=dict)  # {} is the model's defaults
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    dataset: str | None = None  # the training images' spec
    step: int | None = None
    images: int | None = None
    engine_version: str | None = __version__  # None: written before versions were recorded
    extra: dict[str, Any] = field(default_factory=dict)  # keys this engine does not know

    @property
    def network(self) -> tuple[str, dict[str, Any], int, int]:
        """(model, options, resolution, classes): what builds the network and sizes it."""
        return self.model, self.model_options, self.resolution, self.num_classes

    def to_dict(self) -> dict[str, Any]:
        """The config.json object: known keys (None values left out), the format, and the unknown keys."""
        known = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **{k: v for k, v in known.items() if v is not None}, "format": GENERATOR_FORMAT}

    def to_json(self) -> str:
        return strict_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "the generator's config") -> "GeneratorInfo":
        """Parse a config.json object (CheckpointError naming ``where`` when it is not one). A mapping without
        'format' is taken as an in-memory description of this format."""
        found = data.get("format", GENERATOR_FORMAT) if isinstance(data, Mapping) else type(data).__name__
        if found != GENERATOR_FORMAT:
            raise CheckpointError(f"{where} has format {found!r}, not {GENERATOR_FORMAT!r}")
        known = {f.name for f in fields(cls)} | {"format"}
        try:
            return cls(model=_take(data, "model", str), resolution=_take(data, "resolution", int),
                       latent_dim=_take(data, "latent_dim", int), model_options=_take(data, "model_options", dict, {}),
                       num_classes=_take(data, "num_classes", int, 0), class_names=_take(data, "class_names", list, []),
                       dataset=_take(data, "dataset", str, None), step=_take(data, "step", int, None),
                       images=_take(data, "images", int, None),
                       engine_version=_take(data, "engine_version", str, None),
                       extra={k: v for k, v in data.items() if k not in known})
        except ValueError as exc:
            raise CheckpointError(f"{where} is incomplete or malformed ({exc}); export it again with "
                                  "python -m engine export") from None

    @classmethod
    def from_json(cls, text: str, where: str = "the generator's config") -> "GeneratorInfo":
        data = _loads(text, where)
        if not isinstance(data, dict) or "format" not in data:
            raise CheckpointError(f"{where} is not a GAN Studio generator config: it names no format")
        return cls.from_dict(data, where)

    @classmethod
    def read(cls, folder: str | Path, where: str | None = None) -> "GeneratorInfo":
        """The config.json of an exported generator folder (``where`` names it in errors)."""
        path = Path(folder) / CONFIG_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read exported generator in {folder}: {exc}") from exc
        return cls.from_json(text, where or str(path))

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


_ENVELOPE = ("format", "engine_version", "tensors", "tensors_bytes", "tensors_sha1", "optimizer_groups")


@dataclass(frozen=True)
class CheckpointMeta:
    """A checkpoint's JSON, the commit mark of its tensors: the tensors file (name, size, SHA-1), the optimisers'
    parameter groups, the engine version, and the trainer's ``state`` as the trainer wrote it (counters, data
    order, best so far, and the model and dataset trained: ``generator_info()``). The file is one flat object."""

    tensors: str
    tensors_bytes: int
    tensors_sha1: str
    optimizer_groups: dict[str, list[dict[str, Any]]]
    state: dict[str, Any]
    engine_version: str | None = __version__  # None: written before versions were recorded

    def to_dict(self) -> dict[str, Any]:
        envelope = {"format": CHECKPOINT_FORMAT, "tensors": self.tensors, "tensors_bytes": self.tensors_bytes,
                    "tensors_sha1": self.tensors_sha1, "optimizer_groups": self.optimizer_groups}
        if self.engine_version is not None:
            envelope["engine_version"] = self.engine_version
        return {**self.state, **envelope}

    def to_json(self) -> str:
        return strict_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, where: str = "checkpoint") -> "CheckpointMeta":
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{where} is not a GAN Studio checkpoint (format {CHECKPOINT_FORMAT})")
        try:
            return cls(tensors=_take(data, "tensors", str), tensors_bytes=_take(data, "tensors_bytes", int),
                       tensors_sha1=_take(data, "tensors_sha1", str),
                       optimizer_groups=_take(data, "optimizer_groups", dict),
                       state={k: v for k, v in data.items() if k not in _ENVELOPE},
                       engine_version=_take(data, "engine_version", str, None))
        except ValueError as exc:
            raise CheckpointError(f"{where} is incomplete or malformed ({exc})") from None

    @classmethod
    def from_json(cls, text: str, where: str = "checkpoint") -> "CheckpointMeta":
        return cls.from_dict(_loads(text, where), where)

    def generator_info(self) -> GeneratorInfo:
        """The generator this checkpoint holds (its EMA weights), described as an export describes it."""
        dataset = self.state.get("dataset") or {}
        keys = ("model", "model_options", "resolution", "latent_dim", "num_classes", "step", "images")
        described: dict[str, Any] = {key: self.state[key] for key in keys if key in self.state}
        return GeneratorInfo.from_dict(dict(described, class_names=dataset.get("classes", []),
                                            dataset=dataset.get("spec")), "the checkpoint's model")
