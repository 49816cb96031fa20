"""GAN Studio engine: datasets, models, training, runs and generators. Never imports streamlit.

Names are imported on first use, so light modules (e.g. ``engine.data.faces`` in worker
processes) load without torch.
"""

from __future__ import annotations

from engine.lazy import lazy_exports

__version__ = "0.1.0"  # the version in pyproject.toml

_EXPORTS = {
    "engine.base.formats": ("CheckpointError",),
    "engine.config": ("Config", "ConfigError", "DataConfig", "LossConfig", "MetricsConfig", "ModelConfig",
                      "OptimConfig", "TrainConfig",
                      "DIFFAUGMENT_POLICIES", "DIVERGENCE_ACTIONS", "MEMORY_FORMATS", "PRECISIONS",
                      "update_from_dotted"),
    "engine.data": ("DatasetError", "ImageDataset", "load_dataset"),
    "engine.device": ("DeviceError", "OUT_OF_MEMORY_ADVICE", "detect_device", "device_summary"),
    "engine.generator": ("Generator", "export_generator", "load_generator", "slerp"),
    "engine.grid": ("enlarge", "image_grid"),
    "engine.hub": ("HubError", "publish_space", "pull_model", "push_run"),
    "engine.hub.pull": ("HUB_PREFIX",),
    "engine.models": ("ModelInfo", "check_model_size", "list_models", "get_model", "list_losses"),
    "engine.onnx_export": ("OnnxExportError", "export_onnx", "to_onnx"),
    "engine.expectations": ("Expectation", "expectation"),
    "engine.presets": ("DEVICE_CLASSES", "PRESETS", "RECOMMENDED", "SIZES", "device_class", "images_kind", "preset",
                       "recipe", "recommended", "suggested_config"),
    "engine.runs": ("Run", "list_runs", "new_run_dir", "runs_root"),
    "engine.runs.run": ("LIVE_STATES",),
    "engine.train.guard": ("DivergenceError", "halve_learning_rates"),
    "engine.worker": ("RunConflictError", "start_training", "visible_gpus"),
}
__getattr__, __dir__, __all__ = lazy_exports("engine", _EXPORTS, globals())
