"""Hugging Face Hub: push a run's generator with a model card, pull one back (safetensors and JSON only),
publish a demo Space. Tokens come from the caller, $HF_TOKEN or the saved login, and are never written.

Names are imported on first use. The client, tokens and errors live in ``engine.hf``, which the data layer
uses for Hub datasets too.
"""

from __future__ import annotations

from engine.lazy import lazy_exports

_EXPORTS = {
    "engine.hf.client": ("offline", "reachable"),
    "engine.hf.errors": ("HubError", "PickleRefused"),
    "engine.hub.pull": ("PulledModel", "cached_models", "materialise_run", "pull_model"),
    "engine.hub.push": ("PushResult", "push_run"),
    "engine.hub.space": ("SpaceResult", "publish_space"),
    "engine.hf.token": ("redact", "resolve_token", "token_source"),
}
__getattr__, __dir__, __all__ = lazy_exports("engine.hub", _EXPORTS, globals())
