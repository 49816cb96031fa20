"""kill -9 a real training process at random moments: the run must stay loadable and resumable."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.base import records
from engine.base.checkpoint import load_checkpoint
from engine.runs import Run

ROOT = Path(__file__).resolve().parents[1]


def _start(run_dir: Path, resume: bool) -> subprocess.Popen:
    args = [sys.executable, "-m", "engine", "train", "--run-dir", str(run_dir), "--device", "cpu", "--no-progress",
            "--max-steps", "400"]
    if resume:
        args.append("--resume")
    else:
        args += ["--dataset", "builtin:faces:128", "--resolution", "32", "--batch-size", "8",
                 "--set", "model.options.ngf=8", "--set", "model.options.ndf=8",
                 "--set", "train.checkpoint_every=2", "--set", "train.log_every=1", "--set", "train.grid_every=3",
                 "--set", "train.keep_checkpoints=2"]
    return subprocess.Popen(args, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_kill_9_leaves_a_resumable_run(tmp_path):
    rng = random.Random(0)
    run_dir = tmp_path / "run"
    run = Run(run_dir)
    steps_seen = []
    for attempt in range(4):
        before = len(run.metrics())
        proc = _start(run_dir, resume=attempt > 0)
        _wait_for(lambda: len(run.metrics()) > before + 2 or proc.poll() is not None, 120)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert run.status()["state"] == "failed"
        latest = run.latest_checkpoint()
        meta, tensors = load_checkpoint(latest)
        assert any(k.startswith("G_ema.") for k in tensors)
        steps_seen.append(meta["step"])
        for record in run.metrics():
            assert record["kind"] in records.KINDS
    assert steps_seen == sorted(steps_seen) and steps_seen[-1] > steps_seen[0]
    proc = _start(run_dir, resume=True)
    _wait_for(lambda: len(run.metrics()) > 0 and run.metrics()[-1]["step"] > steps_seen[-1] + 2, 120)
    run.request_stop()
    assert proc.wait(timeout=120) == 0
    proc.stderr.close()
    assert run.status()["state"] == "stopped"
    assert load_checkpoint(run.latest_checkpoint())[0]["step"] > steps_seen[-1]
