"""AppTest tests of the Train page: recipes sized for the device, one-click start, live view, stop,
resume, train longer, run names, uploads, form checks and a form that survives other pages."""

from __future__ import annotations

import io
import os
import re
import signal
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import engine
from engine.config import Ramp
from engine.train import Trainer
from tests.conftest import tiny_config

APP = str(Path(__file__).resolve().parents[1] / "app.py")
RECIPE = "face-course-dcgan-64-ttur"  # a DCGAN recipe, made tiny by TINY below
TINY = {"cfg:data.resolution": 32, "opt:dcgan:ngf": 16, "opt:dcgan:ndf": 16, "cfg:train.batch_size": 16,
        "cfg:train.grid_every": 5, "cfg:train.log_every": 5, "cfg:train.checkpoint_every": 10}


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
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
    """The DCGAN recipe, made tiny, with ``values`` on top."""
    at.selectbox(key="cfg:preset").set_value(RECIPE).run()
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


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def texts(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


def start_button(at: AppTest):  # noqa: ANN201 - streamlit's Button element
    return next(b for b in at.button if b.label == "Start training")


def disabled_reason(at: AppTest) -> str:
    return " ".join(c for c in captions(at) if "Start is disabled" in c)


def zip_of_images(broken: bool = False, classes: tuple[str, ...] = ("cats", "dogs")) -> bytes:
    """One to three PNGs in the given class folders, plus (optionally) a file that is not an image."""
    files = [("cats/a.png", "red"), ("cats/b.png", "orange"), ("dogs/c.png", "brown")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, colour in files:
            if name.split("/")[0] in classes:
                image = io.BytesIO()
                Image.new("RGB", (40, 40), colour).save(image, format="PNG")
                archive.writestr(name, image.getvalue())
        if broken:
            archive.writestr(f"{classes[-1]}/broken.png", b"not a png")
    return buffer.getvalue()


def upload(at: AppTest, name: str, data: bytes) -> None:
    at.button_group(key="data:kind").set_value("zip").run()
    at.file_uploader(key="data:zip").upload(name, data, "application/zip").run()
    assert not at.exception, at.exception


def fake_run(root: Path, name: str, state: str, pid: int | None = None, **status: object) -> engine.Run:
    """A run directory written by hand: config and status, no worker."""
    run = engine.Run(root / name)
    run.path.mkdir(parents=True)
    run.write_config(tiny_config())
    run.write_status(**{"state": state, "pid": pid, "step": 0, "images": 0, "progress": None, **status})
    return run


def test_one_click_training_with_a_name_shows_grid_curves_finishes_and_trains_longer(runs_root: Path) -> None:
    at = open_app()
    assert at.button_group(key="data:kind").value == "builtin"
    assert any("10,000" in m.value and "classes" in m.value for m in at.markdown)
    assert any("Real images" in c for im in at.image for c in im.captions)
    assert any(c.startswith("Device: CPU") for c in captions(at))
    configure(at, **{"cfg:train.max_steps": 20, "cfg:metrics.every_images": 320})
    at.text_input(key="new-run:name").set_value("first-faces").run()
    start_button(at).click().run()
    assert not errors(at), errors(at)

    (run,) = engine.list_runs(runs_root)
    assert run.name == "first-faces"
    assert at.selectbox(key="run").value == run.name
    poll(at, lambda a: "Training" in badges(a) or "Finished" in badges(a), "the run to start")
    poll(at, lambda a: any("fixed latents" in c for im in a.image for c in im.captions), "a progress grid")
    poll(at, lambda a: bool(a.get("plotly_chart")), "the curves")
    poll(at, lambda a: "Finished" in badges(a), "the run to finish")
    assert {c.key for c in at.get("plotly_chart")} == {"monitor-losses", "monitor-metrics"}
    assert run.status()["step"] == 20
    assert at.select_slider(key=f"grid-step:{run.name}").value == run.grids()[-1][0]
    assert not errors(at)

    at.button_group(key="longer-unit:first-faces").set_value("steps").run()
    at.number_input(key="longer:first-faces:steps").set_value(10).run()
    at.button(key="longer-go:first-faces").click().run()
    assert not errors(at), errors(at)
    poll(at, lambda a: "Finished" in badges(a) and run.status()["step"] == 30, "the run to train 10 steps more")


def test_stop_refuse_a_competing_run_and_resume(runs_root: Path) -> None:
    at = open_app()
    configure(at, **{"cfg:train.max_steps": 0})
    start_button(at).click().run()
    (run,) = engine.list_runs(runs_root)
    poll(at, lambda a: run.status()["step"] >= 10, "a few steps")

    start_button(at).click().run()
    assert any("already training" in e for e in errors(at)), errors(at)
    assert len(engine.list_runs(runs_root)) == 1
    left = [p.name for p in runs_root.iterdir() if not p.name.startswith(".")]  # .launch.lock stays
    assert left == [run.name]  # the refused run left no directory behind

    next(b for b in at.button if b.label == "Stop").click().run()
    poll(at, lambda a: "Stopped" in badges(a), "the run to stop")
    stopped_at = run.status()["step"]
    assert run.latest_checkpoint() is not None

    next(b for b in at.button if b.label == "Resume").click().run()
    assert not errors(at), errors(at)
    poll(at, lambda a: run.status()["step"] > stopped_at, "the resumed run to train on")
    next(b for b in at.button if b.label == "Stop").click().run()
    poll(at, lambda a: "Stopped" in badges(a), "the resumed run to stop")


def test_the_recommended_recipe_comes_first_sized_for_this_device(runs_root: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Photographs switch the recipe to theirs (set apart from the built-in faces' here: the measured table
    may recommend one recipe for both)."""
    import engine.presets as presets

    monkeypatch.setitem(presets.RECOMMENDED["cpu"], presets.PHOTOS, "quick-photos-64")
    monkeypatch.setitem(presets.RECOMMENDED["cpu"], presets.BUILTIN, "quick-faces-32")
    at = open_app()
    device = engine.detect_device()
    name = engine.recommended(device)
    box = at.selectbox(key="cfg:preset")
    assert box.value == name and box.options[0] == f"{name} · Recommended for this CPU"
    assert sorted(box.options[1:]) == sorted(set(engine.PRESETS) - {name})

    def shows(config: engine.Config, note: str) -> None:
        assert at.number_input(key="cfg:train.batch_size").value == config.train.batch_size
        assert at.selectbox(key="cfg:data.resolution").value == config.data.resolution
        for option, value in config.model.options.items():
            assert at.session_state[f"opt:{config.model.name}:{option}"] == value, option
        assert note in captions(at)

    shows(*engine.recipe(name, device))
    at.button_group(key="cfg:size").set_value("source").run()
    shows(*engine.recipe(name, device, "source"))
    expected = next(c for c in captions(at) if c.startswith("Expected:"))
    assert re.search(r"one checkpoint \*\*[\d,.]+ MB\*\*", expected), expected

    upload(at, "pets.zip", zip_of_images())
    for_photos = engine.recommended(device, next((runs_root.parent / "uploads").glob("pets-*.zip")).as_posix())
    assert at.selectbox(key="cfg:preset").options[0] == f"{for_photos} · Recommended for this CPU"
    assert at.selectbox(key="cfg:preset").value == for_photos != name  # no recipe picked by hand: it follows
    config, note = engine.recipe(for_photos, device, "source")  # the size chosen above stays
    shows(config, f"{note} Switched to {for_photos}, the recipe recommended for these images.")


def test_a_recipe_picked_by_hand_stays_when_other_images_are_chosen(runs_root: Path) -> None:
    at = open_app()
    at.selectbox(key="cfg:preset").set_value("fastgan-64").run()
    upload(at, "pets.zip", zip_of_images())
    assert at.selectbox(key="cfg:preset").value == "fastgan-64"
    picked, _ = engine.recipe("fastgan-64", torch.device("cpu"))
    assert at.number_input(key="cfg:train.batch_size").value == picked.train.batch_size


def test_a_recipe_too_slow_here_says_so_next_to_start_with_the_measured_speed(runs_root: Path) -> None:
    from engine.expectations import record_speed

    name = "face-course-progressive-128"
    slow, _ = engine.recipe(name, torch.device("cpu"), "source")
    record_speed(slow, torch.device("cpu"), 0.5, "slow-run")
    at = open_app()
    at.selectbox(key="cfg:preset").set_value(name).run()
    at.button_group(key="cfg:size").set_value("source").run()
    assert any("0.5 img/s" in w for w in warnings(at)), warnings(at)
    assert any("measured on this machine (run slow-run" in c for c in captions(at)), captions(at)
    at.button_group(key="cfg:size").set_value("auto").run()
    assert not any("0.5 img/s" in w for w in warnings(at)), warnings(at)  # that speed was the source size's


def test_unusable_folders_are_explained_and_disable_start(runs_root: Path, tmp_path: Path) -> None:
    at = open_app()
    at.button_group(key="data:kind").set_value("folder").run()
    at.text_input(key="data:folder").set_value(str(tmp_path / "nowhere")).run()
    assert any("is not a folder" in e for e in errors(at))
    assert start_button(at).disabled and "enter a folder" in disabled_reason(at)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    at.text_input(key="data:folder").set_value(str(empty)).run()
    assert not at.exception
    assert any("no image files" in e for e in errors(at)), errors(at)
    assert start_button(at).disabled and "cannot be read" in disabled_reason(at)


def test_an_offline_hub_dataset_disables_start(runs_root: Path) -> None:
    at = open_app()
    at.button_group(key="data:kind").set_value("hub").run()
    assert errors(at), "reading a Hub dataset offline should be explained"
    assert start_button(at).disabled and "cannot be read" in disabled_reason(at)


def test_uploaded_zip_shows_count_classes_and_skipped_files(runs_root: Path) -> None:
    at = open_app()
    upload(at, "pets.zip", zip_of_images(broken=True))
    assert not errors(at), errors(at)
    facts = texts(at)
    assert "**3** images" in facts and "cats (2), dogs (1)" in facts and "**1** unreadable file skipped" in facts
    assert list((runs_root.parent / "uploads").glob("pets-*.zip"))
    assert not start_button(at).disabled

    at.file_uploader(key="data:zip").set_value(("junk.zip", b"this is no zip", "application/zip")).run()
    assert not at.exception
    assert any("valid .zip" in e for e in errors(at)), errors(at)
    assert start_button(at).disabled and "cannot be read" in disabled_reason(at)


def test_one_of_anything_is_singular(runs_root: Path) -> None:
    at = open_app()
    upload(at, "cat.zip", zip_of_images(broken=True, classes=("dogs",)))
    facts = texts(at)
    assert "**1** image · **1** class: dogs (1) · **1** unreadable file skipped" in facts, facts
    assert not re.search(r"\b1\*{0,2} (images|classes|files|runs)\b", facts), facts


def test_uploads_are_listed_picked_again_and_deleted_unless_a_run_uses_them(runs_root: Path) -> None:
    at = open_app()
    upload(at, "pets.zip", zip_of_images())
    upload(at, "dogs.zip", zip_of_images(classes=("dogs",)))
    assert "**1** image" in texts(at)  # the newest upload is the chosen one
    saved = {p.name.split("-")[0]: p for p in (runs_root.parent / "uploads").glob("*.zip")}
    rows = [m.value for m in at.markdown if m.value.startswith("**") and ".zip**" in m.value]
    assert [r.split("**")[1] for r in rows] == ["dogs.zip", "pets.zip"]
    assert all(re.search(r" · \d+ KB · \d\d \w{3} \d{4}, \d\d:\d\d", r) for r in rows), rows

    at.button(key=f"upload-use:{saved['pets'].name}").click().run()
    assert "**3** images" in texts(at)
    assert at.button(key=f"upload-use:{saved['pets'].name}").disabled

    trained = fake_run(runs_root, "on-pets", "finished")
    config = trained.config()
    config.data.spec = str(saved["pets"])
    trained.write_config(config)
    at.run()
    assert "used by 1 run" in texts(at)
    assert at.button(key=f"upload-delete:{saved['pets'].name}").disabled
    at.button(key=f"upload-delete:{saved['dogs'].name}").click().run()
    assert not saved["dogs"].exists() and saved["pets"].exists()
    assert "dogs.zip" not in texts(at) and "**3** images" in texts(at)


def test_the_form_survives_a_visit_to_another_page(runs_root: Path) -> None:
    at = open_app()
    at.selectbox(key="cfg:preset").set_value("fastgan-64").run()
    at.number_input(key="cfg:train.max_steps").set_value(123).run()
    at.number_input(key="cfg:train.batch_size").set_value(2).run()
    upload(at, "pets.zip", zip_of_images())
    assert "**3** images" in texts(at)

    at.switch_page("studio/pages/runs.py").run()
    at.switch_page("studio/pages/train.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="cfg:preset").value == "fastgan-64"
    assert at.number_input(key="cfg:train.max_steps").value == 123
    assert at.number_input(key="cfg:train.batch_size").value == 2
    assert at.button_group(key="data:kind").value == "zip"
    assert "**3** images" in texts(at), "the uploaded dataset was forgotten"
    assert not start_button(at).disabled


def test_a_batch_size_below_one_is_an_error_and_one_larger_than_the_data_a_warning(runs_root: Path) -> None:
    at = open_app()
    upload(at, "pets.zip", zip_of_images())
    for bad in (0, -4):
        at.number_input(key="cfg:train.batch_size").set_value(bad).run()
        assert any("at least 1" in e and str(bad) in e for e in errors(at)), errors(at)
        assert start_button(at).disabled and "batch size" in disabled_reason(at)
    at.number_input(key="cfg:train.batch_size").set_value(5).run()
    assert not errors(at)
    assert any("larger than the dataset (3 images)" in w for w in warnings(at)), warnings(at)
    assert not start_button(at).disabled


def test_bad_or_taken_run_names_are_explained(runs_root: Path) -> None:
    fake_run(runs_root, "taken", "finished")
    at = open_app()
    upload(at, "pets.zip", zip_of_images())
    at.text_input(key="new-run:name").set_value("taken").run()
    start_button(at).click().run()
    assert any("a run named taken already exists" in e for e in errors(at)), errors(at)
    at.text_input(key="new-run:name").set_value("no spaces please").run()
    start_button(at).click().run()
    assert any("a run name may use letters" in e for e in errors(at)), errors(at)
    assert sorted(p.name for p in runs_root.iterdir()) == ["taken"]


def test_a_starting_run_shows_its_phase_and_how_long_it_has_been_starting(runs_root: Path, sleeper: int) -> None:
    started_at = time.time() - 12
    fake_run(runs_root, "warming-up", "starting", pid=sleeper, phase="loading the dataset", started_at=started_at)
    at = open_app()
    assert "Starting" in badges(at)
    shown = re.search(r"Starting: loading the dataset… · (\d+) s", texts(at))
    assert shown and 12 <= int(shown[1]) <= time.time() - started_at, texts(at)
    assert "Stop" in labels(at)


def test_a_run_shows_generated_next_to_real_images_the_live_metric_its_config_and_log(runs_root: Path) -> None:
    run = fake_run(runs_root, "watched", "finished", step=20, images=320, train_seconds=30.0)
    for i in range(1, 5):
        run.append_metrics({"kind": "train", "step": 5 * i, "images": 80 * i, "time": 5.0 * i, "wall": 5.0 * i + 3,
                            "loss_g": 1.0 / i, "loss_d": 0.5, "d_real": 0.6, "d_fake": 0.4})
        run.append_metrics({"kind": "eval", "live": True, "step": 5 * i, "images": 80 * i, "time": 5.0 * i,
                            "swd_256": 100.0 / i})
    run.grids_dir.mkdir()
    Image.new("RGB", (8 * 34 + 2, 8 * 34 + 2), "red").save(run.grids_dir / "step_00000020.png")
    run.checkpoints_dir.mkdir()
    (run.checkpoints_dir / "ckpt_00000020.json").write_text("{}")
    run.log_path.write_text("".join(f"log line {i}\n" for i in range(100)))

    at = open_app()
    assert not errors(at), errors(at)
    shown = [c for im in at.image for c in im.captions]
    assert "Generated: fixed latents at step 20 (EMA generator)" in shown
    assert "Real: training images at 32 px" in shown
    assert "step 20 · 320 images seen · trained for 30 s" in texts(at)
    figures = {c.key: c for c in at.get("plotly_chart")}
    assert "SWD-256 (live" in figures["monitor-metrics"].proto.spec
    assert '"minutes (wall clock)"' in figures["monitor-losses"].proto.spec
    at.button_group(key="chart:axis").set_value("step").run()
    assert '"step"' in {c.key: c for c in at.get("plotly_chart")}["monitor-losses"].proto.spec
    (log,) = at.code
    assert log.value.splitlines() == [f"log line {i}" for i in range(60, 100)]
    (config,) = at.json
    assert '"builtin:faces:256"' in config.value
    assert at.button(key="longer-go:watched")  # a finished run can train longer


def test_a_diverged_run_shows_its_rollback_the_error_and_its_curves(runs_root: Path) -> None:
    error = "training diverged at step 14: loss_d became NaN or infinite in the 2 step(s) up to step 14. …"
    run = fake_run(runs_root, "diverged", "failed", step=14, images=224, error=error)
    run.append_metrics({"kind": "train", "step": 10, "images": 160, "time": 1.0, "wall": 2.0, "loss_g": 1.0,
                        "loss_d": 0.5, "d_real": 0.6, "d_fake": 0.4})
    run.append_metrics({"kind": "event", "event": "rollback", "step": 10, "images": 160, "time": 1.5,
                        "diverged_at": 12, "detail": "the D tensors are no longer finite (D.main.0.weight)",
                        "lr_g": 1e-4, "lr_d": 1e-4, "rollbacks": 1})
    run.append_metrics({"kind": "train", "step": 14, "images": 224, "time": 2.0, "wall": 3.0, "loss_g": 1.0,
                        "loss_d": float("nan"), "d_real": 0.6, "d_fake": 0.4})
    at = open_app()
    assert not at.exception, at.exception
    assert any("diverged at step 12" in w and "rolled back to the checkpoint at step 10" in w
               and "G 1.0e-04" in w for w in warnings(at)), warnings(at)
    assert any(error in e for e in errors(at)), errors(at)
    assert "monitor-losses" in {c.key for c in at.get("plotly_chart")}


@pytest.mark.parametrize(("values", "said"), [
    ({"opt:dcgan:max_channels": 100_000, "opt:dcgan:ngf": 8192}, "billion parameters, above the limit"),
    ({"cfg:optim.lr_g": 5.0}, "optim.lr_g must be")])
def test_a_configuration_that_cannot_train_here_disables_start_with_the_engines_reason(
        runs_root: Path, values: dict[str, float], said: str) -> None:
    at = open_app()
    configure(at)
    assert not start_button(at).disabled
    for key, value in values.items():
        at.number_input(key=key).set_value(value)
    at.run()
    assert any("This configuration cannot train" in e and said in e for e in errors(at)), errors(at)
    assert start_button(at).disabled and "the configuration is not valid" in disabled_reason(at)


def test_a_run_that_diverged_resumes_with_halved_learning_rates(runs_root: Path) -> None:
    trainer = Trainer(tiny_config(max_steps=30, checkpoint_every=5), runs_root / "hot")

    def poison(record: dict) -> None:
        if record["step"] == 10:
            next(trainer.D.parameters()).data.fill_(float("nan"))

    with pytest.raises(engine.DivergenceError):
        trainer.train(on_log=poison)
    at = open_app()
    assert "Failed" in badges(at) and any("diverged at step 10" in e for e in errors(at)), errors(at)
    next(b for b in at.button if b.label == "Resume at half the LR").click().run()
    assert not errors(at), errors(at)
    run = engine.Run(runs_root / "hot")
    assert run.config().optim.lr_g == run.config().optim.lr_d == 1e-4
    poll(at, lambda a: "Finished" in badges(a), "the calmer run to finish")
    assert run.status()["step"] == 30
    assert not any(r.get("event") == "divergence" for r in run.metrics())  # resumed before it: one curve


def test_the_schedules_expander_goes_into_the_config_that_starts(runs_root: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[engine.Config] = []
    monkeypatch.setattr(engine, "start_training", lambda config, run_dir, **_: started.append(config) or 0)
    at = open_app()
    assert at.number_input(key="cfg:schedule.lr_g.final").disabled  # constant: no final value to enter
    at.selectbox(key="cfg:schedule.lr_g.shape").set_value("cosine")
    at.selectbox(key="cfg:schedule.augment_p.shape").set_value("linear")
    at.number_input(key="cfg:schedule.images").set_value(1000).run()
    assert not at.number_input(key="cfg:schedule.lr_g.final").disabled
    at.number_input(key="cfg:schedule.lr_g.final").set_value(1e-5)
    at.number_input(key="cfg:schedule.augment_p.final").set_value(0.5).run()
    assert any("schedule.augment_p.shape must be constant without DiffAugment" in e for e in errors(at)), errors(at)
    assert start_button(at).disabled
    at.multiselect(key="cfg:data.diffaugment").set_value(["color"]).run()
    assert not errors(at), errors(at)
    start_button(at).click().run()
    (config,) = started
    assert config.schedule.images == 1000
    assert (config.schedule.lr_g, config.schedule.augment_p) == (Ramp("cosine", 1e-5), Ramp("linear", 0.5))
    assert config.scheduled().keys() == {"lr_g", "augment_p"}


@pytest.mark.parametrize(("metrics", "said"), [
    ({}, "appears after its first measurement"),
    ({"live_samples": 0, "every_images": 320}, "appears after its first measurement"),
    ({"live_samples": 0}, "only the live FID-1k draws a quality curve here"),
    ({"live_samples": 0, "live_fid": False}, "No quality curve for this run: its live metric is off")])
def test_a_training_run_without_a_curve_yet_says_whether_one_will_come(
        runs_root: Path, sleeper: int, metrics: dict[str, object], said: str) -> None:
    run = fake_run(runs_root, "measured", "running", pid=sleeper)
    config = run.config()
    for key, value in metrics.items():
        setattr(config.metrics, key, value)
    run.write_config(config)
    at = open_app()
    shown = [i.value for i in at.info] + captions(at)
    assert [text for text in shown if said in text], shown
    assert not at.exception, at.exception


def test_the_doctors_settings_go_into_the_config_that_starts(runs_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[engine.Config] = []
    monkeypatch.setattr(engine, "start_training", lambda config, run_dir, **_: started.append(config) or 0)
    at = open_app()
    assert at.checkbox(key="cfg:doctor.enabled").value
    assert at.number_input(key="cfg:doctor.window").min == 2  # a window of one line is no window
    at.number_input(key="cfg:doctor.window").set_value(6)
    at.number_input(key="cfg:doctor.nearest_max_images").set_value(0)
    at.checkbox(key="cfg:doctor.enabled").uncheck().run()
    assert not errors(at), errors(at)
    start_button(at).click().run()
    (config,) = started
    assert (config.doctor.enabled, config.doctor.window, config.doctor.probes, config.doctor.nearest_max_images) \
        == (False, 6, 3, 0)


def test_a_run_with_schedules_plots_them_next_to_the_losses(runs_root: Path) -> None:
    plain = fake_run(runs_root, "plain", "finished", step=10, images=160)
    scheduled = fake_run(runs_root, "scheduled", "finished", step=10, images=160)
    config = scheduled.config()
    config.schedule.lr_g, config.schedule.augment_p = Ramp("cosine", 0.0), Ramp("linear", 0.5)
    config.data.diffaugment = "color"
    scheduled.write_config(config)
    for run in (plain, scheduled):
        for i in range(1, 3):
            run.append_metrics({"kind": "train", "step": 5 * i, "images": 80 * i, "time": 1.0 * i, "wall": 1.0 * i,
                                "loss_g": 1.0, "loss_d": 0.5, "d_real": 0.6, "d_fake": 0.4, "lr_g": 2e-4 / i,
                                "lr_d": 2e-4, "augment_p": 1.0 - 0.25 * i})
    at = open_app()
    at.selectbox(key="run").set_value("scheduled").run()
    figures = {c.key: c for c in at.get("plotly_chart")}
    assert {"monitor-losses", "monitor-schedules"} <= figures.keys()
    spec = figures["monitor-schedules"].proto.spec
    assert "Learning rate G" in spec and "DiffAugment probability" in spec and "Learning rate D" not in spec
    at.selectbox(key="run").set_value("plain").run()
    assert "monitor-schedules" not in {c.key for c in at.get("plotly_chart")}


def test_training_a_scheduled_run_longer_keeps_its_horizon() -> None:
    from studio.config_form import longer

    config = tiny_config(max_steps=20)  # batch 16: the ramps run over 320 images
    config.schedule.lr_g = Ramp("cosine", 0.0)
    minutes = longer(config, step=20, train_seconds=55.0, unit="minutes", amount=5)
    minutes.validate()  # no image or step limit left, and yet a horizon
    assert minutes.schedule.images == 320 and config.schedule.images == 0
    assert longer(tiny_config(max_steps=20), step=20, train_seconds=55.0, unit="steps", amount=5).schedule.images == 0
