"""AppTest tests of the app shell (app.py): page set-up that every page shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import streamlit
from PIL import Image
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_favicon_is_a_shipped_file_not_a_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    set_page_config = streamlit.set_page_config

    def record(**kwargs: Any) -> None:
        calls.append(kwargs)
        set_page_config(**kwargs)

    monkeypatch.setattr(streamlit, "set_page_config", record)
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("studio/pages/runs.py").run()
    assert not at.exception, at.exception
    (config,) = calls
    icon = Path(str(config["page_icon"]))
    assert icon.is_absolute() and icon.is_file(), icon  # a Material icon name makes the browser fetch it from a CDN
    with Image.open(icon) as image:
        assert image.format == "PNG" and image.width == image.height >= 32
