"""Run directories: what a training run writes and how other processes read it."""

from engine.base.environment import runs_root
from engine.runs.lock import RunLock, RunLockedError, lock_holder
from engine.runs.run import LAUNCH_ENV, Run, check_run_name, file_clock, list_runs, new_run_dir, pid_alive

__all__ = ["LAUNCH_ENV", "Run", "RunLock", "RunLockedError", "check_run_name", "file_clock", "list_runs",
           "lock_holder", "new_run_dir", "pid_alive", "runs_root"]
