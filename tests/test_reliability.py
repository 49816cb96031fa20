"""Training never silently loses good work: divergence, one writer per run, truthful resume,
one curve after a resume, tidy and shareable run directories."""

import json
import math
import os
import pathlib
import signal
import stat
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

from engine import ConfigError, RunConflictError, start_training
from engine.base import checkpoint
from engine.base.checkpoint import load_checkpoint
from engine.base.files import atomic_write_json
from engine.runs import Run, RunLock, RunLockedError, lock_holder
from engine.train import Trainer
from engine.train.guard import DivergenceError
from tests.conftest import ROOT, tiny_config


def _poison(trainer: Trainer) -> None:
    """Make D's first weight NaN: what a learning rate that blows up does to the state."""
    next(trainer.D.parameters()).data.fill_(math.nan)


def _poison_at(trainer: Trainer, steps: set[int], once: bool = True):
    """An on_log hook poisoning D at these steps (the first time each is reached, when ``once``)."""
    pending = set(steps)

    def on_log(record: dict) -> None:
        if record["step"] in pending:
            _poison(trainer)
            if once:
                pending.discard(record["step"])
    return on_log


def _all_finite(run: Run) -> bool:
    paths = run.checkpoints() + ([run.checkpoints_dir / "best.json"] if (run.checkpoints_dir / "best.json").exists()
                                 else [])
    return all(torch.isfinite(t).all() for path in paths for t in load_checkpoint(path)[1].values()
               if t.is_floating_point())


def _strict(line: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(line, parse_constant=refuse)


def test_divergence_stops_the_run_as_failed_and_keeps_the_last_finite_checkpoint(tmp_path):
    config = tiny_config(max_steps=40, log_every=5, checkpoint_every=5, keep_checkpoints=2)
    trainer = Trainer(config, tmp_path / "run")
    with pytest.raises(DivergenceError, match="diverged at step 15") as caught:
        trainer.train(on_log=_poison_at(trainer, {15}))
    run = Run(tmp_path / "run")
    assert [p.name for p in run.checkpoints()] == ["ckpt_00000005.json", "ckpt_00000010.json"]
    assert _all_finite(run)
    status = run.status()
    assert status["state"] == "failed" and "step 15" in status["error"] and "D tensors" in status["error"]
    assert "optim.lr_d" in str(caught.value) and "train.on_divergence=rollback" in str(caught.value)
    assert "step 10" in str(caught.value)  # where resume continues


def test_non_finite_losses_are_caught_at_the_next_log_step_before_any_checkpoint(tmp_path):
    config = tiny_config(max_steps=40, log_every=2, checkpoint_every=10)
    trainer = Trainer(config, tmp_path / "run")
    with pytest.raises(DivergenceError, match="became NaN or infinite .* up to step 14"):
        trainer.train(on_log=_poison_at(trainer, {12}))
    run = Run(tmp_path / "run")
    assert [p.name for p in run.checkpoints()] == ["ckpt_00000010.json"] and _all_finite(run)
    lines = run.metrics_path.read_text().splitlines()
    records = [_strict(line) for line in lines]  # strict JSON: no NaN written
    diverged = [r for r in records if r.get("nonfinite")]
    assert diverged and diverged[0]["step"] == 14 and "loss_d" in diverged[0]["nonfinite"]
    assert records[-1]["event"] == "divergence"


def test_rollback_restores_the_last_finite_checkpoint_with_lower_learning_rates(tmp_path):
    config = tiny_config(max_steps=30, log_every=2, checkpoint_every=10)
    config.train.on_divergence = "rollback"
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.train(on_log=_poison_at(trainer, {12})) == "finished"
    run = Run(tmp_path / "run")
    assert trainer.step == 30 and _all_finite(run)
    saved = run.config()
    assert saved.optim.lr_g == saved.optim.lr_d == pytest.approx(1e-4)
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(1e-4)
    events = [r for r in run.metrics() if r["kind"] == "event"]
    assert [(e["event"], e["step"], e["diverged_at"]) for e in events] == [("rollback", 10, 14)]
    steps = [r["step"] for r in run.metrics() if r["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 30  # one curve: the diverged records were dropped
    assert load_checkpoint(run.latest_checkpoint())[0]["rollbacks"] == 1


def test_rollbacks_stop_after_max_rollbacks(tmp_path):
    config = tiny_config(max_steps=60, log_every=2, checkpoint_every=4)
    config.train.on_divergence, config.train.max_rollbacks = "rollback", 2
    trainer = Trainer(config, tmp_path / "run")
    with pytest.raises(DivergenceError, match=r"after 2 rollback\(s\)"):
        trainer.train(on_log=_poison_at(trainer, {6}, once=False))
    run = Run(tmp_path / "run")
    assert run.status()["state"] == "failed" and _all_finite(run)
    assert [r["event"] for r in run.metrics() if r["kind"] == "event"] == ["rollback", "rollback", "divergence"]


def _hold_lock(run_dir) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from engine.runs.lock import RunLock
        RunLock.acquire({str(run_dir)!r})
        print("locked", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_writer_is_refused_naming_the_live_pid(tmp_path):
    run_dir = tmp_path / "run"
    holder = _hold_lock(run_dir)
    try:
        assert lock_holder(run_dir) == holder.pid
        with pytest.raises(RunLockedError, match=f"process {holder.pid}"):
            Trainer(tiny_config(max_steps=2), run_dir)
        with pytest.raises(RunConflictError, match=f"process {holder.pid}"):
            start_training(tiny_config(max_steps=2), run_dir)
        cli = subprocess.run([sys.executable, "-m", "engine", "train", "--dataset", "builtin:faces:64",
                              "--resolution", "32", "--max-steps", "2", "--run-dir", str(run_dir)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert cli.returncode == 2 and f"being trained by process {holder.pid}" in cli.stderr
        run = Run(run_dir)
        assert not any(p.exists() for p in (run.metrics_path, run.status_path, run.config_path))
    finally:
        holder.kill()
        holder.wait()
    assert lock_holder(run_dir) is None  # a killed holder leaves no lock behind
    assert Trainer(tiny_config(max_steps=2), run_dir).train() == "finished"


def test_an_idle_trainer_in_this_process_hands_its_lock_over(tmp_path):
    first = Trainer(tiny_config(max_steps=2), tmp_path / "run")
    second = Trainer(tiny_config(max_steps=2), tmp_path / "other")
    assert second.train() == "finished"
    taken = RunLock.acquire(tmp_path / "run")
    with pytest.raises(RunLockedError, match="another trainer in this process"):
        first.lock.check()
    taken.busy = True
    with pytest.raises(RunLockedError):
        first.train()
    taken.release()


def test_resume_applies_optimiser_overrides_and_records_them(tmp_path):
    Trainer(tiny_config(max_steps=10), tmp_path / "run").train()
    config = Run(tmp_path / "run").config()
    config.train.max_steps, config.optim.lr_d, config.optim.beta2 = 12, 1e-5, 0.99
    resumed = Trainer(config, tmp_path / "run", resume=True)
    assert resumed.opt_d.param_groups[0]["lr"] == 1e-5 and resumed.opt_d.param_groups[0]["betas"] == (0.5, 0.99)
    assert resumed.opt_g.param_groups[0]["lr"] == 2e-4
    assert Run(tmp_path / "run").config().optim.lr_d == 1e-5
    resumed.train()
    meta = load_checkpoint(Run(tmp_path / "run").latest_checkpoint())[0]
    assert meta["optimizer_groups"]["opt_D"][0]["lr"] == 1e-5


def test_config_json_is_strict_json():
    with pytest.raises(ValueError):
        atomic_write_json("/nonexistent-dir-never-written/x.json", {"lr": math.inf})


@pytest.mark.parametrize("change", ["model", "resolution", "options", "dataset", "seed"])
def test_resume_with_other_fixed_settings_is_refused_and_the_run_left_as_it_was(tmp_path, change):
    run = Run(tmp_path / "run")
    Trainer(tiny_config(max_steps=5), run.path).train()
    before = {p: p.read_bytes() for p in (run.status_path, run.config_path, run.metrics_path)}
    config = tiny_config(max_steps=10)
    if change == "model":
        config.model.name, config.model.options, config.loss.kind = "fastgan", {"ngf": 8, "ndf": 8}, "hinge"
    elif change == "resolution":
        config.data.resolution = 64
    elif change == "options":
        config.model.options["ngf"] = 16
    elif change == "dataset":
        config.data.spec = "builtin:faces:128"
    else:
        config.train.seed = 5
    with pytest.raises(ConfigError, match="cannot resume with other settings"):
        Trainer(config, run.path, resume=True)
    with pytest.raises(ConfigError, match="cannot resume with other settings"):
        start_training(config, run.path, resume=True)
    assert {p: p.read_bytes() for p in before} == before and run.status()["state"] == "finished"
    assert lock_holder(run.path) is None


def test_resume_drops_the_records_and_grids_after_its_checkpoint(tmp_path):
    run = Run(tmp_path / "run")
    Trainer(tiny_config(max_steps=8, log_every=1, checkpoint_every=5, grid_every=2), run.path).train()
    for path in (run.latest_checkpoint(), run.latest_checkpoint().with_suffix(".safetensors")):
        path.unlink()  # the worker died after step 8 was logged but before its checkpoint
    assert [s for s, _ in run.grids()][-1] == 8
    resumed = Trainer(tiny_config(max_steps=10, log_every=1, checkpoint_every=5, grid_every=2), run.path,
                      resume=True)
    assert resumed.step == 5
    assert max(r["step"] for r in run.metrics()) == 5 and [s for s, _ in run.grids()] == [0, 2, 4]
    resumed.train()
    steps = [r["step"] for r in run.metrics() if r["kind"] == "train"]
    assert steps == list(range(1, 11))


def test_leftovers_of_an_interrupted_write_are_removed_at_start(tmp_path):
    run = Run(tmp_path / "run")
    Trainer(tiny_config(max_steps=5, checkpoint_every=5), run.path).train()
    leftovers = [run.checkpoints_dir / ".ckpt_00000010.safetensors.x1y2.tmp", run.checkpoints_dir / ".ckpt_00000010.json.a.tmp",
                 run.checkpoints_dir / "ckpt_00000010.safetensors", run.path / ".status.json.q.tmp",
                 run.grids_dir / ".step_00000010.png.z.tmp"]
    for path in leftovers:
        path.write_bytes(b"partial")
    resumed = Trainer(tiny_config(max_steps=6, checkpoint_every=5), run.path, resume=True)
    assert resumed.step == 5 and not any(p.exists() for p in leftovers)
    assert run.latest_checkpoint().name == "ckpt_00000005.json"


def test_run_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        Trainer(tiny_config(max_steps=5, checkpoint_every=5), tmp_path / "run").train()
    finally:
        os.umask(previous)
    run = Run(tmp_path / "run")
    written = [run.config_path, run.status_path, run.metrics_path, run.latest_checkpoint(),
               run.latest_checkpoint().with_suffix(".safetensors"), run.grids()[0][1]]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {oct(0o644)}


def test_metrics_records_are_strict_json_with_non_finite_values_named(tmp_path):
    run = Run(tmp_path / "run")
    run.path.mkdir()
    run.append_metrics({"kind": "eval", "step": 1, "swd": math.nan, "fid": 3.5, "kid": -math.inf})
    line = run.metrics_path.read_text().strip()
    assert _strict(line) == {"kind": "eval", "step": 1, "fid": 3.5, "nonfinite": ["kid", "swd"]}


def test_two_start_presses_at_the_same_instant_launch_one_worker(tmp_path):
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def press(name: str) -> None:
        barrier.wait()
        try:
            outcomes.append(start_training(tiny_config(max_steps=2000), tmp_path / name))
        except RunConflictError as exc:
            outcomes.append(exc)

    presses = [threading.Thread(target=press, args=(name,)) for name in ("a", "b")]
    for thread in presses:
        thread.start()
    for thread in presses:
        thread.join()
    pids = [o for o in outcomes if isinstance(o, int)]
    try:
        assert len(pids) == 1 and "already training on cpu" in str(next(o for o in outcomes if o not in pids))
    finally:
        for pid in pids:
            os.killpg(pid, signal.SIGKILL)


class _Killed(BaseException):
    """Stands in for kill -9 at a chosen moment (nothing after it runs)."""


def test_a_kill_while_pruning_never_leaves_a_checkpoint_without_its_tensors(tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(max_steps=4, checkpoint_every=2, keep_checkpoints=1), tmp_path / "run")
    real = pathlib.Path.unlink

    def unlink(path: pathlib.Path, missing_ok: bool = False) -> None:
        real(path, missing_ok=missing_ok)
        if path.stem == "ckpt_00000002":
            raise _Killed  # right after the first of the pruned checkpoint's two files went

    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    with pytest.raises(_Killed):
        trainer.train()
    monkeypatch.setattr(pathlib.Path, "unlink", real)
    trainer.release()
    run = Run(tmp_path / "run")
    assert [load_checkpoint(p)[0]["step"] for p in run.checkpoints()] == [4]  # every listed checkpoint verifies
    assert [p.name for p in run.clean_leftovers()] == ["ckpt_00000002.safetensors"]


def test_a_kill_while_best_is_rewritten_leaves_the_previous_best_whole(tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(max_steps=2), tmp_path / "run")
    trainer.train()
    trainer._track_best({"swd": 2.0}, "swd")
    trainer.train_step()

    def killed(path, obj) -> None:
        raise _Killed  # the new best's tensors are written, its JSON is not

    monkeypatch.setattr(checkpoint, "atomic_write_json", killed)
    with pytest.raises(_Killed):
        trainer._track_best({"swd": 1.0}, "swd")
    monkeypatch.undo()
    trainer.release()
    best = Run(tmp_path / "run").checkpoints_dir / "best.json"
    assert load_checkpoint(best)[0]["best"]["value"] == 2.0
    assert [p.name for p in Run(tmp_path / "run").clean_leftovers()] == ["best_00000003.safetensors"]
    assert load_checkpoint(best)[0]["best"]["value"] == 2.0


def test_an_unknown_periodic_metric_is_refused_at_start(tmp_path):
    config = tiny_config()
    config.metrics.every_images, config.metrics.names = 160, ["swd", "fidd"]
    with pytest.raises(ConfigError, match="metrics.names: unknown metric 'fidd'"):
        Trainer(config, tmp_path / "run")
