"""Unit tests of the studio's small components: animations, enlarging, nearest neighbours, errors."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from engine import RunConflictError
from engine.data import DatasetError
from engine.metrics.nearest import NeighbourIndex
from studio.errors import explain
from studio.imaging import animation, enlarge


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


def test_counts_take_the_right_number() -> None:
    from studio.monitor import plural

    assert plural(1, "class", "classes") == "1 class"
    assert plural(2, "class", "classes") == "2 classes"
    assert plural(0, "image") == "0 images"
    assert plural(10_000, "image") == "10,000 images"


def test_progress_text_while_starting_running_and_after() -> None:
    from studio.monitor import progress_text

    starting = {"state": "starting", "phase": "choosing the memory layout", "started_at": 100.0, "step": 0}
    assert progress_text(starting, now=112.4) == "Starting: choosing the memory layout… · 12 s"
    running = {"state": "running", "started_at": 100.0, "step": 40, "images": 640, "img_per_sec": 31.7,
               "progress": None, "eta_seconds": None}
    assert progress_text(running, now=190.0) == (
        "running for 1 min 30 s · 640 images seen · step 40 · 32 img/s · no limit: runs until you press Stop")
    limited = dict(running, progress=0.5, eta_seconds=75.0, img_per_sec=2.54)
    assert progress_text(limited, now=190.0).endswith("2.5 img/s · ETA 1 min 15 s")
    stopped = {"state": "stopped", "step": 1, "images": 1, "train_seconds": 3725.0}
    assert progress_text(stopped, now=0.0) == "step 1 · 1 image seen · trained for 1 h 02 min"


def test_ema_smoothing_is_debiased_like_tensorboard() -> None:
    from studio.charts import ema_smooth

    assert ema_smooth([5.0, 5.0, 5.0], 0.9) == pytest.approx([5.0, 5.0, 5.0])  # no pull towards zero
    assert ema_smooth([1.0, 3.0], 0.0) == [1.0, 3.0]
    smoothed = ema_smooth([0.0, 10.0], 0.5)
    assert smoothed[1] == pytest.approx((0.5 * 0.0 * 0.5 + 0.5 * 10.0) / (1 - 0.25))
    with pytest.raises(ValueError):
        ema_smooth([1.0], 1.0)


def test_curves_against_wall_time_place_evaluations_by_the_last_training_line() -> None:
    from engine.base import records
    from studio.charts import metric_names, metric_series, x_values

    train_lines = [{"kind": "train", "step": 10, "images": 160, "time": 20.0, "wall": 50.0},
                   {"kind": "train", "step": 20, "images": 320, "time": 40.0, "wall": 80.0}]
    live_line = {"kind": "eval", "live": True, "step": 20, "images": 320, "time": 41.0, "swd_256": 60.0}
    full_line = {"kind": "eval", "step": 20, "images": 320, "time": 45.0, "swd_2k": 50.0, "errors": {}}
    train, live = records.train_records(train_lines), records.EvalRecord.from_dict(live_line)
    assert x_values(train, "time", train) == [50.0 / 60, 80.0 / 60]
    assert x_values([live], "time", train) == [pytest.approx((41.0 + 40.0) / 60)]
    assert x_values([live], "step") == [20] and x_values([live], "images") == [0.32]
    lines = [*train_lines, full_line, live_line]
    assert metric_names(lines) == ["swd_2k", "swd_256"]  # "live" and "wall" are no metrics
    assert metric_series(lines) == [("swd_256", True), ("swd_2k", False)]


def test_smoothed_curves_keep_the_raw_values_faintly_behind() -> None:
    from studio.charts import loss_figure

    train = [{"kind": "train", "step": s, "images": 16 * s, "time": s, "wall": s, "loss_g": float(s % 3),
              "loss_d": 1.0, "d_real": 0.5, "d_fake": 0.5} for s in range(1, 30)]
    raw, smoothed = loss_figure(train, "r", "step", 0.0), loss_figure(train, "r", "step", 0.8)
    assert len(smoothed.data) == 2 * len(raw.data)
    assert list(smoothed.data[0].y) == list(raw.data[0].y) and smoothed.data[0].opacity < 1
    assert max(smoothed.data[1].y) - min(smoothed.data[1].y) < max(raw.data[0].y) - min(raw.data[0].y)


def test_log_tail_reads_only_the_end(tmp_path) -> None:
    from studio.monitor import log_tail

    log = tmp_path / "worker.log"
    assert log_tail(log) == ""
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert log_tail(log, 3) == "line 99997\nline 99998\nline 99999"


def test_training_longer_raises_only_the_chosen_limit() -> None:
    from studio.config_form import longer
    from tests.conftest import tiny_config

    config = tiny_config(max_steps=20, max_images=999, max_seconds=60.0)
    steps = longer(config, step=20, train_seconds=55.0, unit="steps", amount=100)
    assert (steps.train.max_steps, steps.train.max_seconds, steps.train.max_images) == (120, 0.0, 0)
    minutes = longer(config, step=20, train_seconds=55.0, unit="minutes", amount=5)
    assert (minutes.train.max_steps, minutes.train.max_seconds, minutes.train.max_images) == (0, 355.0, 0)
    assert config.train.max_steps == 20  # the run's own config is left as it was


def test_batch_sizes_are_checked_against_the_dataset() -> None:
    from studio.config_form import batch_problem

    assert batch_problem(16, 1000) == (None, None)
    error, _ = batch_problem(0, 1000)
    assert "at least 1" in error and "(it is 0)" in error
    _, warning = batch_problem(64, 1)
    assert "larger than the dataset (1 image)" in warning
    assert batch_problem(64, None) == (None, None)
