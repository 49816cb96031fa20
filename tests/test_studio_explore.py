"""AppTest tests of the Explore page on the shipped demo generator."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest
from streamlit.elements.lib import policies
from streamlit.testing.v1 import AppTest

from studio.settings import DEMO_CHECKPOINT

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(tmp_path / "runs"))
    app = AppTest.from_file(APP, default_timeout=180)
    app.switch_page("studio/pages/explore.py").run()
    assert not app.exception, app.exception
    return app


def open_tab(at: AppTest, label: str) -> None:
    at.session_state["explore-tab"] = label
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def urls(at: AppTest) -> list[str]:
    return [url for image in at.image for url in image.value]


def test_opens_on_the_demo_generator_with_a_fast_grid_of_samples(at: AppTest) -> None:
    assert (DEMO_CHECKPOINT / "model.safetensors").is_file()
    assert at.selectbox(key="gen").value == "demo"
    assert any("64 px" in c.value and "1,000,064 images" in c.value for c in at.caption)
    assert len(at.image) == 16
    first = urls(at)

    started = time.perf_counter()
    at.number_input(key="seed").set_value(1600).run()
    assert time.perf_counter() - started < 1.0  # a fresh grid of 16 faces at 64 px, on a CPU
    assert len(at.image) == 16 and urls(at) != first

    at.slider(key="truncation").set_value(0.5).run()
    assert not at.exception and len(at.image) == 16

    at.button(key="zoom-1603").click().run()
    assert any("seed 1603" in c for image in at.image for c in image.captions)
    next(b for b in at.button if b.label == "Use as B").click().run()
    assert at.session_state["interp:b"] == 1603
    assert at.session_state["explore-tab"] == "Interpolation"


def test_interpolation_slider_moves_through_latent_space(at: AppTest) -> None:
    open_tab(at, "Interpolation")
    at.number_input(key="interp:a").set_value(3).run()
    at.number_input(key="interp:b").set_value(11).run()

    def middle() -> str:
        return next(image.value[0] for image in at.image if image.captions[0].startswith("t = "))

    at.slider(key="interp:t").set_value(0.0).run()
    start = middle()
    at.slider(key="interp:t").set_value(0.7).run()
    assert middle() != start
    assert any(c == "8 steps from A to B" for image in at.image for c in image.captions)
    assert at.download_button[0].label.startswith("Download A → B → A")


def test_latent_direction_sliders_edit_the_sample(at: AppTest) -> None:
    open_tab(at, "Directions")
    edited = next(image.value[0] for image in at.image if image.captions[0] == "Edited")
    at.slider(key="edit:d0").set_value(4.0).run()
    assert not at.exception
    assert next(image.value[0] for image in at.image if image.captions[0] == "Edited") != edited


def test_reset_sliders_logs_no_session_state_warning(at: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(policies.__name__)
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # Streamlit warns once per process
    logger.addHandler(handler)
    try:
        open_tab(at, "Directions")
        at.slider(key="edit:d1").set_value(3.0).run()
        next(b for b in at.button if b.label == "Reset sliders").click().run()
    finally:
        logger.removeHandler(handler)
    assert not at.exception, at.exception
    assert at.slider(key="edit:d1").value == 0.0
    assert not [w for w in warnings if "Session State" in w], warnings


def test_real_versus_generated_and_nearest_training_images(at: AppTest) -> None:
    open_tab(at, "Real vs generated")
    captions = [c for image in at.image for c in image.captions]
    assert "Real" in captions and "Generated" in captions
    assert sum(c.startswith("#") for c in captions) == 6  # six nearest neighbours with their distances


def test_links_name_the_generator_by_its_stable_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.train import Trainer
    from tests.conftest import tiny_config

    runs = tmp_path / "runs"
    Trainer(tiny_config(max_steps=2), runs / "faces-run").train()
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(runs))
    app = AppTest.from_file(APP, default_timeout=180)
    app.query_params["gen"] = "faces-run"  # a link by run name opens that run
    app.switch_page("studio/pages/explore.py").run()
    assert not app.exception, app.exception
    assert app.selectbox(key="gen").value == "faces-run"
    assert app.query_params["gen"] == "faces-run"

    checkpoints = runs / "faces-run" / "checkpoints"
    latest = sorted(checkpoints.glob("ckpt_*.json"))[-1]
    shutil.copy(latest, checkpoints / "ckpt_00009999.json")  # a newer checkpoint changes the label
    app.run()
    assert app.selectbox(key="gen").value == "faces-run"
    assert any("step 9,999" in option for option in app.selectbox(key="gen").options)
    assert app.query_params["gen"] == "faces-run"

    app.selectbox(key="gen").set_value("demo").run()
    assert app.query_params["gen"] == "demo"
    assert any("1,000,064 images" in c.value for c in app.caption)


def test_class_selector_for_a_conditional_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.train import Trainer
    from tests.conftest import tiny_config

    runs = tmp_path / "runs"
    config = tiny_config(max_steps=2)
    config.model.name, config.model.options = "cdcgan", {"ngf": 8, "ndf": 8}
    Trainer(config, runs / "conditional").train()
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(runs))
    app = AppTest.from_file(APP, default_timeout=180)
    app.switch_page("studio/pages/explore.py").run()
    app.selectbox(key="gen").set_value("conditional").run()
    assert not app.exception, app.exception
    before = urls(app)
    app.selectbox(key="class").set_value(3).run()
    assert not app.exception, app.exception
    assert len(app.image) == 16 and urls(app) != before
    for label in ("Interpolation", "Directions", "Real vs generated"):
        open_tab(app, label)


def test_autoencoder_gets_a_reconstructions_tab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.train import Trainer
    from tests.conftest import tiny_config

    runs = tmp_path / "runs"
    config = tiny_config(max_steps=2)
    config.model.name, config.model.options = "aae", {"ngf": 8, "nef": 8, "latent_dim": 16, "d_hidden": 32}
    Trainer(config, runs / "autoencoder").train()
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(runs))
    app = AppTest.from_file(APP, default_timeout=180)
    app.switch_page("studio/pages/explore.py").run()
    assert "Reconstructions" not in [t.label for t in app.tabs]  # the demo DCGAN has no encoder
    app.selectbox(key="gen").set_value("autoencoder").run()
    assert not app.exception, app.exception
    assert "Reconstructions" in [t.label for t in app.tabs]
    open_tab(app, "Reconstructions")
    captions = [c for image in app.image for c in image.captions]
    assert "Originals" in captions and "Reconstructions" in captions
    assert any(c.value.startswith("Mean absolute pixel error") for c in app.caption)
