"""R3GAN's own parts: fix-up initialisation, the [1,2,1] resampling, the rpgan loss with R1 + R2, and how the
adversarial step feeds a relativistic loss with an input penalty. Shapes, exact resume and short training are
the zoo tests' (tests/test_zoo.py, tests/test_zoo_training.py)."""

import contextlib
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.config import ConfigError, LossConfig
from engine.models import build_loss, build_model, check_model_config, get_model, register_model
from engine.models.losses import RelativisticPairingLoss
from engine.models.r3gan import Downsample, ResidualBlock, Upsample, cardinality
from engine.models.registry import ModelSettings, Recipe
from engine.presets import PRESETS
from engine.train import Trainer
from engine.train.steps import AdversarialStep, AutoencoderStep, Batch, StepParts
from tests.conftest import tiny_config

WIDE = {"latent_dim": 16, "channel_base": 2048, "channel_max": 64, "blocks_per_stage": 2, "expansion": 2,
        "group_size": 16}


def test_every_residual_block_is_the_identity_at_initialisation_with_fixup_scaled_weights():
    torch.manual_seed(0)
    pair = build_model("r3gan", WIDE, 32)
    gain = math.sqrt(2 / (1 + 0.2 ** 2)) * 8 ** (-1 / 4)  # 4 stages × 2 blocks, 3 convolutions per branch
    for net in (pair.generator, pair.discriminator):
        blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
        assert len(blocks) == 8
        for block in blocks:
            x = torch.randn(2, block.expand.in_channels, 8, 8)
            assert torch.equal(block.branch(x), torch.zeros_like(x)) and torch.equal(block(x), x)
            assert not block.contract.weight.any()
            for conv in (block.expand, block.grouped):
                expected = gain / math.sqrt(conv.weight[0].numel())
                assert conv.weight.std().item() == pytest.approx(expected, rel=0.1)
    deeper = build_model("r3gan", dict(WIDE, blocks_per_stage=4), 32).generator
    wide_std = next(m for m in pair.generator.modules() if isinstance(m, ResidualBlock)).expand.weight.std()
    deep_std = next(m for m in deeper.modules() if isinstance(m, ResidualBlock)).expand.weight.std()
    assert (deep_std / wide_std).item() == pytest.approx(2 ** (-1 / 4), rel=0.1)  # twice the blocks: L^(-1/4)


def test_the_grouped_convolution_has_hidden_over_group_size_groups():
    block = next(m for m in build_model("r3gan", WIDE, 32).generator.modules() if isinstance(m, ResidualBlock))
    assert (block.expand.out_channels, block.grouped.groups) == (128, 8)
    assert cardinality(128, 16) == 8 and cardinality(56, 16) == 2 and cardinality(8, 16) == 1


def test_resampling_keeps_a_constant_image_constant_and_interpolates_bilinearly():
    constant = torch.full((2, 5, 8, 8), 0.7)
    up, down = Upsample()(constant), Downsample()(constant)
    assert up.shape == (2, 5, 16, 16) and down.shape == (2, 5, 4, 4)
    assert torch.allclose(up, torch.full_like(up, 0.7)) and torch.allclose(down, torch.full_like(down, 0.7))
    assert not list(Upsample().parameters()) and not list(Downsample().parameters())
    x = torch.randn(2, 3, 8, 8)
    taps3 = torch.tensor([1.0, 2, 1])
    blur = (taps3[:, None] * taps3[None, :] / 16).expand(3, 1, 3, 3)  # the paper's filter, edge-padded
    reference = F.avg_pool2d(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), blur, groups=3), 2)
    assert torch.allclose(Downsample()(x), reference, atol=1e-6)
    upsampled = F.conv2d(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="replicate"),
                         blur, groups=3)
    assert torch.allclose(Upsample()(x), upsampled, atol=1e-6)
    assert torch.allclose(Upsample()(x), F.interpolate(x, scale_factor=2, mode="bilinear"), atol=1e-6)
    taps = torch.tensor([1.0, 3, 3, 1]) / 8  # [1,2,1] then 2×2 averaging
    inner = (taps[:, None] * taps[None, :] * x[:, :, 1:5, 1:5]).sum((2, 3))  # the output pixel at (1, 1)
    assert torch.allclose(Downsample()(x)[:, :, 1, 1], inner, atol=1e-6)


def test_rpgan_losses_on_hand_computed_logits():
    loss = build_loss(LossConfig("rpgan", gamma=0.3))
    assert isinstance(loss, RelativisticPairingLoss) and loss.gamma == 0.3
    assert loss.relativistic and loss.penalizes_inputs
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])

    def softplus(v: float) -> float:
        return math.log1p(math.exp(v))

    assert loss.d_loss(real, fake).item() == pytest.approx((softplus(-2) + softplus(1)) / 2)
    assert loss.relativistic_g_loss(fake, real).item() == pytest.approx((softplus(2) + softplus(-1)) / 2)
    # pairs, not means: the same logits paired the other way give another loss
    assert loss.d_loss(real, fake.flip(0)).item() == pytest.approx((softplus(-1) + softplus(0)) / 2)


def test_r1_and_r2_are_half_gamma_times_the_squared_input_gradient_norms():
    """D(x) = ½(w·x)²: ∇ₓD = (w·x)·w, so ‖∇ₓD‖² = (w·x)²·‖w‖² for each image."""
    torch.manual_seed(0)
    w = torch.randn(12, requires_grad=True)
    real, fake = torch.randn(4, 3, 2, 2, requires_grad=True), torch.randn(4, 3, 2, 2, requires_grad=True)

    def judge(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x.flatten(1) @ w).square()

    loss = RelativisticPairingLoss(gamma=0.4)
    r1 = ((real.detach().flatten(1) @ w.detach()).square() * w.detach().square().sum()).mean()
    r2 = ((fake.detach().flatten(1) @ w.detach()).square() * w.detach().square().sum()).mean()
    penalty = loss.input_penalty(real, judge(real), fake, judge(fake))
    assert penalty.item() == pytest.approx(0.2 * (r1 + r2).item(), rel=1e-5)
    (grad,) = torch.autograd.grad(penalty, w)  # differentiable w.r.t. D's parameters
    assert grad.abs().sum() > 0
    loss.gamma = 0.1  # a schedule sets the attribute between steps: the next call uses it
    assert loss.input_penalty(real, judge(real), fake, judge(fake)).item() == pytest.approx(0.05 * (r1 + r2).item(),
                                                                                             rel=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lowered = loss.input_penalty(real, judge(real).float(), fake, judge(fake).float())
    assert lowered.dtype == torch.float32 and lowered.item() == pytest.approx(0.05 * (r1 + r2).item(), rel=0.05)


class _Flat(nn.Module):
    """A linear network on flattened 1×2×2 images (G maps 3 latents to an image, D an image to a score)."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.net = nn.Linear(inputs, outputs)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.net(x.flatten(1))
        return out.view(-1, 1, 2, 2) if out.shape[1] == 4 else out.flatten()


class _Pair(nn.Module):
    """D on real and fake in one call, as the loop's DiscriminatorPair."""

    def __init__(self, d: nn.Module) -> None:
        super().__init__()
        self.d = d

    def forward(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None,
                mixed: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"real": self.d(real, labels), "fake": self.d(fake, labels)}


def _parts(g: nn.Module, d: nn.Module, loss: RelativisticPairingLoss, **objective: object) -> StepParts:
    return StepParts(g, _Pair(d), d, d, torch.optim.SGD(g.parameters(), lr=0.1), torch.optim.SGD(d.parameters(), lr=0.1),
                     loss, lambda x: x, contextlib.nullcontext, False, dict(objective))


def test_the_step_adds_the_input_penalty_to_d_and_gives_g_the_real_logits():
    """With a linear D, ‖∇ₓD‖² = ‖w‖² for every image: the D loss is the pairing loss plus γ‖w‖²; the G loss is
    softplus(D(real) − D(fake)) with the updated D on the same real batch."""
    torch.manual_seed(0)
    g, d = _Flat(3, 4), _Flat(4, 1)
    step = AdversarialStep(_parts(g, d, RelativisticPairingLoss(gamma=0.5)), 1, False)
    real, z = torch.randn(6, 1, 2, 2), torch.randn(6, 3)
    g_before, d_before = copy.deepcopy(g), copy.deepcopy(d)
    with torch.no_grad():
        fake = g_before(z)
        expected_d = (F.softplus(d_before(fake) - d_before(real)).mean()
                      + 0.5 * d_before.net.weight.square().sum())
    stats = step([Batch(real, torch.zeros(6, dtype=torch.long), z)])
    with torch.no_grad():
        expected_g = F.softplus(d(real) - d(fake)).mean()  # D after its update, G before its own
        without_reals = F.softplus(-d(fake)).mean()
    assert stats[1].item() == pytest.approx(expected_d.item(), rel=1e-5)
    assert stats[0].item() == pytest.approx(expected_g.item(), rel=1e-5)
    assert abs(expected_g - without_reals) > 1e-3  # the real logits matter


def test_the_lazy_penalty_falls_on_every_kth_d_update_with_k_times_the_weight(tmp_path):
    """loss.penalty_every = 2: an update without the penalty is the pairing loss alone; one with it adds
    2·γ‖w‖² (the weight of two updates' penalties). The trainer marks D updates 0, 2, 4, … across n_critic."""
    torch.manual_seed(0)
    g, d = _Flat(3, 4), _Flat(4, 1)
    loss = build_loss(LossConfig("rpgan", gamma=0.5, penalty_every=2))
    real, z = torch.randn(6, 1, 2, 2), torch.randn(6, 3)
    labels = torch.zeros(6, dtype=torch.long)
    for penalize, expected_penalty in ((False, 0.0), (True, 2 * 0.5)):
        step = AdversarialStep(_parts(g, d, loss), 1, False)
        with torch.no_grad():
            pairing = F.softplus(d(g(z)) - d(real)).mean()
            expected = pairing + expected_penalty * d.net.weight.square().sum()
        stats = step([Batch(real, labels, z, penalize=penalize)])
        assert stats[1].item() == pytest.approx(expected.item(), rel=1e-5), penalize

    config = tiny_config(max_steps=3)
    config.model.name, config.model.options = "r3gan", dict(get_model("r3gan").settings.tiny)
    config.loss.kind, config.loss.penalty_every, config.optim.n_critic = "rpgan", 3, 2
    trainer = Trainer(config, tmp_path / "run")
    marks: list[bool] = []
    real_step = trainer.step_fn

    class Recording:
        batches = real_step.batches

        def __call__(self, batches: list[Batch]) -> torch.Tensor:
            marks.extend(b.penalize for b in batches)
            return real_step(batches)

    trainer.step_fn = Recording()
    for _ in range(3):
        trainer.train_step()
    assert marks == [True, False, False, True, False, False]


def test_r3gan_requires_rpgan_and_the_autoencoder_step_refuses_it():
    assert get_model("r3gan").loss == "rpgan"
    config = tiny_config()
    config.model.name = "r3gan"
    config.model.options = dict(get_model("r3gan").settings.tiny)
    with pytest.raises(ConfigError, match="model r3gan trains with loss.kind=rpgan, not bce"):
        check_model_config(config)
    config.loss.kind = "rpgan"
    assert check_model_config(config).name == "r3gan"
    parts = _parts(_Flat(3, 4), _Flat(4, 1), RelativisticPairingLoss(), reconstruction="mse", adversarial_weight=1.0)
    with pytest.raises(ConfigError, match="judges latent codes"):
        AutoencoderStep(parts, 1, False)


def test_the_model_declares_a_recipe_per_resolution_and_the_registry_checks_each():
    settings = get_model("r3gan").settings
    assert [r.name for r in settings.declared_recipes] == ["r3gan-64", "r3gan-32", "r3gan-128"]
    for declared in settings.declared_recipes:
        assert PRESETS[declared.name] is declared.config and declared.config.loss.kind == "rpgan"
        assert declared.config.data.resolution == int(declared.name.rsplit("-", 1)[1])
    stray = Recipe("stray-64", copy.deepcopy(PRESETS["lsgan-64"]), cpu_batch_size=16, cpu_resolution=64)
    with pytest.raises(ValueError, match="recipe stray-64 of model r3gan-copy trains model 'lsgan'"):
        register_model("r3gan-copy", "", (64,), dict, settings=ModelSettings(
            {}, {}, "lsgan-64", extra_recipes=(stray,)))
