"""AppTest tests of the Runs page: the table, overlaid curves, rename and delete with confirmation."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import engine
from tests.conftest import tiny_config

APP = str(Path(__file__).resolve().parents[1] / "app.py")


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


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs-page")
    shutil.copytree(train(root, "alpha").path, root / "beta")  # a second, identical finished run
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


def test_table_lists_runs_and_overlays_curves(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_runs_page(two_runs, monkeypatch)
    table = at.dataframe[0].value
    assert set(table["Run"]) == {"alpha", "beta"}
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


def test_rename_and_delete_with_confirmation(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_runs_page(two_runs, monkeypatch)
    row = list(at.dataframe[0].value["Run"]).index("alpha")
    select(at, [row])
    at.text_input(key="rename:alpha").set_value("alpha-renamed").run()
    at.button(key="rename-button:alpha").click().run()
    assert not at.error, [e.value for e in at.error]
    assert (two_runs / "alpha-renamed").is_dir() and not (two_runs / "alpha").exists()

    row = list(at.dataframe[0].value["Run"]).index("alpha-renamed")
    select(at, [row])
    at.button(key="delete-button:alpha-renamed").click().run()
    assert (two_runs / "alpha-renamed").is_dir()  # nothing is deleted before the confirmation
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not (two_runs / "alpha-renamed").exists()
    assert list(at.dataframe[0].value["Run"]) == ["beta"]


def test_read_only_mode_hides_rename_and_delete(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_runs_page(two_runs, monkeypatch, read_only=True)
    select(at, [0])
    assert at.get("plotly_chart")
    assert not [b for b in at.button if b.label in ("Rename", "Delete…")]
