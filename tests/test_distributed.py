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
    assert [r["step"] for r in run.metrics()] == [4, 8]
    assert [p.name for p in run.checkpoints()] == ["ckpt_00000004.json", "ckpt_00000008.json"]
    assert json.loads(run.latest_checkpoint().read_text())["world_size"] == 2

    config = run.config()
    config.train.max_steps = 10
    resumed = Trainer(config, run_dir, resume=True)
    assert resumed.step == 8 and resumed.train() == "finished" and resumed.step == 10
