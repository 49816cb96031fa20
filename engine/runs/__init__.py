"""Run directories: what a training run writes and how other processes read it."""

from engine.runs.lock import RunLock, RunLockedError, lock_holder
from engine.runs.run import (DEFAULT_RUNS_ROOT, LAUNCH_ENV, Run, check_run_name, file_clock, list_runs, new_run_dir,
                             pid_alive, runs_root)

__all__ = ["DEFAULT_RUNS_ROOT", "LAUNCH_ENV", "Run", "RunLock", "RunLockedError", "check_run_name", "file_clock",
           "list_runs", "lock_holder", "new_run_dir", "pid_alive", "runs_root"]
