"""Hugging Face Hub: push a run's generator with a model card, pull one back (safetensors and JSON only),
publish a demo Space. Tokens come from the caller, $HF_TOKEN or the saved login, and are never written.

Names are imported on first use, so the dataset scheme can use the client without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "engine.hub.client": ("offline", "reachable"),
    "engine.hub.errors": ("HubError", "PickleRefused"),
    "engine.hub.pull": ("PulledModel", "cached_models", "materialise_run", "pull_model"),
    "engine.hub.push": ("PushResult", "push_run"),
    "engine.hub.space": ("SpaceResult", "publish_space"),
    "engine.hub.token": ("redact", "resolve_token", "token_source"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'engine.hub' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
