"""Models declare their training step and hooks; losses register themselves; the loop dispatches on
the declarations and imports no model module."""

import ast
import dataclasses

import pytest
import torch
from torch import nn

from engine.config import ConfigError
from engine.models import (Capabilities, GanPair, Loss, build_model, check_model_config, get_loss, list_losses,
                           register_loss, register_model)
from engine.models import losses as loss_registry
from engine.models import registry
from engine.models.registry import TRAINING_STEPS
from engine.base.checkpoint import load_checkpoint
from engine.runs import Run
from engine.train import Trainer
from engine.train.steps import STEPS
from tests.conftest import ROOT, tiny_config

MODEL_MODULES = {"aae", "basic", "dcgan", "fastgan", "progressive", "sngan"}


def test_every_declared_step_has_an_implementation():
    assert set(STEPS) == set(TRAINING_STEPS)


@pytest.mark.parametrize("module", ["loop", "steps", "distributed"])
def test_the_training_loop_imports_no_model_module(module):
    tree = ast.parse((ROOT / "engine" / "train" / f"{module}.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name.removeprefix("engine.models.") for name in imported} & MODEL_MODULES


@dataclasses.dataclass
class _TinyOptions:
    latent_dim: int = 8


class _TinyG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(8, 3 * 16 * 16)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.net(z)).view(-1, 3, 16, 16)


class _TinyD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(3 * 16 * 16, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1)).flatten()


class _AuxD(_TinyD):
    def forward_with_aux(self, x: torch.Tensor, labels: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        return self(x, labels), x.square().mean() * 0 + 0.25


@pytest.fixture
def temporary_registry():
    """Models and losses registered inside a test are gone after it."""
    models, losses = dict(registry._MODELS), dict(loss_registry._LOSSES)
    yield
    registry._MODELS.clear()
    registry._MODELS.update(models)
    loss_registry._LOSSES.clear()
    loss_registry._LOSSES.update(losses)


def _register(name: str, capabilities: Capabilities, discriminator: type[nn.Module]) -> None:
    @register_model(name, "a test model", (16,), _TinyOptions, capabilities=capabilities)
    def build(opts: _TinyOptions, resolution: int, num_classes: int) -> GanPair:
        return GanPair(_TinyG(), discriminator(), opts.latent_dim)


def _tiny(model: str, **train: object):
    config = tiny_config(max_steps=4, resolution=16, dataset="builtin:faces:64", log_every=2, **train)
    config.model.name, config.model.options = model, {}
    return config


def test_a_declared_hook_the_networks_lack_is_a_clear_error(temporary_registry):
    _register("grows-but-cannot", Capabilities(grows=True), _TinyD)
    with pytest.raises(TypeError, match="Growing generator, ReportsGrowth generator, Growing discriminator"):
        build_model("grows-but-cannot", {}, 16)
    with pytest.raises(ValueError, match="training step must be one of"):
        Capabilities(step="diffusion")


def test_the_loop_calls_a_hook_because_it_is_declared_not_because_it_exists(temporary_registry, tmp_path):
    _register("aux-declared", Capabilities(aux_loss=True), _AuxD)
    _register("aux-undeclared", Capabilities(), _AuxD)
    Trainer(_tiny("aux-declared"), tmp_path / "declared").train()
    Trainer(_tiny("aux-undeclared"), tmp_path / "undeclared").train()
    declared = [r for r in Run(tmp_path / "declared").metrics() if r["kind"] == "train"]
    undeclared = [r for r in Run(tmp_path / "undeclared").metrics() if r["kind"] == "train"]
    assert all(r["d_aux"] == pytest.approx(0.25) for r in declared)
    assert all("d_aux" not in r for r in undeclared)


def test_a_registered_loss_trains_without_touching_the_step(temporary_registry, tmp_path):
    @register_loss("shifted-least-squares", "Shifted least squares", "Targets ±1 instead of LSGAN's 0/1, for this test.")
    class ShiftedLeastSquares(Loss):
        def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
            return (real_logits - 1).square().mean() + (fake_logits + 1).square().mean()

        def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
            return (fake_logits - 1).square().mean()

    assert "shifted-least-squares" in [info.name for info in list_losses()]
    config = tiny_config(max_steps=4, log_every=2)
    config.loss.kind = "shifted-least-squares"
    config.validate()
    check_model_config(config)
    assert Trainer(config, tmp_path / "run").train() == "finished"
    assert isinstance(get_loss("shifted-least-squares").build(config.loss), ShiftedLeastSquares)


def test_losses_say_what_the_studio_shows():
    shown = {info.name: info for info in list_losses()}
    assert set(shown) >= {"bce", "hinge", "wgan-gp"}
    assert shown["wgan-gp"].uses_interpolates and not shown["bce"].uses_interpolates
    assert all(info.label and info.description for info in shown.values())


@pytest.mark.parametrize(("change", "said"), [
    ({"model.name": "nope"}, "unknown model 'nope'"),
    ({"loss.kind": "nope"}, "loss.kind must be one of bce, hinge, wgan-gp"),
    ({"model.name": "wgan-gp"}, "model wgan-gp trains with loss.kind=wgan-gp, not bce"),
    ({"data.resolution": 48}, "model dcgan supports resolutions 32, 64, 128, 256, not 48")])
def test_a_model_and_loss_that_do_not_fit_are_refused_before_anything_is_built(change, said):
    config = tiny_config()
    for key, value in change.items():
        section, name = key.split(".")
        setattr(getattr(config, section), name, value)
    with pytest.raises(ConfigError, match=said):
        check_model_config(config)


def test_the_autoencoder_objective_comes_from_the_model_options():
    pair = build_model("aae", {"reconstruction": "l1", "adversarial_weight": 0.5, "ngf": 8, "nef": 8,
                               "d_hidden": 16}, 32)
    assert pair.objective == {"reconstruction": "l1", "adversarial_weight": 0.5}
    assert not hasattr(pair.encoder, "reconstruction_loss")  # the objective lives in the step, not on a network


def test_a_run_records_how_its_model_trains(tmp_path):
    config = tiny_config(max_steps=2)
    config.model.name, config.model.options = "aae", {"ngf": 8, "nef": 8, "latent_dim": 16, "d_hidden": 32}
    Trainer(config, tmp_path / "aae").train()
    run = Run(tmp_path / "aae")
    assert run.model_kind() == "autoencoder" == load_checkpoint(run.latest_checkpoint())[0]["model_kind"]
    assert Run(tmp_path / "never-trained").model_kind() is None
