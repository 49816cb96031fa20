"""What a resumed run may change: settings the checkpoint fixes are refused, the rest is applied (the
optimiser settings and every scheduled value at the checkpoint's images count: engine.train.schedule)."""

from __future__ import annotations

from typing import Any

from engine.config import CHECKPOINT_FIXED, Config, ConfigError
from engine.models import resolve_options


def check_resumable(config: Config, meta: dict[str, Any], run_name: str) -> None:
    """ConfigError when ``config`` asks for what the checkpoint cannot continue: another model, model
    options, resolution, images or seed. Nothing is written before this check."""
    theirs = _fixed(meta["model"], meta.get("model_options", {}), meta["resolution"],
                    meta.get("dataset", {}).get("spec"), meta.get("seed"))
    mine = _fixed(config.model.name, config.model.options, config.data.resolution, config.data.spec,
                  config.train.seed)
    changed = [f"{key} {theirs[key]!r} → {mine[key]!r}" for key in theirs
               if theirs[key] is not None and mine[key] != theirs[key]]
    if changed:
        raise ConfigError(f"run {run_name} cannot resume with other settings ({'; '.join(changed)}): its "
                          "checkpoint was trained with the first of each. Resume with the run's own settings, or "
                          f"start a new run from its weights with train.init_from={run_name}")


def _fixed(model: str, options: dict[str, Any], resolution: int, spec: str | None, seed: int | None
           ) -> dict[str, Any]:
    try:
        resolved = resolve_options(model, options)
    except ConfigError:
        resolved = dict(options)
    return dict(zip(CHECKPOINT_FIXED, (model, resolved, int(resolution), spec, seed), strict=True))
