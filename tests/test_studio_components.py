"""Unit tests of the studio's small components: animations, enlarging, nearest neighbours, errors."""

from __future__ import annotations

import zipfile

import numpy as np
import torch

from engine import RunConflictError
from engine.data import DatasetError
from studio.errors import explain
from studio.imaging import animation, enlarge
from studio.neighbours import NeighbourIndex


def frames(n: int = 4, size: int = 34) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def test_animations_are_real_gif_and_mp4_files() -> None:
    gif = animation(frames(), "gif", size=64)
    mp4 = animation(frames(), "mp4", size=64)
    assert gif[:6] == b"GIF89a"
    assert mp4[4:8] == b"ftyp"


def test_enlarge_keeps_the_aspect_and_never_shrinks() -> None:
    image = frames(1, 32)[0]
    assert enlarge(image, 256).shape == (256, 256, 3)
    assert enlarge(image, 16) is image


def test_nearest_neighbours_find_the_copy_first() -> None:
    images = np.stack(frames(50, 32))
    index = NeighbourIndex(images)
    found, dist = index.search(images[17], k=3)
    assert found[0] == 17 and dist[0] == 0.0
    assert np.all(np.diff(dist) >= 0)


def test_user_errors_read_as_one_plain_sentence() -> None:
    assert explain(torch.OutOfMemoryError("CUDA out of memory"), "start training").startswith(
        "Not enough memory to start training")
    assert explain(zipfile.BadZipFile("bad"), "read this dataset") == (
        "Could not read this dataset: the file is not a valid .zip archive.")
    assert explain(DatasetError("no images in /x"), "read this dataset") == (
        "Could not read this dataset: no images in /x")
    assert "already training" in explain(RunConflictError("run a is already training on cpu"), "start training")
    assert explain(FileNotFoundError(2, "No such file", "/nope"), "load") == "Could not load: /nope does not exist."


def test_the_studio_does_not_watch_its_source_files() -> None:
    """Streamlit's file watcher took most of a core beside a training worker (10x slower training)."""
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none"
