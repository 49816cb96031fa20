"""The model zoo: import a model module here to register it."""

from engine.models import aae, basic, dcgan, fastgan, lsgan, progressive, r3gan, sngan  # noqa: F401  (each registers its model)
from engine.models.check import check_model_config
from engine.models.losses import Loss, LossInfo, build_loss, get_loss, list_losses, register_loss
from engine.models.registry import (AuxDiscriminator, Capabilities, GanPair, Growing, ModelInfo, ModelSettings, Recipe,
                                    ReportsGrowth, build_model, declared_recipes, get_model, list_models,
                                    register_model, resolve_options)
from engine.models.size import SizeEstimate, check_model_size, estimate_size

__all__ = ["AuxDiscriminator", "Capabilities", "GanPair", "Growing", "Loss", "LossInfo", "ModelInfo", "ModelSettings",
           "Recipe", "ReportsGrowth", "SizeEstimate", "build_loss", "build_model", "check_model_config", "check_model_size",
           "declared_recipes", "estimate_size", "get_loss", "get_model", "list_losses", "list_models", "register_loss",
           "register_model", "resolve_options"]
