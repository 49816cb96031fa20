"""Opt-in: push, pull and load against the real Hugging Face Hub. Runs only when HF_TOKEN (with write access)
is set; it creates a private repo in that account and deletes it afterwards."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest

import engine
from engine.hub import pull_model, push_run

pytest_plugins = ["tests.hub_helpers"]  # fixtures: tiny_run

REAL_TOKEN = os.environ.get("HF_TOKEN")
pytestmark = pytest.mark.skipif(not REAL_TOKEN, reason="set HF_TOKEN (write access) to test against the real Hub")


def test_round_trip_on_the_real_hub(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi, constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    api = HfApi(token=REAL_TOKEN)
    repo = f"{api.whoami()['name']}/gan-studio-test-{uuid.uuid4().hex[:8]}"
    try:
        result = push_run(tiny_run, repo, private=True, with_training_state=True)
        assert result.url.endswith(repo)
        pulled = pull_model(repo, with_training_state=True)
        assert "library_name: gan-studio" in (pulled.path / "README.md").read_text()
        assert pulled.training_dir is not None
        local = engine.load_generator(tiny_run)
        remote = engine.Generator.from_pretrained(repo)
        assert np.array_equal(remote.sample(seeds=range(4)), local.sample(seeds=range(4)))
    finally:
        api.delete_repo(repo, missing_ok=True)
