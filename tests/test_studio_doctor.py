"""AppTest tests of the training doctor on the Train page: findings beside the curves with their evidence and
suggestions, Apply and resume through the worker's resume path, and no traceback whatever findings.json holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import engine
from engine.base import findings
from engine.base.findings import Finding, Suggestion
from engine.train import Trainer
from studio import doctor_panel
from tests.conftest import tiny_config

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "runs"
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(root))
    monkeypatch.delenv("GAN_STUDIO_READONLY", raising=False)
    return root


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[engine.Config, Path, bool]]:
    """start_training calls, recorded instead of launching a worker."""
    calls: list[tuple[engine.Config, Path, bool]] = []
    monkeypatch.setattr(engine, "start_training",
                        lambda config, run_dir, resume=False, **_: calls.append((config, Path(run_dir), resume)) or 0)
    return calls


def overpowered_run(root: Path) -> engine.Run:
    """A finished tiny run whose D learnt 20× too fast: the doctor found it overpowering G."""
    config = tiny_config(max_steps=60, grid_every=30, checkpoint_every=60, memory_format="contiguous")
    config.optim.lr_d *= 20
    config.metrics.live_samples = 0
    Trainer(config, root / "overpowered").train()
    return engine.Run(root / "overpowered")


def open_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)


def test_a_finding_shows_beside_the_curves_and_apply_resumes_with_the_change(runs_root: Path, started: list) -> None:
    run = overpowered_run(runs_root)
    (finding,) = run.findings()
    at = open_app()
    shown = texts(at)
    assert "**Training doctor**" in shown and "The discriminator is overpowering the generator" in shown
    assert "D(x) (window mean) **" in shown and "`optim.lr_d` → `0.001`" in shown
    assert "monitor-losses" in {c.key for c in at.get("plotly_chart")}
    lr_d = next(i for i, s in enumerate(finding.suggestions) if s.key == "optim.lr_d")
    at.button(key=f"doctor-apply:{run.name}:{findings.D_OVERPOWERING}:{lr_d}").click().run()
    assert not at.error, [e.value for e in at.error]
    ((config, run_dir, resume),) = started
    assert (run_dir, resume, config.optim.lr_d) == (run.path, True, 0.001)
    assert config.train.max_steps == 0 and config.train.max_seconds > run.status()["train_seconds"]  # more time
    assert config.optim.lr_g == run.config().optim.lr_g  # only the key it names changes


def write_findings(run: engine.Run, *found: Finding) -> None:
    run.findings_path.write_text(json.dumps(findings.findings_to_json(list(found), 10)))


def fake_run(root: Path, state: str, pid: int | None = None) -> engine.Run:
    run = engine.Run(root / "made-up")
    run.path.mkdir(parents=True)
    run.write_config(tiny_config())
    run.write_status(state=state, pid=pid, step=10, images=160, progress=None, train_seconds=5.0)
    run.append_metrics({"kind": "train", "step": 10, "images": 160, "time": 5.0, "loss_g": 1.0, "loss_d": 1.0,
                        "d_real": 0.6, "d_fake": 0.4})
    run.checkpoints_dir.mkdir()
    (run.checkpoints_dir / "ckpt_00000010.json").write_text("{}")
    return run


COLLAPSE = Finding(findings.MODE_COLLAPSE, "warning", "Mode collapse: the generator repeats a few images", "Twins.",
                   4, 10, {"grid diversity (× training images')": 0.4},
                   (Suggestion("optim.n_critic", 2, "keep up"),
                    Suggestion("model.options.latent_dim", 64, "more room", safe=False)))
RESOLVED = Finding(findings.OSCILLATION, "warning", "The losses are oscillating", "Swings.", 2, 6, {}, (), 8)


def test_unsafe_changes_have_no_button_resolved_findings_fold_and_bad_values_are_explained(
        runs_root: Path, started: list) -> None:
    run = fake_run(runs_root, "stopped")
    bad = Finding(findings.DIVERGING, "critical", "Training is diverging", "Growing.", 8, 10, {},
                  (Suggestion("optim.lr_d", 5.0, "too big to be valid"),))
    write_findings(run, COLLAPSE, RESOLVED, bad)
    at = open_app()
    shown = texts(at)
    assert shown.index("Training is diverging") < shown.index("Mode collapse")  # the most severe first
    assert "more room *(needs a new run)*" in shown
    keys = {b.key for b in at.button}
    assert f"doctor-apply:made-up:{findings.MODE_COLLAPSE}:0" in keys
    assert f"doctor-apply:made-up:{findings.MODE_COLLAPSE}:1" not in keys
    assert any(e.label.startswith("Resolved (1)") for e in at.expander)
    assert "The losses are oscillating: steps 2–8" in shown
    at.button(key=f"doctor-apply:made-up:{findings.DIVERGING}:0").click().run()
    assert not at.exception and started == []
    assert any("Could not apply the change and resume: optim.lr_d must be" in e.value for e in at.error)


def test_apply_on_a_training_run_stops_it_first_and_says_so_when_it_takes_long(
        runs_root: Path, started: list, sleeper: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor_panel, "STOP_WAIT_SECONDS", 1.0)
    run = fake_run(runs_root, "running", pid=sleeper)
    write_findings(run, COLLAPSE)
    at = open_app()
    at.button(key=f"doctor-apply:made-up:{findings.MODE_COLLAPSE}:0").click().run()
    assert run.stop_requested() and started == []
    assert any("still stopping" in w.value for w in at.warning)


def test_a_damaged_findings_file_shows_no_panel_and_no_error(runs_root: Path) -> None:
    run = fake_run(runs_root, "stopped")
    run.findings_path.write_text("{not json")
    at = open_app()
    assert not at.error and "Training doctor" not in texts(at)
