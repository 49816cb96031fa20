import time

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
