"""Starting training as a detached worker process (what the studio does instead of training)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine.base.checkpoint import CheckpointError, read_checkpoint_meta
from engine.config import Config
from engine.device import detect_device
from engine.runs import LAUNCH_ENV, Run, file_clock, list_runs, lock_holder
from engine.runs.lock import launching
from engine.train.resume import check_resumable

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class RunConflictError(RuntimeError):
    """Another live run already uses the device this run would train on."""


def _device_key(config: Config) -> str:
    device = detect_device(config.train.device)
    return f"{device.type}:{device.index or 0}" if device.type == "cuda" else device.type


def _check_resume(config: Config, run: Run) -> None:
    """Refuse, before anything is written, a resume its checkpoint cannot continue (another model,
    options, resolution, images or seed): the run's status and config stay as they were."""
    latest = run.latest_checkpoint()
    if latest is None:
        raise RunConflictError(f"run {run.name} has no checkpoint to resume from")
    try:
        meta = read_checkpoint_meta(latest)
    except CheckpointError as exc:
        raise RunConflictError(str(exc)) from None
    check_resumable(config, meta, run.name)


def visible_gpus() -> int:
    """How many CUDA devices this machine shows (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def start_training(config: Config, run_dir: str | Path, resume: bool = False, processes: int = 1) -> int:
    """Launch ``python -m engine train`` for run_dir in its own session; returns the launcher's pid.

    ``processes`` > 1 launches it under torchrun (one process per GPU, DistributedDataParallel;
    ``train.batch_size`` is the global batch). Refuses an invalid config (ConfigError) and, with
    RunConflictError, a run that trains already or a live run under the same runs root on the same
    device; nothing is written then. A stop requested at any moment after it returns ends the run
    (a STOP file is only stale when older than the launch). A thread of this process waits for the
    worker, so a finished worker never lingers as a zombie under a long-lived caller (the studio).
    """
    config.validate()
    if processes < 1 or config.train.batch_size % processes:
        raise ValueError(f"batch size {config.train.batch_size} must split evenly over {processes} processes")
    run = Run(run_dir)
    with launching(run.path.parent):
        _refuse_conflicts(config, run)
        if resume:
            _check_resume(config, run)
        return _launch(config, run, resume, processes)


def _refuse_conflicts(config: Config, run: Run) -> None:
    """RunConflictError when this run, or another run on the same device, is training."""
    holder = lock_holder(run.path)
    if run.is_live() or holder:
        who = f" (process {holder})" if holder else ""
        raise RunConflictError(f"run {run.name} is already training{who}: stop it first or wait for it to finish")
    key = _device_key(config)
    for other in list_runs(run.path.parent):
        if other.path != run.path and other.is_live() and _device_key(other.config()) == key:
            raise RunConflictError(f"run {other.name} is already training on {key}; stop it first "
                                   "or wait for it to finish")


def _launch(config: Config, run: Run, resume: bool, processes: int) -> int:
    """Write the config, start the worker and say it is starting (its status, with the launch time)."""
    previous = run.status() if resume else {}
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(config)
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else []
    command = [sys.executable, *launcher, "-m", "engine", "train", "--config", str(run.config_path),
               "--run-dir", str(run.path), "--no-progress"] + (["--resume"] if resume else [])
    run.stop_path.unlink(missing_ok=True)
    launched_at = file_clock()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
               PYTHONUNBUFFERED="1", **{LAUNCH_ENV: repr(launched_at)})
    with open(run.log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    threading.Thread(target=process.wait, name=f"reap-worker-{process.pid}", daemon=True).start()
    run.write_status(state="starting", phase="starting the worker (loading PyTorch)", pid=process.pid,
                     step=previous.get("step", 0), images=previous.get("images", 0), progress=previous.get("progress"),
                     error=None, heartbeat=time.time(), started_at=launched_at)
    return process.pid
