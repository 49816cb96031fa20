"""Publishing the demo Space: creation payload, uploaded app, links both ways, updates."""

from __future__ import annotations

import json

import pytest
import yaml

from engine.cli import main
from engine.hub import HubError, publish_space
from engine.hub.space import space_files
from tests.hub_server import HubServer

pytest_plugins = ["tests.hub_helpers"]  # fixtures: hub

MODEL = "tester/faces"
SPACE = "tester/faces-demo"


@pytest.fixture
def model_repo(hub: HubServer) -> str:
    config = {"format": "gan-studio-generator/1", "model": "dcgan", "resolution": 32}
    hub.add_repo("model", MODEL, {"config.json": json.dumps(config).encode(), "model.safetensors": b"weights",
                                  "README.md": b"---\nlibrary_name: gan-studio\n---\n\n# faces\n\nA generator.\n"})
    return MODEL


def test_space_is_created_with_streamlit_the_studio_and_links(hub: HubServer, model_repo: str) -> None:
    result = publish_space(model_repo)
    assert result.space_id == SPACE and result.url == f"{hub.url}/spaces/{SPACE}"

    (create,) = hub.find("POST", "/api/repos/create")
    payload = create.json()
    assert payload["type"] == "space" and payload["sdk"] == "streamlit"
    assert payload["name"] == "faces-demo" and payload["organization"] == "tester" and "visibility" not in payload
    assert {v["key"]: v["value"] for v in payload["variables"]} == {"GAN_STUDIO_READONLY": "1",
                                                                    "GAN_STUDIO_MODEL": MODEL}

    files = hub.files("space", SPACE)
    assert set(space_files()) | {"README.md", ".gitattributes"} == set(files)
    assert {"app.py", "requirements.txt", "studio/pages/explore.py", "studio/generators.py",
            "engine/generator.py", "engine/hub/pull.py", "studio/assets/favicon.png"} <= set(files)
    assert b"pyarrow" in files["requirements.txt"]
    readme = files["README.md"].decode()
    meta = yaml.safe_load(readme.split("---", 2)[1])
    assert meta["sdk"] == "streamlit" and meta["app_file"] == "app.py" and meta["models"] == [MODEL]
    assert len(meta["short_description"]) <= 60
    assert f"]({hub.url}/{MODEL})" in readme

    card = hub.files("model", MODEL)["README.md"].decode()
    assert f"**Try it:** [interactive demo Space]({result.url})" in card
    assert card.index("# faces") < card.index("**Try it:**") < card.index("A generator.")


def test_publishing_again_updates_code_variables_and_keeps_one_link(hub: HubServer, model_repo: str,
                                                                     capsys: pytest.CaptureFixture) -> None:
    publish_space(model_repo)
    hub.add_repo("space", SPACE, {"studio/old_page.py": b"print('stale')"})
    hub.repos[("space", SPACE)].variables["GAN_STUDIO_MODEL"] = "someone/else"
    assert main(["publish-space", "--model", MODEL]) == 0
    assert capsys.readouterr().out.strip() == f"{hub.url}/spaces/{SPACE}"

    assert len(hub.find("POST", "/api/repos/create")) == 1  # the second time it already existed
    assert hub.repos[("space", SPACE)].variables == {"GAN_STUDIO_READONLY": "1", "GAN_STUDIO_MODEL": MODEL}
    assert "studio/old_page.py" not in hub.files("space", SPACE)
    assert hub.files("model", MODEL)["README.md"].decode().count("**Try it:**") == 1
    assert all(r.headers["authorization"].startswith("Bearer hf_") for r in hub.requests if r.method == "POST")


def test_a_space_needs_a_pushed_model_and_a_token(hub: HubServer, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    hub.add_repo("model", "tester/notes", {"README.md": b"# notes"})
    with pytest.raises(HubError, match="holds no GAN Studio generator"):
        publish_space("tester/notes")
    with pytest.raises(HubError, match="there is no model repo tester/absent"):
        publish_space("tester/absent", "tester/demo")
    monkeypatch.delenv("HF_TOKEN")
    assert main(["publish-space", "--model", "tester/notes"]) == 2
    assert "needs a Hugging Face token" in capsys.readouterr().err
    assert not hub.find("POST", "/api/repos/create")
