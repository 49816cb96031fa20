"""AppTest tests of the Runs page: the table (live refresh, ticks kept by run), overlaid curves, config and
weights download, continuing on Train, rename, and delete with confirmation (also in a real browser)."""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

import engine
from studio import settings
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def train(root: Path, name: str) -> engine.Run:
    run = engine.Run(root / name)
    config = tiny_config(max_steps=10)
    config.metrics.every_images, config.metrics.names, config.metrics.num_samples = 80, ["swd"], 256
    engine.start_training(config, run.path)
    deadline = time.monotonic() + 120
    while run.is_live() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run.status()["state"] == "finished", run.log_path.read_text()[-2000:]
    return run


def fake_run(root: Path, name: str, state: str = "finished", step: int = 10, age: float = 0.0) -> engine.Run:
    """A run directory without training: config and status only (``age`` seconds old, for the table order)."""
    run = engine.Run(root / name)
    run.path.mkdir(parents=True)
    run.write_config(tiny_config())
    run.write_status(state=state, pid=os.getpid(), step=step, images=16 * step, progress=None)
    stamp = time.time() - age
    os.utime(run.config_path, (stamp, stamp))
    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> engine.Run:
    return train(tmp_path_factory.mktemp("trained"), "alpha")


@pytest.fixture
def two_runs(trained: engine.Run, tmp_path: Path) -> Path:
    """Two identical finished runs (copies of one trained run), alpha newer than beta."""
    root = tmp_path / "runs"
    for name, age in (("beta", 10), ("alpha", 0)):
        shutil.copytree(trained.path, root / name)
        stamp = time.time() - age
        os.utime(root / name / "config.json", (stamp, stamp))
    return root


def open_runs_page(root: Path, monkeypatch: pytest.MonkeyPatch, read_only: bool = False) -> AppTest:
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(root))
    monkeypatch.setenv("GAN_STUDIO_READONLY", "1" if read_only else "0")
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("studio/pages/runs.py").run()
    assert not at.exception, at.exception
    return at


def select(at: AppTest, rows: list[int]) -> None:
    at.session_state["runs-table"] = {"selection": {"rows": rows, "columns": []}}
    at.run()
    assert not at.exception, at.exception


def names(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["Run"])


def ticked(at: AppTest) -> list[str]:
    return [names(at)[i] for i in at.session_state["runs-table"]["selection"]["rows"]]


def test_table_lists_runs_and_overlays_curves(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_runs_page(two_runs, monkeypatch)
    table = at.dataframe[0].value
    assert list(table["Run"]) == ["alpha", "beta"]
    assert set(table["Status"]) == {"finished"}
    assert set(table["Steps"]) == {10}
    assert set(table["Dataset"]) == {"builtin:faces:256"}
    assert (table["Size (MB)"] > 0).all()
    assert all(best.startswith("SWD-256 ") for best in table["Best metric"])
    select(at, [0, 1])
    (chart,) = at.get("plotly_chart")
    assert chart.key == "runs-overlay"
    curves = at.get("button_group")[0]
    assert curves.options == ["G loss", "D loss", "D(x)", "D(G(z))", "SWD-256"]
    for curve in ("D(x)", "SWD-256"):
        curves.set_value(curve).run()
        assert not at.exception and not at.error


def test_rename_names_the_new_name_and_keeps_the_run_ticked(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_runs_page(two_runs, monkeypatch)
    select(at, [names(at).index("alpha")])
    at.text_input(key="rename:alpha").set_value("alpha-renamed").run()
    at.button(key="rename-button:alpha").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert (two_runs / "alpha-renamed").is_dir() and not (two_runs / "alpha").exists()
    assert [s.value for s in at.success] == ["Renamed alpha to alpha-renamed."]
    assert ticked(at) == ["alpha-renamed"]
    assert [e.label for e in at.expander] == ["Manage alpha-renamed"]
    assert at.session_state["panel:alpha-renamed"] is True  # its panel stays open

    at.text_input(key="rename:alpha-renamed").set_value("beta").run()
    at.button(key="rename-button:alpha-renamed").click().run()
    assert "a run named beta already exists" in at.error[0].value
    assert ticked(at) == ["alpha-renamed"]


def test_delete_asks_first_then_removes_the_run(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_runs_page(two_runs, monkeypatch)
    select(at, [0, 1])
    at.button(key="delete-button:alpha").click().run()
    assert (two_runs / "alpha").is_dir()  # nothing is deleted before the confirmation
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert not [b for b in at.button if b.label == "Cancel"]  # the dialog closed
    assert (two_runs / "alpha").is_dir() and names(at) == ["alpha", "beta"]

    at.button(key="delete-button:alpha").click().run()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not (two_runs / "alpha").exists()
    assert names(at) == ["beta"]
    assert [s.value for s in at.success] == ["Deleted alpha."]
    assert not [b for b in at.button if b.label in ("Delete", "Cancel")]
    assert ticked(at) == ["beta"]  # the other ticked run stays ticked though its row moved


def test_live_runs_refresh_the_table_and_keep_ticks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refresh: list[Any] = []
    fragment = streamlit.fragment

    def record(func: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        refresh.append(kwargs.get("run_every"))
        return fragment(func, **kwargs)

    monkeypatch.setattr(streamlit, "fragment", record)
    root = tmp_path / "runs"
    live = fake_run(root, "training", state="running", step=5, age=10)
    fake_run(root, "done", age=20)
    at = open_runs_page(root, monkeypatch)
    assert refresh[-1] == settings.LIVE_REFRESH_SECONDS  # the table reruns by itself while a run trains
    select(at, [names(at).index("done")])
    assert ticked(at) == ["done"]

    live.write_status(state="running", pid=os.getpid(), step=25, images=400, progress=None)
    live.append_metrics({"kind": "eval", "step": 20, "images": 320, "time": 9.0, "swd_256": 80.0})
    fake_run(root, "newest")  # a new run takes the first row
    at.run()
    table = at.dataframe[0].value.set_index("Run")
    assert table.loc["training", "Steps"] == 25 and table.loc["training", "Images seen"] == 400
    assert table.loc["training", "Best metric"] == "SWD-256 80"
    assert ticked(at) == ["done"]

    live.append_metrics({"kind": "eval", "step": 25, "images": 400, "time": 11.0, "swd_256": 60.0})
    at.run()
    assert at.dataframe[0].value.set_index("Run").loc["training", "Best metric"] == "SWD-256 60"

    live.write_status(state="stopped", pid=None, step=30, images=480, progress=None)
    at.run()
    assert refresh[-1] is None  # nothing trains: no polling


def test_panel_shows_config_downloads_weights_and_links_to_train(two_runs: Path, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    at = open_runs_page(two_runs, monkeypatch)
    select(at, [names(at).index("beta")])
    (config,) = at.json
    assert '"builtin:faces:256"' in config.value and '"dcgan"' in config.value
    (button,) = [b for b in at.get("download_button") if b.proto.label.startswith("Download latest weights")]
    assert button.proto.label == "Download latest weights (.safetensors)"

    from studio.run_table import generator_zip

    with zipfile.ZipFile(io.BytesIO(generator_zip(engine.Run(two_runs / "beta")))) as archive:
        assert sorted(archive.namelist()) == ["beta-generator/config.json", "beta-generator/model.safetensors"]
        archive.extractall(tmp_path / "unzipped")
    images = engine.load_generator(tmp_path / "unzipped" / "beta-generator").sample(seeds=[0, 1])
    assert images.shape == (2, 32, 32, 3) and images.dtype.name == "uint8"

    at.switch_page("studio/pages/share.py").run()
    at.switch_page("studio/pages/runs.py").run()
    assert ticked(at) == ["beta"]  # ticks survive a visit to another page

    at.button(key="continue-button:beta").click().run()
    assert not at.exception, at.exception
    assert at.session_state["run"] == "beta"
    assert [t.value for t in at.title] == ["Train"]


def test_read_only_mode_hides_rename_and_delete(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_runs_page(two_runs, monkeypatch, read_only=True)
    select(at, [0])
    assert at.get("plotly_chart") and at.json
    assert not [b for b in at.button if b.label in ("Rename", "Delete…")]


def test_in_chromium_the_table_refreshes_and_the_delete_dialog_closes(tmp_path: Path) -> None:
    """Dialogs and fragments rerun alone in a browser (AppTest reruns the whole page), so this needs one."""
    root = tmp_path / "runs"
    live = fake_run(root, "training", state="running", step=5, age=10)  # this test's process is its "worker"
    fake_run(root, "done", age=20)
    from tests.test_browser_studio import CHROMIUM, CHROMIUM_ARGS, studio_server, sync_api  # skips without them

    with studio_server(root) as url:

        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(60_000)
            page.goto(f"{url}/runs")
            grid = page.locator('[data-testid="stDataFrame"]')
            cells = grid.locator('[role="gridcell"]')  # the grid is a canvas; these mirror it for screen readers

            def until(condition: Callable[[], bool]) -> None:
                deadline = time.monotonic() + 30
                while not condition():
                    assert time.monotonic() < deadline, cells.all_inner_texts()
                    page.wait_for_timeout(200)

            until(lambda: "training" in cells.all_inner_texts())
            live.write_status(state="running", pid=os.getpid(), step=1234, images=19744, progress=None)
            until(lambda: "1234" in cells.all_inner_texts())  # no click: the table refreshes by itself

            box = grid.bounding_box()
            row = cells.all_inner_texts()[::9].index("done")
            page.mouse.click(box["x"] + 16, box["y"] + 35 * (row + 1) + 17)  # the row's tick box
            page.get_by_text("Manage done").click()
            page.get_by_role("button", name="Delete…").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_role("button", name="Cancel").click()
            until(lambda: dialog.count() == 0)
            assert "done" in cells.all_inner_texts()

            page.get_by_role("button", name="Delete…").click()
            dialog.get_by_role("button", name="Delete", exact=True).click()
            page.get_by_text("Deleted done.").wait_for()
            until(lambda: dialog.count() == 0 and "done" not in cells.all_inner_texts())
            assert not (root / "done").exists()
            browser.close()
