import json
import time
from pathlib import Path

import pytest

from engine import Run, RunConflictError, start_training
from engine.runs import pid_alive
from tests.conftest import tiny_config


def _wait_state(run: Run, states: tuple[str, ...], timeout: float = 120, min_step: int = 0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run.status()
        if status["state"] in states and status.get("step", 0) >= min_step:
            return status
        time.sleep(0.2)
    raise AssertionError(f"run never reached {states}: {run.status()} {run.log_path.read_text()[-2000:]}")


def test_worker_trains_detached_and_refuses_a_competing_run(tmp_path):
    run = Run(tmp_path / "a")
    pid = start_training(tiny_config(max_steps=3000), run.path)
    assert pid_alive(pid)
    _wait_state(run, ("running",), min_step=5)
    with pytest.raises(RunConflictError, match="already training on cpu"):
        start_training(tiny_config(), tmp_path / "b")
    with pytest.raises(RunConflictError, match="already training"):
        start_training(tiny_config(), run.path)
    run.request_stop()
    status = _wait_state(run, ("stopped",))
    assert status["step"] > 0 and run.latest_checkpoint() is not None

    start_training(run.config(), run.path, resume=True)
    _wait_state(run, ("running",), min_step=status["step"] + 5)
    run.request_stop()
    resumed = _wait_state(run, ("stopped",))
    assert resumed["step"] >= status["step"] + 5


def test_worker_failure_is_reported_in_plain_words(tmp_path):
    run = Run(tmp_path / "bad")
    start_training(tiny_config(dataset=str(tmp_path / "missing-folder")), run.path)
    status = _wait_state(run, ("failed",))
    assert "does not exist" in status["error"]


def test_worker_starts_a_multi_process_run_under_torchrun(tmp_path):
    """What the studio does when several GPUs are visible, here with 2 CPU processes (gloo)."""
    run = Run(tmp_path / "ddp")
    config = tiny_config(max_steps=6, dataset="builtin:faces:64", log_every=3, checkpoint_every=3)
    with pytest.raises(ValueError, match="split evenly"):
        start_training(config, run.path, processes=3)
    start_training(config, run.path, processes=2)
    status = _wait_state(run, ("finished",), timeout=180)
    assert status["step"] == 6
    assert [r["step"] for r in run.metrics() if r["kind"] == "train"] == [3, 6]
    assert [r["step"] for r in run.metrics() if r.get("live")][:1] == [3]  # rank 0 alone, from the first log step
    assert json.loads(run.latest_checkpoint().read_text())["world_size"] == 2


def test_stop_pressed_while_the_run_is_starting_ends_it(tmp_path):
    run = Run(tmp_path / "early")
    start_training(tiny_config(max_steps=0, max_seconds=60), run.path)
    run.request_stop()  # at once: the worker is still importing torch
    status = _wait_state(run, ("stopped", "finished", "failed"))
    assert status["state"] == "stopped", status
    assert run.latest_checkpoint() is not None  # resumable
    start_training(run.config(), run.path, resume=True)  # the old STOP does not stop the resumed run
    _wait_state(run, ("running",), min_step=5)
    run.request_stop()
    assert _wait_state(run, ("stopped",))["step"] >= 5


def _process_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat ('Z' for a zombie), None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_a_finished_worker_does_not_stay_a_zombie(tmp_path):
    run = Run(tmp_path / "reaped")
    pid = start_training(tiny_config(max_steps=3), run.path)
    _wait_state(run, ("finished",))
    deadline = time.monotonic() + 60
    while _process_state(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _process_state(pid) is None, f"the finished worker is still there in state {_process_state(pid)}"


def test_the_worker_reports_the_launch_time_start_training_gave_it(tmp_path):
    run = Run(tmp_path / "env")
    pid = start_training(tiny_config(max_steps=3), run.path)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    _wait_state(run, ("finished",))
    launched = float(next(v for v in environ if v.startswith(b"GAN_STUDIO_LAUNCHED_AT=")).split(b"=")[1])
    assert run.status()["started_at"] == launched
