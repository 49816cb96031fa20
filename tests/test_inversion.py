"""GAN inversion: engine.inversion, `python -m engine project`, and the Explore page's "Your photo" tab."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine.base.formats import GeneratorInfo
from engine.cli import main
from engine.data import load_dataset
from engine.discriminator import NoDiscriminatorError, load_discriminator
from engine.generator import Generator, export_generator, load_generator
from engine.inversion import Weights, feature_distance, fit_photo, project, read_photo
from engine.models import build_model
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
DEMO = ROOT / "checkpoints" / "demo-faces64"  # trained on builtin:faces: its images are held-in


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DCGAN run with a checkpoint (G and D), trained two steps on the built-in faces."""
    from engine.train import Trainer

    path = tmp_path_factory.mktemp("inversion") / "runs" / "faces"
    Trainer(tiny_config(max_steps=2, memory_format="contiguous"), path).train()
    return path


def faces(count: int, resolution: int) -> np.ndarray:
    return load_dataset("builtin:faces:16", resolution).images[:count]


def tiny_generator(model: str = "dcgan", classes: int = 0) -> Generator:
    """An untrained tiny generator at 32 px (seeded, so the same every time)."""
    torch.manual_seed(0)
    options = {"ngf": 8, "ndf": 8}
    pair = build_model(model, options, 32, classes)
    return Generator(pair.generator, GeneratorInfo(model, 32, pair.latent_dim, options, num_classes=classes))


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_projection_lowers_the_error_far_below_a_random_latents_on_held_in_images() -> None:
    gen = load_generator(DEMO)
    images = load_dataset("builtin:faces:16", 64).images[[0, 5]]
    random = np.abs(gen.sample(seeds=range(16))[:, None].astype(np.float32) - images[None]).mean() / 255
    result = project(gen, images, steps=30, restarts=2, seed=0)
    assert result.errors.mean() < 0.5 * random
    assert result.history[-1].pixel_error < 0.7 * result.history[0].pixel_error
    measured = np.abs(result.reconstructions.astype(np.float32) - images).mean(axis=(1, 2, 3)) / 255
    np.testing.assert_allclose(measured, result.errors, atol=0.005)  # the errors are the reconstructions'
    assert result.feature_errors is None and result.note is not None and "pixel loss only" in result.note


def test_the_prior_keeps_z_typical() -> None:
    gen, white = tiny_generator(), np.full((1, 32, 32, 3), 255, np.uint8)  # unreachable: z runs off without a prior

    def typicality(prior: float) -> float:
        result = project(gen, white, steps=20, restarts=1, lr=0.2, weights=Weights(feature=0, prior=prior))
        return float((result.latents.pow(2).mean() - 1).abs())

    assert typicality(1.0) < 0.1
    assert typicality(0.0) > 1.0


def test_projection_is_deterministic_given_a_seed_and_independent_of_batching() -> None:
    gen, images = tiny_generator(), faces(3, 32)
    first = project(gen, images, steps=4, restarts=2, seed=3)
    again = project(gen, images, steps=4, restarts=2, seed=3)
    one_at_a_time = project(gen, images, steps=4, restarts=2, seed=3, batch_size=2)
    other = project(gen, images, steps=4, restarts=2, seed=4)
    assert torch.equal(first.latents, again.latents) and np.array_equal(first.errors, again.errors)
    torch.testing.assert_close(first.latents, one_at_a_time.latents, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(first.latents, other.latents)
    assert [s.step for s in first.history] == [0, 1, 2, 3, 4]


def test_a_conditional_model_tries_each_class_or_keeps_the_given_labels() -> None:
    gen, images = tiny_generator("cdcgan", classes=3), faces(2, 32)
    found = project(gen, images, steps=2, restarts=3)
    assert set(found.labels) <= {0, 1, 2}
    np.testing.assert_array_equal(found.reconstructions, gen.sample(latents=found.latents, labels=found.labels))
    assert project(gen, images, steps=2, restarts=2, labels=[2, 1]).labels == [2, 1]
    with pytest.raises(ValueError, match="one label per photo"):
        project(gen, images, steps=1, labels=[0])


def test_photos_are_centre_cropped_and_resized_and_non_images_refused() -> None:
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, :20], wide[:, 20:60], wide[:, 60:] = (0, 0, 255), (255, 0, 0), (0, 0, 255)
    fitted = fit_photo(wide, 32)
    assert fitted.shape == (32, 32, 3) and (fitted[..., 0] > 250).all() and (fitted[..., 2] < 5).all()
    grey = np.asarray(Image.new("L", (10, 12), 77))
    assert np.array_equal(read_photo(png(grey), "grey.png"), np.full((12, 10, 3), 77, np.uint8))
    with pytest.raises(ValueError, match="notes.txt is not an image"):
        read_photo(b"plain text", "notes.txt")
    with pytest.raises(ValueError, match="uint8 H×W×3"):
        fit_photo(np.zeros((8, 8, 3), np.float32), 32)
    with pytest.raises(ValueError, match="at least one photo"):
        project(tiny_generator(), [])


def test_cli_writes_the_latents_reconstructions_and_errors(run: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    photos = []
    for i, image in enumerate(faces(2, 48)):  # not the generator's resolution: resized on the way in
        photos += ["--image", str(tmp_path / f"face{i}.png")]
        Image.fromarray(image).save(photos[-1])
    out = tmp_path / "out" / "latents.npz"
    assert main(["project", "--run", str(run), *photos, "--out", str(out), "--steps", "3", "--restarts", "1"]) == 0
    saved = np.load(out)
    assert saved["latents"].shape == (2, load_generator(run).latent_dim)
    assert saved["errors"].shape == saved["feature_errors"].shape == (2,)
    assert list(saved["images"]) == ["face0.png", "face1.png"]
    assert [Image.open(p).size for p in sorted(out.parent.glob("latents-*.png"))] == [(32, 32), (32, 32)]
    err = capsys.readouterr().err
    assert "step 3/3" in err and "face1.png: mean pixel error" in err and "wrote 2 latents" in err


@pytest.mark.parametrize("bad, message", [("junk.jpg", "junk.jpg is not an image"),
                                          ("missing.png", "missing.png: no such image file")])
def test_cli_refuses_what_is_not_a_photo_in_one_line(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    bad: str, message: str) -> None:
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    args = ["project", "--run", str(run), "--image", str(tmp_path / bad), "--out", str(tmp_path / "z.npz")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_refuses_a_run_without_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.fromarray(faces(1, 32)[0]).save(tmp_path / "face.png")
    args = ["project", "--run", str(tmp_path / "nothing"), "--image", str(tmp_path / "face.png"), "--out",
            str(tmp_path / "z.npz")]
    assert main(args) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_an_exported_generator_has_no_discriminator_and_projects_pixels_only(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exported = export_generator(run, tmp_path / "export")
    with pytest.raises(NoDiscriminatorError, match="exported generator: it holds G only"):
        load_discriminator(exported)
    Image.fromarray(faces(1, 32)[0]).save(tmp_path / "face.png")
    out = tmp_path / "z.npz"
    assert main(["project", "--run", str(exported), "--image", str(tmp_path / "face.png"), "--out", str(out),
                 "--steps", "2", "--restarts", "1"]) == 0
    assert "projecting with the pixel loss only" in capsys.readouterr().err
    assert "feature_errors" not in np.load(out)


def test_the_discriminator_features_join_the_loss(run: Path) -> None:
    gen, disc = load_generator(run), load_discriminator(run)
    result = project(gen, faces(2, 32), disc, steps=3, restarts=1)
    assert result.feature_errors is not None and result.feature_errors.shape == (2,) and result.note is None
    assert all(s.feature_loss is not None and s.feature_loss > 0 for s in result.history)
    measured = feature_distance(disc, result.reconstructions, result.targets)  # of the uint8 reconstructions
    np.testing.assert_allclose(measured, result.feature_errors, rtol=0.1, atol=0.01)
    assert np.allclose(feature_distance(disc, result.targets, result.targets), 0)


def test_the_benchmark_prints_the_curve_and_saves_the_reconstructions(run: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from bench.inversion import main as bench

    out = tmp_path / "grid.png"
    monkeypatch.setattr("sys.argv", ["inversion.py", "--run", str(run), "--held-out", "builtin:faces:16", "--count",
                                     "2", "--steps", "0,2", "--restarts", "1", "--pixel-only-steps", "1",
                                     "--out", str(out)])
    bench()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[2:]] == ["| random latent (mean of 16)", "| 0", "| 2",
                                                           "| 1, pixel loss only"]
    assert Image.open(out).size == (2 + 2 * 34, 2 + 4 * 34)  # 2 columns; photos and reconstructions, both sets


def test_the_your_photo_tab_projects_uploads_then_edits_and_interpolates(run: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(run.parent))
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page("studio/pages/explore.py").run()
    at.selectbox(key="gen").set_value(run.name).run()
    at.session_state["explore-tab"] = "Your photo"
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    one, two = faces(2, 32)
    at.file_uploader(key="inv:upload").set_value([("one.png", png(one), "image/png"),
                                                  ("two.png", png(two), "image/png")]).run()
    at.number_input(key="inv:steps").set_value(3).run()
    at.button(key="inv:go").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    captions = [c for image in at.image for c in image.captions]
    assert {"Photo: one.png", "Photo: two.png", "Reconstruction", "Edited reconstruction"} <= set(captions)
    assert any(c.startswith("one.png → two.png") for c in captions)
    errors = [c.value for c in at.caption if c.value.startswith("Mean absolute pixel error")]
    assert len(errors) == 2 and all("discriminator-feature loss" in e for e in errors)

    def edited() -> str:
        return next(image.value[0] for image in at.image if image.captions[0] == "Edited reconstruction")

    before = edited()
    at.slider(key="inv:d0").set_value(5.0).run()
    assert edited() != before
    labels = [b.label for b in at.download_button]
    assert labels.count("Download PNG") == 3 and "Download as GIF" in labels

    at.file_uploader(key="inv:upload").set_value(("broken.png", b"not a png", "image/png")).run()
    at.button(key="inv:go").click().run()
    assert not at.exception
    assert any("broken.png is not an image" in e.value for e in at.error)
