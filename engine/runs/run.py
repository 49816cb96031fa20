"""A run directory: config, status, metrics log, progress grids and checkpoints."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from engine.base import records
from engine.base.environment import runs_root
from engine.base.files import TEMP_SUFFIX, append_line, atomic_write_bytes, atomic_write_json, read_json, read_jsonl
from engine.base.findings import FINDINGS_FILE, Finding, findings_from_json
from engine.config import Config

LIVE_STATES = ("starting", "running")
LAUNCH_ENV = "GAN_STUDIO_LAUNCHED_AT"  # the worker's launch time (file_clock), set by start_training
_CKPT = re.compile(r"^ckpt_(\d{8})\.json$")
_GRID = re.compile(r"^step_(\d{8})\.png$")
_NAME = re.compile(r"[\w.-]{1,80}")


def file_clock() -> float:
    """Wall-clock seconds on the coarse clock the kernel stamps file times with: a file touched after
    this call never has an older modification time than its result."""
    if hasattr(time, "CLOCK_REALTIME_COARSE"):
        return time.clock_gettime(time.CLOCK_REALTIME_COARSE)
    return time.time()


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


class Run:
    """Read (and, for the worker, write) one run directory. Safe to use while training runs."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    grids_dir = property(lambda self: self.path / "grids")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    stop_path = property(lambda self: self.path / "STOP")
    log_path = property(lambda self: self.path / "worker.log")
    findings_path = property(lambda self: self.path / FINDINGS_FILE)

    def exists(self) -> bool:
        return self.config_path.is_file()

    def config(self) -> Config:
        return Config.load(self.config_path)

    def status(self) -> dict[str, Any]:
        """status.json; a 'running' run whose process is gone is reported as 'failed'."""
        try:
            status = read_json(self.status_path)
        except (OSError, ValueError):
            return {"state": "unknown", "error": None, "step": 0, "images": 0, "progress": None}
        if status.get("state") in LIVE_STATES and not pid_alive(status.get("pid")):
            status["state"] = "failed"
            status["error"] = status.get("error") or (
                "the training process ended unexpectedly (killed or crashed); "
                "resume continues from the last checkpoint")
        return status

    def model_kind(self) -> str | None:
        """How the run's model trains (``records.MODEL_KINDS``), as its trainer recorded it in status.json;
        None for a run that has not recorded it (one trained before it was recorded)."""
        kind = self.status().get("model_kind")
        return kind if kind in records.MODEL_KINDS else None

    def is_live(self) -> bool:
        return self.status()["state"] in LIVE_STATES

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def findings(self) -> list[Finding]:
        """What the training doctor found (engine.doctor), oldest first; none before it wrote anything."""
        try:
            return findings_from_json(read_json(self.findings_path))
        except (OSError, ValueError):
            return []

    def grids(self) -> list[tuple[int, Path]]:
        if not self.grids_dir.is_dir():
            return []
        found = [(int(m.group(1)), self.grids_dir / m.group(0))
                 for m in map(_GRID.match, os.listdir(self.grids_dir)) if m]
        return sorted(found)

    def checkpoints(self) -> list[Path]:
        """Committed checkpoint JSON files, oldest first (best.json excluded)."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = sorted(m.group(0) for m in map(_CKPT.match, os.listdir(self.checkpoints_dir)) if m)
        return [self.checkpoints_dir / name for name in found]

    def latest_checkpoint(self) -> Path | None:
        checkpoints = self.checkpoints()
        return checkpoints[-1] if checkpoints else None

    def latest_checkpoint_step(self) -> int | None:
        """The step of the latest committed checkpoint (read from its name), or None without one."""
        latest = self.latest_checkpoint()
        return checkpoint_step(latest) if latest else None

    def has_history(self) -> bool:
        """Whether this directory already holds training output (metrics or checkpoints)."""
        return self.metrics_path.exists() or bool(self.checkpoints())

    def clean_leftovers(self) -> list[Path]:
        """Remove what an interrupted write left behind: temp files of atomic writes, and checkpoint
        tensors whose JSON (the commit mark) was never written. Only for the run's single writer."""
        removed = []
        for folder in (self.path, self.checkpoints_dir, self.grids_dir):
            if folder.is_dir():
                removed += [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)]
        if self.checkpoints_dir.is_dir():
            named = self._best_tensors()
            removed += [p for p in self.checkpoints_dir.glob("*.safetensors")
                        if not p.with_suffix(".json").exists() and p.name != named]
        for path in removed:
            path.unlink(missing_ok=True)
        return removed

    def _best_tensors(self) -> str | None:
        """The tensors file best.json names (it is rewritten under new names: best_<step>.safetensors)."""
        try:
            return read_json(self.checkpoints_dir / "best.json").get("tensors")
        except (OSError, ValueError, AttributeError):
            return None

    def truncate_history(self, step: int) -> int:
        """Drop the metrics records and progress grids after ``step`` (what a resumed run recomputes from
        its checkpoint at ``step``), so every reader sees one curve. Returns how many records went."""
        lines = self.metrics()
        kept = [r for r in lines if r.get(records.STEP, 0) <= step]
        if len(kept) < len(lines):
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
            atomic_write_bytes(self.metrics_path, text.encode())
        for grid_step, path in self.grids():
            if grid_step > step:
                path.unlink(missing_ok=True)
        return len(lines) - len(kept)

    def request_stop(self) -> None:
        self.stop_path.parent.mkdir(parents=True, exist_ok=True)
        self.stop_path.touch()

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one record as strict JSON: NaN or infinite values are left out and named under
        "nonfinite", so every reader can parse every line and no curve holds a NaN."""
        bad = sorted(k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v))
        if bad:
            record = {**{k: v for k, v in record.items() if k not in bad}, records.NONFINITE: bad}
        append_line(self.metrics_path, json.dumps(record, sort_keys=True, allow_nan=False))

    def write_status(self, **fields: Any) -> None:
        atomic_write_json(self.status_path, dict(fields, updated_at=time.time()))

    def write_config(self, config: Config) -> None:
        atomic_write_json(self.config_path, config.to_dict())

    def rename(self, new_name: str) -> "Run":
        if self.is_live():
            raise RuntimeError(f"run {self.name} is training; stop it before renaming")
        check_run_name(new_name)
        target = self.path.with_name(new_name)
        if target.exists():
            raise FileExistsError(f"a run named {new_name} already exists")
        self.path.rename(target)
        return Run(target)

    def delete(self) -> None:
        if self.is_live():
            raise RuntimeError(f"run {self.name} is training; stop it before deleting")
        shutil.rmtree(self.path)


def checkpoint_step(path: Path) -> int:
    """The step a ckpt_NNNNNNNN.json names (ValueError for another name)."""
    match = _CKPT.match(path.name)
    if not match:
        raise ValueError(f"{path.name} is not a checkpoint name (ckpt_NNNNNNNN.json)")
    return int(match.group(1))


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Runs under root (default runs_root()), newest first."""
    base = Path(root) if root else runs_root()
    if not base.is_dir():
        return []
    runs = [Run(p) for p in base.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.config_path.stat().st_mtime, reverse=True)


def check_run_name(name: str) -> str:
    """``name`` when it can name a run directory, else ValueError saying what a name may hold."""
    if not _NAME.fullmatch(name) or not name.strip("."):
        raise ValueError(f"run name {name!r}: a run name may use letters, digits, '.', '_' and '-' "
                         "(1 to 80 characters, not only dots)")
    return name


def new_run_dir(config: Config, root: str | Path | None = None, name: str | None = None) -> Path:
    """Create and return a fresh run directory: ``name`` (FileExistsError when a run has it), else a
    timestamped one like 20261122-154501-dcgan-64px (-2, -3, … when taken). The directory is created
    atomically, so two runs started at the same instant never share one."""
    base = Path(root) if root else runs_root()
    base.mkdir(parents=True, exist_ok=True)
    if name is not None:
        path = base / check_run_name(name)
        try:
            path.mkdir()
        except FileExistsError:
            raise FileExistsError(f"a run named {name} already exists: choose another name") from None
        return path
    stem = time.strftime("%Y%m%d-%H%M%S") + f"-{config.model.name}-{config.data.resolution}px"
    path, n = base / stem, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = base / f"{stem}-{n}"
