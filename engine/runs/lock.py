"""One writer per run: an exclusive lock on ``<run>/.lock`` held by the process that trains it.

The lock is an advisory ``flock``: the kernel releases it when the holder exits for any reason
(kill -9 included), so a crashed run never stays locked. The file holds the holder's pid, which is
what a refused writer is told. Within one process a lock whose owner is not training can be taken
over by a new owner (a notebook that builds a second Trainer for the same run, say).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import IO, Iterator

LOCK_NAME = ".lock"
PROBE_GRACE = 1.0  # seconds a writer retries, so a reader's momentary probe (lock_holder) never refuses it
_HELD: dict[Path, "RunLock"] = {}  # this process's locks by run directory


class RunLockedError(RuntimeError):
    """Another writer trains this run."""


class RunLock:
    """The exclusive right to write one run directory; ``busy`` while its owner trains."""

    def __init__(self, run_dir: Path, handle: IO[str]) -> None:
        self.run_dir = run_dir
        self.busy = False
        self._handle: IO[str] | None = handle

    @classmethod
    def acquire(cls, run_dir: str | Path) -> "RunLock":
        """Lock ``run_dir`` (created if missing) or raise RunLockedError naming the live writer."""
        key = Path(run_dir).resolve()
        held = _HELD.get(key)
        if held is not None:
            if held.busy:
                raise RunLockedError(_refusal(key, os.getpid()))
            handle, held._handle = held._handle, None
            assert handle is not None, "a lock in _HELD keeps its handle until released"
        else:
            key.mkdir(parents=True, exist_ok=True)
            handle = _locked_handle(key)
        lock = _HELD[key] = cls(key, handle)
        return lock

    @property
    def held(self) -> bool:
        return self._handle is not None

    def check(self) -> None:
        """Raise RunLockedError when another owner in this process took the lock over."""
        if self._handle is None:
            raise RunLockedError(f"run {self.run_dir.name} is now written by another trainer in this process")

    def release(self) -> None:
        if self._handle is None:
            return
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None
        if _HELD.get(self.run_dir) is self:
            del _HELD[self.run_dir]


def lock_holder(run_dir: str | Path) -> int | None:
    """The pid of the process that writes ``run_dir`` now, or None when no process does."""
    path = Path(run_dir) / LOCK_NAME
    if not path.is_file():
        return None
    if Path(run_dir).resolve() in _HELD:
        return os.getpid()
    with open(path, "a+", encoding="ascii") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _recorded_pid(handle)
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


@contextlib.contextmanager
def launching(runs_root: str | Path) -> Iterator[None]:
    """Serialise launches under one runs root (waits for the other launcher), so two Start presses at
    the same instant see each other's "starting" run and cannot both train on one device."""
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".launch.lock", "a+", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _locked_handle(run_dir: Path) -> IO[str]:
    handle = open(run_dir / LOCK_NAME, "a+", encoding="ascii")
    deadline = time.monotonic() + PROBE_GRACE
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                pid = _recorded_pid(handle)
                handle.close()
                raise RunLockedError(_refusal(run_dir, pid)) from None
            time.sleep(0.05)
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _recorded_pid(handle: IO[str]) -> int | None:
    handle.seek(0)
    text = handle.read().strip()
    return int(text) if text.isdigit() else None


def _refusal(run_dir: Path, pid: int | None) -> str:
    who = f"process {pid}" if pid else "another process"
    return (f"run {run_dir.name} is being trained by {who}: stop that run first (Stop in the studio, or "
            f"kill {pid or 'it'}), or wait for it to finish; two writers would mix its checkpoints and metrics")
