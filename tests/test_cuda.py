"""The CUDA path: bf16 autocast and channels_last, the dataset resident on the GPU, training steps that
never wait for the GPU, and a deterministic resume. Skipped without a CUDA GPU (CI has none); on a GPU
machine run ``python -m pytest tests/test_cuda.py``."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from engine import ConfigError, load_generator
from engine.models import get_model
from engine.runs import Run
from engine.train import Trainer
from tests.conftest import tiny_config
from tests.test_zoo import MODELS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _config(steps: int, model: str = "dcgan", **train: object):
    config = tiny_config(max_steps=steps, device="cuda", batch_size=32, **train)
    config.model.name, config.model.options = model, dict(get_model(model).settings.tiny)
    config.loss.kind = get_model(model).loss or "bce"
    return config


def test_cuda_trains_in_bf16_channels_last_from_device_resident_data(tmp_path):
    trainer = Trainer(_config(12), tmp_path / "run")
    assert trainer.bf16 and trainer.channels_last
    assert trainer.data.images.device.type == "cuda"
    conv = next(m for m in trainer.G.modules() if isinstance(m, nn.ConvTranspose2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert trainer.train() == "finished"
    records = [r for r in Run(tmp_path / "run").metrics() if r["kind"] == "train"]
    assert records and all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records)
    assert load_generator(tmp_path / "run", device="cpu").sample(seeds=range(4)).shape == (4, 32, 32, 3)


@pytest.mark.parametrize("model", MODELS)
def test_a_training_step_never_waits_for_the_gpu(tmp_path, model):
    config = _config(0, model)
    config.data.spec = "builtin:faces:64"  # an epoch every 2 steps: epoch changes are inside the window
    config.data.diffaugment = "color,translation,cutout"
    config.data.rotate_degrees = 5.0
    trainer = Trainer(config, tmp_path / "run")
    trainer.train_step()  # optimiser moments and cuDNN autotuning are set up on the first step
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        stats = [trainer.train_step() for _ in range(5)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(torch.isfinite(s).all() for s in stats)


def test_deterministic_cuda_resume_equals_a_straight_run(tmp_path):
    straight = Trainer(_config(16, deterministic=True, checkpoint_every=8), tmp_path / "straight")
    straight.train()
    Trainer(_config(8, deterministic=True, checkpoint_every=8), tmp_path / "split").train()
    resumed = Trainer(_config(16, deterministic=True, checkpoint_every=8), tmp_path / "split", resume=True)
    resumed.train()
    for mine, theirs in ((straight.G, resumed.G), (straight.D, resumed.D), (straight.ema.ema, resumed.ema.ema)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_torch_compile_trains_contiguous_and_refuses_channels_last(tmp_path):
    """Inductor's convolution backward fails on channels_last weights (PyTorch 2.11, H200): under
    train.compile the auto layout is contiguous and an explicit channels_last is refused."""
    config = _config(4, compile="default")
    trainer = Trainer(config, tmp_path / "auto")
    assert not trainer.channels_last and trainer.train() == "finished"
    refused = _config(4, compile="default", memory_format="channels_last")
    with pytest.raises(ConfigError, match="train.compile needs train.memory_format=contiguous"):
        Trainer(refused, tmp_path / "explicit")
