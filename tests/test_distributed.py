"""The same training loop under torchrun (2 CPU processes, gloo): rank 0 alone writes the run."""

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.runs import Run
from engine.train import Trainer

ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_write_one_run_that_one_process_resumes(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "engine", "train", "--dataset", "builtin:faces:128", "--resolution", "32",
               "--batch-size", "16", "--max-steps", "8", "--run-dir", str(run_dir), "--device", "cpu",
               "--no-progress", "--set", "model.options.ngf=8", "--set", "model.options.ndf=8",
               "--set", "train.log_every=4", "--set", "train.checkpoint_every=4"]
    done = subprocess.run(command, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    run = Run(run_dir)
    assert run.status()["state"] == "finished"
    assert [r["step"] for r in run.metrics() if r["kind"] == "train"] == [4, 8]
    assert [p.name for p in run.checkpoints()] == ["ckpt_00000004.json", "ckpt_00000008.json"]
    assert json.loads(run.latest_checkpoint().read_text())["world_size"] == 2

    config = run.config()
    config.train.max_steps = 10
    resumed = Trainer(config, run_dir, resume=True)
    assert resumed.step == 8 and resumed.train() == "finished" and resumed.step == 10


def _torchrun(args: list[str], nproc: int = 2) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "engine", "train", "--no-progress", *args]
    done = subprocess.run(command, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def _weights(run_dir: Path) -> dict:
    from engine.base.checkpoint import load_checkpoint

    _, tensors = load_checkpoint(Run(run_dir).latest_checkpoint())
    return {k: v for k, v in tensors.items() if k.split(".")[0] in ("G", "D", "G_ema")}


def test_two_processes_train_like_one_process_with_the_same_global_batch(tmp_path):
    """Same global batch (data, latents, augmentation) ⇒ same weights up to float reduction order
    (tolerance 1e-4 after 6 Adam steps; BatchNorm off, as PyTorch's SyncBatchNorm is CUDA-only). The
    40 images make the 6 batches of 16 cross two epoch boundaries, where each rank loads its next shard."""
    from tests.conftest import tiny_config

    config = tiny_config(max_steps=6, dataset="builtin:faces:40", checkpoint_every=3, log_every=3,
                         memory_format="contiguous")  # as the torchrun ranks train
    config.model.options = {"ngf": 8, "ndf": 8, "g_batchnorm": False, "d_batchnorm": False}
    config.data.diffaugment, config.data.rotate_degrees = "color,translation,cutout", 5.0
    config_path = tmp_path / "config.json"
    config_path.write_text(config.to_json())

    single = Trainer(config, tmp_path / "one")
    single.train()
    _torchrun(["--config", str(config_path), "--run-dir", str(tmp_path / "two")])
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert one.keys() == two.keys()
    worst = max((one[k] - two[k]).abs().max().item() for k in one)
    assert worst < 1e-4, worst
    losses = [[r["loss_d"] for r in Run(d).metrics() if r["kind"] == "train"]
              for d in (tmp_path / "one", tmp_path / "two")]
    assert len(losses[0]) == 2 and max(abs(a - b) for a, b in zip(*losses)) < 1e-4

    # Stop the 2-process run half way and resume it with 1 process: it continues the same run.
    config.train.max_steps = 3
    config_path.write_text(config.to_json())
    _torchrun(["--config", str(config_path), "--run-dir", str(tmp_path / "half")])
    resumed_config = Run(tmp_path / "half").config()
    resumed_config.train.max_steps = 6
    Trainer(resumed_config, tmp_path / "half", resume=True).train()
    half = _weights(tmp_path / "half")
    worst = max((one[k] - half[k]).abs().max().item() for k in one)
    assert worst < 1e-4, worst


def test_under_torchrun_a_divergence_on_one_rank_rolls_both_back_together(tmp_path):
    """NaN written into rank 0's D only: DDP spreads it, both ranks see it at the same log step and
    roll back to the same checkpoint, and the run finishes (no rank waits for another forever)."""
    script = tmp_path / "diverge.py"
    script.write_text(f"""
import math, sys
sys.path.insert(0, {str(ROOT)!r})
from engine.train import Trainer
from tests.conftest import tiny_config

config = tiny_config(max_steps=20, log_every=2, checkpoint_every=10, dataset="builtin:faces:64")
config.train.on_divergence = "rollback"
trainer = Trainer(config, sys.argv[1])
poisoned = []

def on_log(record):
    if record["step"] == 12 and not poisoned and trainer.dist.rank == 0:
        poisoned.append(True)
        next(trainer.D.parameters()).data.fill_(math.nan)

print(trainer.dist.rank, trainer.train(on_log=on_log), trainer.step)
""")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
               str(tmp_path / "run")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(done.stdout.split("\n")[:2]) == ["0 finished 20", "1 finished 20"]
    run = Run(tmp_path / "run")
    assert [(r["event"], r["step"], r["diverged_at"]) for r in run.metrics() if r["kind"] == "event"] == [
        ("rollback", 10, 14)]
    assert run.config().optim.lr_d == 1e-4


def test_under_torchrun_a_rank_that_fails_ends_the_launch_instead_of_hanging_it(tmp_path):
    """Rank 1 raises mid-run: it must not wait at exit for rank 0 (which sits in a collective it never joins),
    so torchrun sees the failure and ends rank 0 too. With a barrier at every exit this hung past 300 s."""
    script = tmp_path / "fail.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from engine.train import Trainer
from tests.conftest import tiny_config

config = tiny_config(max_steps=200, log_every=2, dataset="builtin:faces:64")
trainer = Trainer(config, sys.argv[1])

def on_log(record):
    if record["step"] == 4 and trainer.dist.rank == 1:
        raise RuntimeError("rank 1 fails on purpose")

trainer.train(on_log=on_log)
""")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
               str(tmp_path / "run")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "rank 1 fails on purpose" in done.stderr
    assert Run(tmp_path / "run").status()["state"] == "failed"
