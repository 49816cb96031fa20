"""Whether a config's model, options, resolution and loss fit one another (before anything is built)."""

from __future__ import annotations

from engine.config import Config, ConfigError
from engine.models.losses import get_loss
from engine.models.registry import ModelInfo, get_model, resolve_options


def check_model_config(config: Config) -> ModelInfo:
    """The config's registry entry, or ConfigError naming what does not fit: an unknown model or loss,
    a bad option, a resolution the model lacks, or a loss other than the one the model is defined with."""
    info = get_model(config.model.name)
    resolve_options(info.name, config.model.options)
    if config.data.resolution not in info.resolutions:
        raise ConfigError(f"model {info.name} supports resolutions {', '.join(map(str, info.resolutions))}, "
                          f"not {config.data.resolution}")
    get_loss(config.loss.kind)
    if info.loss and config.loss.kind != info.loss:
        raise ConfigError(f"model {info.name} trains with loss.kind={info.loss}, not {config.loss.kind}")
    return info
