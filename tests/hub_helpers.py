"""Fixtures for Hub tests (a pytest plugin: `pytest_plugins = ["tests.hub_helpers"]`): huggingface_hub pointed
at the local HubServer, switching it offline, and a tiny trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.hub_server import TOKEN, HubServer


def point_client_at(monkeypatch: pytest.MonkeyPatch, url: str, home: Path) -> None:
    """Online mode, this endpoint, and a private Hub cache and token file (huggingface_hub reads these at import)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / "agent_harnesses.json"))


@pytest.fixture
def go_offline(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to switch the Hub off (HF_HUB_OFFLINE=1) for the rest of the test."""
    from huggingface_hub import constants

    def switch() -> None:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    return switch


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    """A running HubServer that accepts TOKEN (set as HF_TOKEN), with fresh Hub and GAN Studio caches."""
    server = HubServer(TOKEN).start()
    point_client_at(monkeypatch, server.url, tmp_path / "hf")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(tmp_path / "runs"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 6-step DCGAN run at 32 px with a checkpoint, train losses and one eval record."""
    import engine
    from engine.cli import main

    run_dir = tmp_path_factory.mktemp("hub-run") / "faces-run"
    assert main(["train", "--dataset", "builtin:faces:64", "--resolution", "32", "--batch-size", "16",
                 "--max-steps", "6", "--run-dir", str(run_dir), "--device", "cpu", "--no-progress",
                 "--set", "model.options.ngf=4", "--set", "model.options.ndf=4", "--set", "train.log_every=2",
                 "--set", "train.checkpoint_every=3"]) == 0
    engine.Run(run_dir).append_metrics({"kind": "eval", "step": 6, "images": 96, "fid_2k": 123.456,
                                        "swd_2k": 7.5})
    return run_dir
