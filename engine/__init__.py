"""GAN Studio engine: datasets, models, training, runs and generators. Never imports streamlit."""

from engine.config import (Config, ConfigError, DataConfig, LossConfig, MetricsConfig, ModelConfig, OptimConfig,
                           TrainConfig)
from engine.data import DatasetError, ImageDataset, load_dataset
from engine.device import DeviceError, detect_device, device_summary
from engine.generator import Generator, export_generator, load_generator
from engine.models import ModelInfo, list_models
from engine.presets import PRESETS, preset, suggested_config
from engine.runs import Run, list_runs, new_run_dir, runs_root
from engine.train.checkpoint import CheckpointError
from engine.worker import RunConflictError, start_training

__all__ = [
    "PRESETS", "CheckpointError", "Config", "ConfigError", "DataConfig", "DatasetError", "DeviceError", "Generator",
    "ImageDataset", "LossConfig", "MetricsConfig", "ModelConfig", "ModelInfo", "OptimConfig", "Run",
    "RunConflictError", "TrainConfig", "detect_device", "device_summary", "export_generator", "list_models",
    "list_runs", "load_dataset", "load_generator", "new_run_dir", "preset", "runs_root", "start_training",
    "suggested_config",
]
