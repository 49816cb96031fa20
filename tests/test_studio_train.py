"""AppTest tests of the Train page: built-in data, one-click start, live view, stop, resume, conflicts."""

from __future__ import annotations

import io
import os
import signal
import zipfile
import time
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import engine

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TINY = {"cfg:data.resolution": 32, "opt:dcgan:ngf": 16, "opt:dcgan:ndf": 16, "cfg:train.batch_size": 16,
        "cfg:train.grid_every": 5, "cfg:train.log_every": 5, "cfg:train.checkpoint_every": 10}


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private runs root; any worker still alive at the end is stopped (by its pid)."""
    root = tmp_path / "runs"
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(root))
    monkeypatch.delenv("GAN_STUDIO_READONLY", raising=False)
    yield root
    for run in engine.list_runs(root):
        pid = run.status().get("pid")
        if run.is_live() and pid:
            os.kill(pid, signal.SIGTERM)


def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def configure(at: AppTest, **values: int) -> None:
    for key, value in {**TINY, **values}.items():
        widget = at.selectbox(key=key) if key == "cfg:data.resolution" else at.number_input(key=key)
        widget.set_value(value)
    at.run()


def poll(at: AppTest, done: Callable[[AppTest], bool], what: str, timeout: float = 150) -> None:
    """Rerun the page (as the live fragment does) until ``done`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}; errors: {[e.value for e in at.error]}")


def badges(at: AppTest) -> str:
    """The run state badges on the page (st.badge renders as ':color-badge[Label]' markdown)."""
    return " ".join(m.value for m in at.markdown if "-badge[" in m.value)


def labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_one_click_training_on_builtin_faces_shows_grid_curves_and_finishes(runs_root: Path) -> None:
    at = open_app()
    assert at.get("button_group")[0].value == "builtin"
    assert any("10,000" in m.value and "classes" in m.value for m in at.markdown)
    assert any("Real images" in c for im in at.image for c in im.captions)
    assert any(c.value.startswith("Device: CPU") for c in at.caption)
    configure(at, **{"cfg:train.max_steps": 20, "cfg:metrics.every_images": 320})
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not errors(at), errors(at)

    (run,) = engine.list_runs(runs_root)
    assert at.selectbox(key="run").value == run.name
    poll(at, lambda a: "Training" in badges(a) or "Finished" in badges(a), "the run to start")
    poll(at, lambda a: any("Fixed latents" in c for im in a.image for c in im.captions), "a progress grid")
    poll(at, lambda a: bool(a.get("plotly_chart")), "the loss curves")
    poll(at, lambda a: "Finished" in badges(a), "the run to finish")
    assert [c.key for c in at.get("plotly_chart")] == ["monitor-losses", "monitor-metrics"]
    assert run.status()["step"] == 20
    assert at.select_slider(key=f"grid-step:{run.name}").value == run.grids()[-1][0]
    assert not errors(at)


def test_stop_refuse_a_competing_run_and_resume(runs_root: Path) -> None:
    at = open_app()
    configure(at, **{"cfg:train.max_steps": 0})
    next(b for b in at.button if b.label == "Start training").click().run()
    (run,) = engine.list_runs(runs_root)
    poll(at, lambda a: run.status()["step"] >= 10, "a few steps")

    next(b for b in at.button if b.label == "Start training").click().run()
    assert any("already training" in e for e in errors(at)), errors(at)
    assert len(engine.list_runs(runs_root)) == 1

    next(b for b in at.button if b.label == "Stop").click().run()
    poll(at, lambda a: "Stopped" in badges(a), "the run to stop")
    stopped_at = run.status()["step"]
    assert run.latest_checkpoint() is not None

    next(b for b in at.button if b.label == "Resume").click().run()
    assert not errors(at), errors(at)
    poll(at, lambda a: run.status()["step"] > stopped_at, "the resumed run to train on")
    next(b for b in at.button if b.label == "Stop").click().run()
    poll(at, lambda a: "Stopped" in badges(a), "the resumed run to stop")


def test_unusable_folders_are_explained_in_the_page(runs_root: Path, tmp_path: Path) -> None:
    at = open_app()
    at.get("button_group")[0].set_value("folder").run()
    at.text_input(key="data:folder").set_value(str(tmp_path / "nowhere")).run()
    assert any("is not a folder" in e for e in errors(at))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    at.text_input(key="data:folder").set_value(str(empty)).run()
    assert not at.exception
    assert any("no image files" in e for e in errors(at)), errors(at)
    assert next(b for b in at.button if b.label == "Start training")


def zip_of_images(broken: bool) -> bytes:
    """Three PNGs in two class folders, plus (optionally) a file that is not really an image."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, colour in (("cats/a.png", "red"), ("cats/b.png", "orange"), ("dogs/c.png", "brown")):
            image = io.BytesIO()
            Image.new("RGB", (40, 40), colour).save(image, format="PNG")
            archive.writestr(name, image.getvalue())
        if broken:
            archive.writestr("dogs/broken.png", b"not a png")
    return buffer.getvalue()


def test_uploaded_zip_shows_count_classes_and_skipped_files(runs_root: Path) -> None:
    at = open_app()
    at.get("button_group")[0].set_value("zip").run()
    at.file_uploader(key="data:zip").upload("pets.zip", zip_of_images(broken=True), "application/zip").run()
    assert not at.exception and not errors(at), errors(at)
    facts = " ".join(m.value for m in at.markdown)
    assert "**3** images" in facts and "cats (2), dogs (1)" in facts and "**1** unreadable files skipped" in facts
    assert list((runs_root.parent / "uploads").glob("pets-*.zip"))

    at.file_uploader(key="data:zip").set_value(("junk.zip", b"this is no zip", "application/zip")).run()
    assert not at.exception
    assert any("valid .zip" in e for e in errors(at)), errors(at)


def test_read_only_mode_hides_training(runs_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_STUDIO_READONLY", "1")
    at = open_app()
    assert not at.exception
    assert at.title[0].value == "Explore"
    assert "Start training" not in labels(at)
