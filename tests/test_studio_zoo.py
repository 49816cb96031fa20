"""What the studio shows for the zoo's special models: a progressive GAN's stage, an autoencoder's
reconstruction curve, a self-supervised discriminator's loss; and every model in the Train form."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

import engine
from engine.base import records
from engine.models import list_models
from engine.runs import Run
from studio import charts
from studio.monitor import growth_text
from studio.run_table import model_kind
from tests.conftest import tiny_config

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _traces(lines: list[dict], kind: str = records.ADVERSARIAL) -> list[str]:
    return [trace.name for trace in charts.loss_figure(lines, "r", model_kind=kind).data]


def _growth(line: dict) -> str | None:
    return growth_text(records.TrainRecord.from_dict(dict(line, kind="train", step=1)))


def test_growth_text_for_a_progressive_gan():
    assert _growth({"stage_resolution": 16.0, "alpha": 0.4321}) == "Growing: 16×16 px, fading in (α = 0.43)"
    assert _growth({"stage_resolution": 64.0, "alpha": 1.0}) == "Growing: 64×64 px, stable"
    assert _growth({"loss_g": 1.0}) is None


def test_loss_chart_follows_the_model_kind():
    gan = [{"kind": "train", "step": 1, "loss_g": 1.0, "loss_d": 1.0, "d_real": 0.6, "d_fake": 0.4}]
    assert _traces(gan) == ["G loss", "D loss", "D(x)", "D(G(z))"]
    fastgan = [dict(gan[0], d_aux=0.3)]
    assert _traces(fastgan) == ["G loss", "D loss", "D self-supervised loss", "D(x)", "D(G(z))"]
    aae = [dict(gan[0], recon=0.1)]
    assert _traces(aae, records.AUTOENCODER) == ["Autoencoder loss", "Reconstruction", "Latent D loss", "D(prior z)",
                                                 "D(E(x))"]
    assert _traces(gan, records.AUTOENCODER)[0] == "Autoencoder loss"  # the model says so, not a "recon" key


def test_a_run_records_its_model_kind(tmp_path):
    for name, kind in (("aae", records.AUTOENCODER), ("dcgan", records.ADVERSARIAL), ("fastgan", records.ADVERSARIAL)):
        config = tiny_config()
        config.model.name = name
        run = Run(tmp_path / name)
        run.path.mkdir()
        run.write_config(config)
        assert model_kind(run) == kind
    assert model_kind(Run(tmp_path / "missing")) == records.ADVERSARIAL


def test_the_train_form_offers_every_model(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    offered = next(box for box in at.selectbox if box.label == "Model").options
    assert sorted(offered) == sorted(m.name for m in list_models())
    presets = [label.split(" · ")[0] for label in next(box for box in at.selectbox if box.label == "Recipe").options]
    assert sorted(presets) == sorted(engine.PRESETS)


def test_choosing_a_model_that_needs_its_own_loss_sets_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.selectbox(key="cfg:preset").set_value("face-course-dcgan-64-ttur").run()
    assert at.session_state["cfg:loss.kind"] == "bce"
    next(box for box in at.selectbox if box.label == "Model").set_value("fastgan").run()
    assert not at.exception, at.exception
    assert at.session_state["cfg:loss.kind"] == "hinge"


def test_several_visible_gpus_offer_a_multi_gpu_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not [n for n in at.number_input if n.label == "GPUs"]  # this machine: no CUDA
    monkeypatch.setattr(engine, "visible_gpus", lambda: 4)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.session_state["cfg:train.device"] = "auto"
    at.run()
    gpus = next(n for n in at.number_input if n.label == "GPUs")
    assert gpus.value == 4 and gpus.max == 4
