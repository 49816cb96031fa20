"""Large-batch recipes (learning-rate scaling) and the torch.compile path with its eager fallback."""

import pytest

from engine.config import ConfigError
from engine.runs import Run
from engine.train import Trainer
from engine.train.loop import compiled_layout
from tests.conftest import tiny_config


@pytest.mark.parametrize("scaling, factor", [("none", 1.0), ("sqrt", 2.0), ("linear", 4.0)])
def test_learning_rates_scale_with_the_batch(tmp_path, scaling, factor):
    config = tiny_config(max_steps=2, log_every=1, batch_size=64)
    config.optim.lr_scaling, config.optim.reference_batch = scaling, 16
    config.optim.lr_g, config.optim.lr_d = 2e-4, 1e-4
    Trainer(config, tmp_path / "run").train()
    record = [r for r in Run(tmp_path / "run").metrics() if r["kind"] == "train"][-1]
    assert record["lr_g"] == pytest.approx(2e-4 * factor) and record["lr_d"] == pytest.approx(1e-4 * factor)


def test_unknown_scaling_and_compile_modes_are_refused(tmp_path):
    config = tiny_config()
    config.optim.lr_scaling = "cubic"
    with pytest.raises(ConfigError, match="optim.lr_scaling"):
        Trainer(config, tmp_path / "a")
    config = tiny_config()
    config.train.compile = "fast"
    with pytest.raises(ConfigError, match="train.compile"):
        Trainer(config, tmp_path / "b")


def test_compiled_training_matches_eager(tmp_path):
    def run(mode: str) -> Trainer:
        config = tiny_config(max_steps=3, dataset="builtin:faces:64", batch_size=8)
        config.model.options = {"ngf": 4, "ndf": 4}
        config.train.compile = mode
        trainer = Trainer(config, tmp_path / mode)
        trainer.train()
        return trainer

    eager, compiled = run("off"), run("default")
    assert compiled.G_train is not compiled.G  # really wrapped by torch.compile
    a, b = eager.G.state_dict(), compiled.G.state_dict()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-3


def test_compiled_layout_is_contiguous_and_refuses_channels_last():
    assert compiled_layout("auto") is False and compiled_layout("contiguous") is False
    with pytest.raises(ConfigError, match="train.compile needs train.memory_format=contiguous"):
        compiled_layout("channels_last")
