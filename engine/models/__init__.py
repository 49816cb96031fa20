"""The model zoo: import a model module here to register it."""

from engine.models import aae, basic, dcgan, fastgan, progressive, sngan  # noqa: F401  (each module registers its model)
from engine.models.losses import build_loss
from engine.models.registry import GanPair, ModelInfo, build_model, get_model, list_models, register_model, resolve_options
from engine.models.size import SizeEstimate, check_model_size, estimate_size

__all__ = ["GanPair", "ModelInfo", "SizeEstimate", "build_loss", "build_model", "check_model_size", "estimate_size",
           "get_model", "list_models", "register_model", "resolve_options"]
