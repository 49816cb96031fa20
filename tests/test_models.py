import pytest
import torch

from engine.config import ConfigError, LossConfig
from engine.models import build_loss, build_model, list_models, resolve_options


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
def test_dcgan_shapes(resolution):
    pair = build_model("dcgan", {"ngf": 4, "ndf": 4}, resolution)
    z = torch.randn(2, pair.latent_dim)
    images = pair.generator(z)
    assert images.shape == (2, 3, resolution, resolution)
    assert images.abs().max() <= 1
    assert pair.discriminator(images).shape == (2,)


def test_dcgan_options_change_the_network():
    dense = build_model("dcgan", {"latent_dim": 128, "g_input": "dense", "ngf": 8, "max_channels": 64,
                                  "g_activation": "lrelu", "d_dropout": 0.3}, 64)
    assert isinstance(dense.generator.project, torch.nn.Linear)
    assert dense.generator.project.out_features == 64 * 16
    assert any(isinstance(m, torch.nn.Dropout) for m in dense.discriminator.modules())
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in dense.generator.modules())
    plain = build_model("dcgan", {"g_batchnorm": False, "d_batchnorm": False, "ngf": 4, "ndf": 4}, 32)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.generator.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.discriminator.modules())


def test_registry_and_errors():
    names = [m.name for m in list_models()]
    assert "dcgan" in names
    assert resolve_options("dcgan", {"ngf": 16})["latent_dim"] == 100
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("nope", {}, 64)
    with pytest.raises(ConfigError, match="supports resolutions"):
        build_model("dcgan", {}, 48)
    with pytest.raises(ConfigError, match="unknown key"):
        build_model("dcgan", {"bogus": 1}, 64)
    with pytest.raises(ConfigError, match="g_input must be one of convt, dense"):
        build_model("dcgan", {"g_input": "mlp"}, 64)


def test_losses():
    bce = build_loss(LossConfig("bce"))
    good_d = bce.d_loss(torch.full((8,), 5.0), torch.full((8,), -5.0))
    bad_d = bce.d_loss(torch.full((8,), -5.0), torch.full((8,), 5.0))
    assert good_d < 0.05 < bad_d
    smooth = build_loss(LossConfig("bce", label_smoothing=0.1))
    assert smooth.d_loss(torch.full((8,), 5.0), torch.full((8,), -5.0)) > good_d
    hinge = build_loss(LossConfig("hinge"))
    assert hinge.d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)) == 0
    assert hinge.g_loss(torch.tensor([1.0, 3.0])) == -2.0
    with pytest.raises(ConfigError):
        build_loss(LossConfig("wasserstein"))
