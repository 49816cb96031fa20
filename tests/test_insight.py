"""What the networks see: feature maps per layer for every zoo model, D's saliency and score histograms, loading a
run's discriminator, and the Explore page's "What the networks see" tab."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from engine.base.checkpoint import save_checkpoint
from engine.base.formats import CheckpointError, GeneratorInfo
from engine.data import load_dataset
from engine.discriminator import Discriminator, NoDiscriminatorError, load_discriminator
from engine.generator import Generator
from engine.insight import (TOP, colourise, discriminator_view, generator_features, heat_map, render_layer,
                            score_histograms)
from engine.models import ModelInfo, build_model, list_models
from tests.conftest import tiny_config

APP = str(Path(__file__).resolve().parents[1] / "app.py")
CONV = (nn.Conv2d, nn.ConvTranspose2d)


def tiny(info: ModelInfo) -> tuple[Generator, Discriminator, int]:
    """A model of the zoo at its tiny options and 32 px (its smallest resolution if 32 is not one), untrained."""
    assert info.settings is not None
    resolution = 32 if 32 in info.resolutions else min(info.resolutions)
    classes = 3 if info.conditional else 0
    torch.manual_seed(0)
    pair = build_model(info.name, info.settings.tiny, resolution, classes)
    meta = GeneratorInfo(info.name, resolution, pair.latent_dim, info.settings.tiny, num_classes=classes)
    return Generator(pair.generator, meta), Discriminator(pair.discriminator, meta), resolution


def dcgan() -> ModelInfo:
    return next(m for m in list_models() if m.name == "dcgan")


@pytest.mark.parametrize("info", list_models(), ids=lambda m: m.name)
def test_feature_maps_per_layer_for_every_zoo_model(info: ModelInfo) -> None:
    gen, disc, resolution = tiny(info)
    z = torch.randn(gen.latent_dim)
    image, layers = generator_features(gen, z)
    assert np.array_equal(image, gen.sample(latents=z[None])[0])  # the hooked pass is the ordinary one
    sizes = [layer.height for layer in layers]
    assert sizes == sorted(set(sizes)) and all(4 <= s <= resolution for s in sizes)  # one per resolution, upward
    assert bool(layers) == any(isinstance(m, CONV) for m in gen.module.modules())  # only FC nets have none
    modules = dict(gen.module.named_modules())
    for layer in layers:
        assert layer.name in modules and layer.channels not in (1, 3) and layer.height == layer.width
        assert layer.maps.shape == (min(TOP, layer.channels), layer.height, layer.width)
        assert list(layer.strengths) == sorted(layer.strengths, reverse=True)
        np.testing.assert_allclose(layer.maps.mean(axis=(1, 2)), layer.strengths, rtol=1e-4, atol=1e-5)
        cell = layer.height * max(1, -(-16 // layer.height))  # enlarged by a whole factor to at least 16 px
        assert render_layer(layer, side=16).shape == (cell + 4, 2 + TOP * (cell + 2), 3)
    if info.capabilities.step != "adversarial":
        return  # the autoencoder's D judges latent codes
    view = discriminator_view(disc, image)
    d_sizes = [layer.height for layer in view.layers]
    assert d_sizes == sorted(set(d_sizes), reverse=True) and all(4 <= s <= resolution for s in d_sizes)
    assert bool(view.layers) == any(isinstance(m, CONV) for m in disc.module.modules())
    for layer in view.layers:
        assert layer.maps.shape == (min(TOP, layer.channels), layer.height, layer.width)


def test_dcgan_feature_maps_have_the_shapes_of_its_layers() -> None:
    gen, disc, _ = tiny(dcgan())
    z = torch.randn(gen.latent_dim)
    image, layers = generator_features(gen, z)
    assert [(layer.name, layer.shape) for layer in layers] == [
        ("body.1", (32, 4, 4)), ("body.4", (16, 8, 8)), ("body.7", (8, 16, 16))]
    with torch.no_grad():
        first = gen.module.body[:2](gen.module.project(z.view(1, -1, 1, 1)))[0]
    np.testing.assert_allclose(layers[0].maps, first[list(layers[0].top)].numpy(), atol=1e-6)
    view = discriminator_view(disc, image)
    assert [layer.shape for layer in view.layers] == [(8, 16, 16), (16, 8, 8), (32, 4, 4)]


def test_saliency_has_the_input_shape_and_marks_pixels() -> None:
    _, disc, resolution = tiny(dcgan())
    image = load_dataset("builtin:faces:16", 32).images[0]
    view = discriminator_view(disc, image)
    assert view.saliency.shape == (resolution, resolution) and view.saliency.dtype == np.float32
    assert np.isfinite(view.saliency).all() and view.saliency.max() == pytest.approx(1.0)
    assert (view.saliency > 0).mean() > 0.5  # the score depends on most pixels
    assert view.score == pytest.approx(float(disc.score(image[None])[0]), abs=1e-5)
    overlay = heat_map(image, view.saliency)
    assert overlay.shape == image.shape and overlay.dtype == np.uint8
    assert colourise(np.array([0.0, 1.0])).tolist() == [[0, 0, 4], [252, 253, 191]]


def test_score_histograms_count_every_image_in_shared_bins() -> None:
    gen, disc, _ = tiny(dcgan())
    real, fake = load_dataset("builtin:faces:16", 32).images[:12], gen.sample(seeds=range(7))
    h = score_histograms(disc, real, fake, bins=10)
    assert len(h.edges) == 11 and h.real.sum() == 12 and h.generated.sum() == 7
    np.testing.assert_allclose(h.real_scores, disc.score(real), atol=1e-6)
    assert h.edges[0] == pytest.approx(min(h.real_scores.min(), h.generated_scores.min()))
    assert h.edges[-1] == pytest.approx(max(h.real_scores.max(), h.generated_scores.max()))


def _checkpoint(tmp_path: Path, model: str, options: dict[str, int]) -> Path:
    """A committed checkpoint of an untrained model, as the trainer writes them."""
    pair = build_model(model, options, 32)
    state = {"step": 1, "images": 16, "model": model, "model_options": options, "resolution": 32,
             "latent_dim": pair.latent_dim, "num_classes": 0, "seed": 0}
    path = tmp_path / "checkpoints" / "ckpt_00000001.json"
    modules = {"G": pair.generator, "G_ema": pair.generator, "D": pair.discriminator}
    save_checkpoint(path, modules | ({"E": pair.encoder} if pair.encoder else {}), {}, {}, state)
    return path


def test_a_checkpoints_discriminator_loads_with_its_weights(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path, "dcgan", {"ngf": 8, "ndf": 8})
    disc = load_discriminator(path)
    assert disc.resolution == 32 and not disc.module.training
    assert not any(p.requires_grad for p in disc.module.parameters())
    assert disc.score(np.zeros((3, 32, 32, 3), np.uint8)).shape == (3,)
    with pytest.raises(ValueError, match="judges 32×32 RGB images"):
        disc.score(np.zeros((1, 64, 64, 3), np.uint8))
    written = json.loads(path.read_text())
    (path.parent / written["tensors"]).write_bytes(b"")
    with pytest.raises(CheckpointError, match="missing or incomplete"):
        load_discriminator(path)


def test_no_discriminator_for_an_autoencoder_the_hub_or_a_run_without_checkpoints(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "aae", "aae", {"ngf": 8, "nef": 8, "latent_dim": 16, "d_hidden": 32})
    with pytest.raises(NoDiscriminatorError, match="judges latent codes, not images"):
        load_discriminator(path)
    with pytest.raises(NoDiscriminatorError, match="Hub model: it holds G only"):
        load_discriminator("hf:someone/cats")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text(tiny_config().to_json())
    with pytest.raises(CheckpointError, match="has no checkpoint yet"):
        load_discriminator(tmp_path / "empty")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs root holding one tiny DCGAN run (two training steps, G and D checkpointed)."""
    from engine.train import Trainer

    root = tmp_path_factory.mktemp("insight") / "runs"
    Trainer(tiny_config(max_steps=2, memory_format="contiguous"), root / "faces").train()
    return root


def open_insight(runs: Path, generator: str | None, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(runs))
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page("studio/pages/explore.py").run()
    if generator is not None:
        at.selectbox(key="gen").set_value(generator).run()
    at.session_state["explore-tab"] = "What the networks see"
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    return at


def captions(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions]


def test_the_insight_tab_shows_g_and_d_feature_maps_saliency_and_scores(runs: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_insight(runs, "faces", monkeypatch)
    shown = captions(at)
    assert sum("channels" in c for c in shown) == 6  # G: 4, 8, 16 px; D: 16, 8, 4 px
    assert any(c.startswith("seed 0 · D's score") for c in shown)
    assert any(c.startswith("Saliency") for c in shown)
    assert len(at.get("plotly_chart")) == 1
    assert any("training images (mean" in c.value for c in at.caption)
    at.segmented_control(key="see:kind").set_value("Real image").run()
    at.number_input(key="see:real").set_value(3).run()
    assert not at.exception and any(c.startswith("training image #3 · D's score") for c in captions(at))


def test_the_insight_tab_on_an_exported_generator_shows_g_and_says_why_there_is_no_d(
        runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_insight(runs, None, monkeypatch)  # opens on the shipped demo: an exported generator
    assert sum("channels" in c for c in captions(at)) == 4  # the demo's 64 px DCGAN: 4, 8, 16, 32 px
    assert any("No discriminator here" in i.value and "exported generator" in i.value for i in at.info)
