"""AppTest tests of the studio's Hub features: the Share page, Explore on Hub models, a Space's bound model,
and the Hub dataset presets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.hub import push_run
from tests.hub_server import TOKEN, HubServer

pytest_plugins = ["tests.hub_helpers"]  # fixtures: hub, tiny_run

APP = str(Path(__file__).resolve().parents[1] / "app.py")
REPO = "tester/studio"


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_share_page_pushes_with_a_session_token_and_publishes_a_space(
        hub: HubServer, tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    shutil.copytree(tiny_run, tmp_path / "runs" / tiny_run.name)
    at = open_page("studio/pages/share.py")
    assert any("No token found" in c.value for c in at.caption)
    assert at.selectbox(key="hub:run").value == tiny_run.name
    at.text_input(key="hub:token").input(TOKEN)
    at.text_input(key="hub:repo").input(REPO).run()
    at.button(key="hub:push").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Pushed" in s.value and REPO in s.value for s in at.success)
    assert "model.safetensors" in hub.files("model", REPO)

    assert at.text_input(key="hub:space-model").value == REPO
    at.button(key="hub:publish").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any("tester/studio-demo" in s.value for s in at.success)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_runs_page_leads_to_sharing_the_chosen_run(hub: HubServer, tiny_run: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_run, tmp_path / "runs" / "second")
    shutil.copytree(tiny_run, tmp_path / "runs" / tiny_run.name)
    at = open_page("studio/pages/runs.py")
    row = list(at.dataframe[0].value["Run"]).index("second")
    at.session_state["runs-table"] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    at.button(key="share-button:second").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="hub:run").value == "second"


def test_share_page_explains_hub_errors_in_one_sentence(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("studio/pages/share.py")
    assert any("HF_TOKEN" in c.value for c in at.caption)
    at.text_input(key="hub:pull-repo").input("someone/absent").run()
    at.button(key="hub:pull").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Cannot pull someone/absent: there is no model repo someone/absent on "
                                           "the Hub, or it is private and this token cannot see it; check the name "
                                           "(owner/name)."]


def test_pulled_model_opens_in_explore(hub: HubServer, tiny_run: Path) -> None:
    push_run(tiny_run, REPO)
    at = open_page("studio/pages/share.py")
    at.text_input(key="hub:pull-repo").input(REPO).run()
    at.button(key="hub:pull").click().run()
    assert any("in the local cache" in s.value for s in at.success)
    at.button(key="hub:open").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="gen").value == f"hf:{REPO}"
    assert "Hugging Face Hub" in at.selectbox(key="gen").format_func(f"hf:{REPO}")
    assert len(at.image) == 16


def test_a_space_opens_its_bound_model_read_only(hub: HubServer, tiny_run: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    push_run(tiny_run, REPO)
    monkeypatch.setenv("GAN_STUDIO_READONLY", "1")
    monkeypatch.setenv("GAN_STUDIO_MODEL", REPO)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="gen").value == f"hf:{REPO}" and len(at.image) == 16

    monkeypatch.setenv("GAN_STUDIO_MODEL", "tester/gone")
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert any("tester/gone" in e.value for e in at.error)
    assert at.selectbox(key="gen").value == "demo"  # the rest of Explore still works


def test_dataset_picker_offers_hub_presets_and_any_repo() -> None:
    def picker() -> None:
        from pathlib import Path

        import streamlit as st

        from studio.dataset_picker import choose_dataset

        st.session_state["spec"] = choose_dataset(Path("uploads"))

    at = AppTest.from_function(picker).run()
    at.segmented_control(key="data:kind").set_value("hub").run()
    assert at.session_state["spec"] == "hf:huggan/AFHQ"
    assert "CelebA: celebrity faces" in at.selectbox(key="data:hub").options
    at.selectbox(key="data:hub").set_value("other").run()
    assert at.session_state["spec"] is None
    at.text_input(key="data:hub-spec").input("someone/faces:test").run()
    assert at.session_state["spec"] == "hf:someone/faces:test"
