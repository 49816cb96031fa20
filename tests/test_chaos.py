"""kill -9 a worker in the middle of writing a checkpoint, then resume it with the CLI.

The killed worker is the real CLI in a subprocess whose checkpoint writer SIGKILLs the process at
the second checkpoint: halfway through the tensors' temp file, after the tensors are renamed into
place but before the JSON commit mark, or halfway through the JSON's temp file."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.base.checkpoint import load_checkpoint
from engine.runs import Run
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
EVERY = 4  # checkpoint interval in steps; the kill comes at the second checkpoint
KILL_STEP, MAX_STEPS = 2 * EVERY, 4 * EVERY

KILLER = '''
import json, os, signal, sys
from pathlib import Path

import engine.base.checkpoint as ckpt
from engine.base.files import atomic_write
from engine.cli import main
from safetensors.torch import save

moment, target = sys.argv[1], sys.argv[2]
write_tensors, write_json = ckpt.save_file, ckpt.atomic_write_json


def half_then_die(tmp, data):
    with open(tmp, "wb") as handle:
        handle.write(data[:len(data) // 2])
        handle.flush()
        os.fsync(handle.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def save_file(tensors, filename, metadata=None):
    if moment == "tensors" and target in Path(filename).name:
        half_then_die(filename, save(tensors, metadata))
    write_tensors(tensors, filename, metadata=metadata)


def atomic_write_json(path, obj):
    if Path(path).stem == target and moment == "commit":
        os.kill(os.getpid(), signal.SIGKILL)
    if Path(path).stem == target and moment == "json":
        atomic_write(path, lambda tmp: half_then_die(tmp, json.dumps(obj).encode()))
    write_json(path, obj)


ckpt.save_file, ckpt.atomic_write_json = save_file, atomic_write_json
sys.exit(main(sys.argv[3:]))
'''


def _python(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_WAIT_POLICY="PASSIVE")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _leftovers(run: Run) -> list[str]:
    """Temp files anywhere in the run, and checkpoint tensors without their JSON."""
    temps = list(run.path.rglob(".*.tmp"))
    orphans = [p for p in run.checkpoints_dir.glob("*.safetensors") if not p.with_suffix(".json").exists()]
    return sorted(str(p.relative_to(run.path)) for p in temps + orphans)


def _kill_state(run: Run) -> dict[str, bool]:
    """What the kill left of the second checkpoint."""
    names = os.listdir(run.checkpoints_dir)
    stem = f"ckpt_{KILL_STEP:08d}"
    return {"tensors_tmp": any(n.startswith(f".{stem}.safetensors.") for n in names),
            "tensors": f"{stem}.safetensors" in names,
            "json_tmp": any(n.startswith(f".{stem}.json.") for n in names),
            "json": f"{stem}.json" in names}


EXPECTED = {
    "tensors": {"tensors_tmp": True, "tensors": False, "json_tmp": False, "json": False},
    "commit": {"tensors_tmp": False, "tensors": True, "json_tmp": False, "json": False},
    "json": {"tensors_tmp": False, "tensors": True, "json_tmp": True, "json": False},
}


@pytest.mark.parametrize("moment", sorted(EXPECTED))
def test_kill_9_while_writing_a_checkpoint_resumes_from_the_last_committed_one(tmp_path, moment):
    config = tiny_config(max_steps=3 * EVERY, dataset="builtin:faces:64", batch_size=8, log_every=1,
                         checkpoint_every=EVERY, grid_every=EVERY, memory_format="contiguous")
    config.metrics.live_samples = 0
    config_path = tmp_path / "config.json"
    config_path.write_text(config.to_json())
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER)
    run = Run(tmp_path / "run")

    killed = _python(str(killer), moment, f"ckpt_{KILL_STEP:08d}", "train", "--config", str(config_path),
                     "--run-dir", str(run.path), "--no-progress")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _kill_state(run) == EXPECTED[moment]
    assert [load_checkpoint(p)[0]["step"] for p in run.checkpoints()] == [EVERY]
    before = run.metrics()

    # another interval, so the resumed run never rewrites the killed checkpoint: only clean-up removes its files
    resumed = _python("-m", "engine", "train", "--resume", "--run-dir", str(run.path), "--max-steps",
                      str(MAX_STEPS), "--set", f"train.checkpoint_every={EVERY + 1}", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    new = [r for r in run.metrics() if r not in before and r["kind"] == "train"]
    assert new[0]["step"] == EVERY + 1, "the resume did not continue from the first checkpoint"
    assert _leftovers(run) == []
    assert run.status()["state"] == "finished"
    checkpoints = run.checkpoints()
    assert load_checkpoint(checkpoints[-1])[0]["step"] == MAX_STEPS
    for path in checkpoints:
        _, tensors = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()), path
    steps = [r["step"] for r in run.metrics() if r["kind"] == "train"]
    assert steps == list(range(1, MAX_STEPS + 1)), "records after the resumed checkpoint were not dropped"
