"""The training doctor: each detector on made-up record sequences (sustained windows, no flapping, resolving),
the probe on images with known answers, the findings file, the CLI; then small CPU runs that fail on purpose
(lr_d × 20, a width-1 latent, 16 training images trained long, a WGAN critic without its penalty at lr 1e-2,
BCE at lr 5e-2, learning rates too small to move G under a periodic metric, DiffAugment on every image of a
tiny DCGAN, a learning rate raised 500-fold on resume) and show the finding, and a healthy
run that shows none."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import cli, load_dataset
from engine.base import findings, records
from engine.base.findings import Finding, Suggestion
from engine.config import Config, update_from_dotted
from engine.data.augment import BatchRandom, cutout, translation
from engine.doctor import DETECTORS, Doctor, diagnose
from engine.doctor.probe import Probe, patched
from engine.runs import Run
from engine.train import Trainer
from tests.conftest import ROOT, tiny_config

FACES = load_dataset("builtin:faces:96", 32).images


def train_line(step: int, d_real: float = 0.7, d_fake: float = 0.3, loss_g: float = 1.0,
               loss_d: float = 1.2) -> dict[str, object]:
    return {"kind": "train", "step": step, "images": step * 16, "time": step / 10, "loss_g": loss_g,
            "loss_d": loss_d, "d_real": d_real, "d_fake": d_fake}


def probe_line(step: int, **values: float) -> dict[str, object]:
    return {"kind": "probe", "step": step, "images": step * 16, "time": step / 10, **values}


def eval_line(step: int, swd: float) -> dict[str, object]:
    return {"kind": "eval", "live": True, "step": step, "images": step * 16, "time": step / 10, "swd_256": swd}


def kinds(doctor: Doctor, active: bool = True) -> list[str]:
    return [f.kind for f in doctor.findings if f.active == active]


def feed(doctor: Doctor, lines: list[dict[str, object]]) -> None:
    for line in lines:
        doctor.observe(line)


# ----------------------------------------------------------------- detectors on made-up records

def test_d_overpowering_needs_the_whole_window_and_resolves_only_after_as_long_without_it() -> None:
    doctor = Doctor(tiny_config())  # window 10
    healthy = [train_line(s) for s in range(1, 21)]
    won = [train_line(s, 0.999, 0.001, loss_g=7.0 + s / 100, loss_d=0.002) for s in range(21, 30)]
    feed(doctor, healthy + won)
    assert kinds(doctor) == []  # nine log intervals of a winning D are not yet a sustained window
    feed(doctor, [train_line(30, 0.999, 0.001, loss_g=7.4, loss_d=0.002)])
    (found,) = doctor.findings
    assert (found.kind, found.severity, found.first_step, found.step) == (findings.D_OVERPOWERING, "warning", 21, 30)
    assert found.evidence["D(x) (window mean)"] > 0.99 and found.evidence["D(G(z)) (window mean)"] < 0.01
    assert {s.key for s in found.suggestions} >= {"optim.lr_d", "loss.label_smoothing", "data.diffaugment"}
    feed(doctor, [train_line(s) for s in range(31, 40)])
    assert kinds(doctor) == [findings.D_OVERPOWERING]  # gone for less than a window: still open
    feed(doctor, [train_line(40), train_line(41, 0.999, 0.001, 7.0, 0.002)])
    (closed,) = doctor.findings  # closed after a whole window without it; one bad interval does not reopen it
    assert not closed.active and closed.resolved_step == 40 and closed.first_step == 21


def test_d_overpowering_follows_the_loss_it_reads() -> None:
    smoothing = tiny_config()
    smoothing.loss.label_smoothing = 0.2  # D(x) cannot pass 0.8
    doctor = Doctor(smoothing)
    feed(doctor, [train_line(s, 0.79, 0.01, loss_g=4.0, loss_d=0.5) for s in range(1, 11)])
    assert kinds(doctor) == [findings.D_OVERPOWERING]
    assert "loss.label_smoothing" not in {s.key for s in doctor.findings[0].suggestions}
    hinge = tiny_config()
    hinge.loss.kind = "hinge"
    doctor = Doctor(hinge)
    feed(doctor, [train_line(s, 3.0, -3.0, loss_g=3.0 + s / 10, loss_d=0.0) for s in range(1, 11)])
    assert kinds(doctor) == [findings.D_OVERPOWERING]
    wgan = tiny_config()
    wgan.loss.kind = "wgan-gp"
    doctor = Doctor(wgan)
    feed(doctor, [train_line(s, 30.0, -30.0, loss_g=30.0, loss_d=-60.0) for s in range(1, 21)])
    assert kinds(doctor) == []
    autoencoder = Doctor(tiny_config(), records.AUTOENCODER)
    feed(autoencoder, [train_line(s, 0.999, 0.001, loss_g=7.0, loss_d=0.002) for s in range(1, 21)])
    assert kinds(autoencoder) == []


# D(x) − D(G(z)) over the first 20 log intervals of quick-faces-32 with a width-1 latent: D learning fast, not
# an oscillation (the range is 0.7, the steps between intervals small).
STEEP_START = [-0.02, 0.1, 0.09, 0.23, 0.3, 0.42, 0.53, 0.6, 0.63, 0.63, 0.68, 0.65, 0.61, 0.58, 0.64, 0.63, 0.64,
               0.67, 0.55, 0.53]


def test_oscillation_is_a_wide_swing_back_and_forth_not_noise_nor_a_steep_start() -> None:
    rng = np.random.default_rng(0)
    doctor = Doctor(tiny_config())
    feed(doctor, [train_line(s, 0.5 + gap / 2, 0.5 - gap / 2) for s, gap in enumerate(STEEP_START, 1)])
    feed(doctor, [train_line(s, 0.7 + rng.normal(0, 0.03), 0.3 + rng.normal(0, 0.03)) for s in range(21, 41)])
    assert kinds(doctor) == []
    feed(doctor, [train_line(s, 0.95 if s % 2 else 0.3, 0.05 if s % 2 else 0.6) for s in range(41, 51)])
    (found,) = doctor.findings
    assert found.kind == findings.OSCILLATION and found.evidence["changes of direction"] >= 4
    assert {s.key for s in found.suggestions} == {"optim.lr_d", "optim.lr_g"}


def test_a_loss_growing_without_bound_is_critical_and_a_bce_loss_is_left_to_the_d_detector() -> None:
    hinge = tiny_config()
    hinge.loss.kind = "hinge"
    doctor = Doctor(hinge)
    steady = [train_line(s, 1.0, -1.0, loss_g=1.0 + 0.1 * (s % 3), loss_d=1.0) for s in range(1, 31)]
    growing = [train_line(s, 1.0, -1.0, loss_g=2.0 ** (s - 30), loss_d=1.0) for s in range(31, 41)]
    feed(doctor, steady)
    assert kinds(doctor) == []
    feed(doctor, growing)
    (found,) = doctor.findings
    assert found.kind == findings.DIVERGING and found.severity == "critical"
    assert "train.on_divergence" in {s.key for s in found.suggestions}
    bce = Doctor(tiny_config())
    feed(bce, [dict(line, d_real=0.7, d_fake=0.3) for line in steady + growing])
    assert findings.DIVERGING not in kinds(bce)
    wgan = tiny_config()
    wgan.loss.kind = "wgan-gp"
    critic = Doctor(wgan)  # a critic's loss grows from 0 while it learns, then settles
    feed(critic, [train_line(s, loss_g=min(s, 20) / 2, loss_d=-min(s, 20)) for s in range(1, 61)])
    assert kinds(critic) == []


def test_a_metric_rising_from_its_best_and_one_that_stopped_improving() -> None:
    falling = [eval_line(10 * i, 100.0 / i) for i in range(1, 12)]
    doctor = Doctor(tiny_config())
    feed(doctor, falling)
    assert kinds(doctor) == []
    feed(doctor, [eval_line(110 + 10 * i, 30.0) for i in range(1, 4)])
    assert kinds(doctor) == []  # three worse evaluations are not yet a trend of the running median
    feed(doctor, [eval_line(140 + 10 * i, 30.0) for i in range(1, 4)])
    (found,) = doctor.findings
    assert found.kind == findings.METRIC_RISING and found.evidence["metric"] == "swd_256"
    assert found.title == "SWD-256 is getting worse"

    plateau = Doctor(tiny_config())
    noisy = [10.0, 10.4, 9.8, 10.1, 10.3, 9.9, 10.2, 10.0, 10.1, 9.95]
    feed(plateau, falling[:8] + [eval_line(80 + 10 * i, v) for i, v in enumerate(noisy[:6], 1)])
    assert kinds(plateau) == []  # flat for fewer evaluations than a plateau takes
    feed(plateau, [eval_line(140 + 10 * i, v) for i, v in enumerate(noisy + noisy, 1)])
    (flat,) = plateau.findings
    assert flat.kind == findings.METRIC_PLATEAU and flat.severity == "info" and flat.active

    rng = np.random.default_rng(0)
    flat_noise = Doctor(tiny_config())  # a noisy live metric that neither improves nor worsens: one open plateau
    feed(flat_noise, [eval_line(10 * i, 50.0 + rng.normal(0, 3)) for i in range(1, 1001)])
    assert [f.kind for f in flat_noise.findings] == [findings.METRIC_PLATEAU]


def test_mode_collapse_is_twins_in_a_varied_grid_or_a_fall_from_the_peak() -> None:
    early = [probe_line(20 * i, diversity=0.02 * i, distinct=0.02 * i) for i in range(1, 6)]  # blurry start
    doctor = Doctor(tiny_config())
    feed(doctor, early)
    assert kinds(doctor) == []
    feed(doctor, [probe_line(100 + 20 * i, diversity=0.4, distinct=0.02) for i in range(1, 4)])
    assert kinds(doctor) == [findings.MODE_COLLAPSE]

    fall = Doctor(tiny_config())
    feed(fall, [probe_line(20 * i, diversity=0.1 * i, distinct=0.1 * i) for i in range(1, 8)])
    feed(fall, [probe_line(140 + 20 * i, diversity=0.25, distinct=0.3) for i in range(1, 3)])
    assert kinds(fall) == []
    feed(fall, [probe_line(200, diversity=0.25, distinct=0.3)])
    (found,) = fall.findings
    assert found.kind == findings.MODE_COLLAPSE
    assert found.evidence["highest grid diversity so far"] == pytest.approx(0.7)


def test_memorisation_and_a_leak_need_several_grids_and_a_leak_needs_translation_or_cutout() -> None:
    doctor = Doctor(tiny_config())
    feed(doctor, [probe_line(20 * i, diversity=0.6, nearest=0.3, patched=0.6) for i in range(1, 3)])
    assert kinds(doctor) == []
    feed(doctor, [probe_line(60, diversity=0.6, nearest=0.3, patched=0.6)])
    assert kinds(doctor) == [findings.MEMORISATION]  # no DiffAugment: grey patches are no leak
    blurry = Doctor(tiny_config())
    feed(blurry, [probe_line(20 * i, diversity=0.05, nearest=0.3) for i in range(1, 5)])
    assert kinds(blurry) == []  # a blurry grid lies close to every image
    augmented = tiny_config()
    augmented.data.diffaugment, augmented.data.augment_p = "color,cutout", 0.9
    leak = Doctor(augmented)
    feed(leak, [probe_line(20 * i, diversity=0.6, nearest=0.9, patched=0.5) for i in range(1, 4)])
    (found,) = leak.findings
    assert found.kind == findings.AUGMENTATION_LEAK
    assert {(s.key, s.value) for s in found.suggestions} == {("data.augment_p", 0.5), ("data.diffaugment", "color")}


def test_every_safe_suggestion_is_a_valid_change_and_model_changes_are_not_safe() -> None:
    config = tiny_config()
    config.model.options["latent_dim"] = 1
    doctor = Doctor(config)
    feed(doctor, [train_line(s, 0.999, 0.001, 8.0, 0.001) for s in range(1, 11)]
         + [probe_line(20 * i, diversity=0.5, distinct=0.01, nearest=0.2) for i in range(1, 4)]
         + [eval_line(10 * i, v) for i, v in enumerate([50, 45, 40, 36, 33, 31, 30, 30], 1)]
         + [eval_line(90 + i, 60.0) for i in range(6)])
    found = doctor.findings
    assert {f.kind for f in found} == {findings.D_OVERPOWERING, findings.MODE_COLLAPSE, findings.MEMORISATION,
                                       findings.METRIC_RISING}
    unsafe = {s.key for f in found for s in f.suggestions if not s.safe}
    assert unsafe == {"model.options.latent_dim", "data.spec"}
    for suggestion in (s for f in found for s in f.suggestions if s.safe):
        changed = Config.from_dict(config.to_dict())
        update_from_dotted(changed, suggestion.key, suggestion.value)
        changed.validate()


# ----------------------------------------------------------------- findings file, replay, CLI

def test_every_kind_of_finding_has_its_detector() -> None:
    assert sorted(kind for detectors in DETECTORS.values() for kind, _ in detectors) == sorted(findings.KINDS)


def test_findings_round_trip_and_a_damaged_file_reads_as_none(tmp_path: Path) -> None:
    finding = Finding(findings.MEMORISATION, "warning", "t", "e", 10, 30, {"x": 0.25, "metric": "swd_256"},
                      (Suggestion("data.diffaugment", "color", "why"), Suggestion("data.spec", None, "w", False)), 40)
    assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding
    assert finding.safe and not finding.active
    run = Run(tmp_path)
    assert run.findings() == []
    run.findings_path.write_text(json.dumps(findings.findings_to_json([finding], 40)))
    assert run.findings() == [finding]
    run.findings_path.write_text('{"findings": [{"no": "kind"}, 3]')
    assert run.findings() == []


def test_observing_announces_a_finding_once_and_replaying_stays_quiet(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    lines = [train_line(s, 0.999, 0.001, 8.0, 0.001) for s in range(1, 16)]
    with caplog.at_level(logging.WARNING, logger="engine.doctor.doctor"):
        doctor = Doctor(tiny_config(), path=tmp_path / "findings.json")
        feed(doctor, lines)
        assert [r.message.split(" (since")[0] for r in caplog.records] == [
            "The discriminator is overpowering the generator"]
        caplog.clear()
        again = Doctor(tiny_config(), path=tmp_path / "again.json")
        assert [f.to_dict() for f in again.replay(lines)] == [f.to_dict() for f in doctor.findings]
        assert caplog.records == []
    assert json.loads((tmp_path / "findings.json").read_text()) == json.loads((tmp_path / "again.json").read_text())
    nan = dict(train_line(16, 0.999, 0.001, 8.0, 0.001), loss_g=float("nan"))
    doctor.observe(nan)  # a non-finite value (the trainer's guard stops the run) is not written as evidence
    assert json.loads((tmp_path / "findings.json").read_text())["step"] == 16


# ----------------------------------------------------------------- the probe on images with known answers

def test_the_probe_sees_copies_mirror_copies_twins_and_novel_images() -> None:
    train, novel = FACES[:16], FACES[16:80]
    probe = Probe(train, nearest_max_images=100, flip=True)
    noise = np.random.default_rng(0).normal(0, 12, (64, 32, 32, 3))
    copies = np.clip(train[np.arange(64) % 16].astype(np.float64) + noise, 0, 255).astype(np.uint8)
    assert probe(copies)[records.NEAREST] < 0.3
    assert probe(np.ascontiguousarray(copies[:, :, ::-1]))[records.NEAREST] < 0.3  # trained with flips
    assert probe(novel)[records.NEAREST] > 0.7
    assert Probe(train, nearest_max_images=15)(novel).keys() == {records.DIVERSITY, records.PATCHED}

    big = Probe(FACES, nearest_max_images=0)
    varied = big(FACES[:24])
    assert 0.8 < varied[records.DIVERSITY] < 1.2 and varied[records.DISTINCT] > 0.6
    twins = big(np.repeat(FACES[:6], 4, axis=0))
    assert twins[records.DISTINCT] < 0.01 and twins[records.DIVERSITY] > 0.6


def test_the_probe_sees_diffaugments_fill_but_not_a_grey_untrained_grid() -> None:
    images = torch.from_numpy(FACES[:64]).permute(0, 3, 1, 2).float() / 127.5 - 1
    noise = torch.Generator().manual_seed(0)
    for transform in (cutout, translation):
        shown = (transform(images, BatchRandom(torch.device("cpu"), 0)).permute(0, 2, 3, 1) + 1) * 127.5
        painted = shown.round().clamp(0, 255).byte().numpy()
        assert patched(painted).mean() > 0.9, transform.__name__
        # a generator paints the fill with pixel noise (here N(0, 6) levels per channel): still the fill
        noisy = (shown + 6 * torch.randn(shown.shape, generator=noise)).round().clamp(0, 255).byte().numpy()
        assert patched(noisy).mean() > 0.9, transform.__name__
    assert patched(FACES).mean() < 0.05
    grey = np.full((8, 32, 32, 3), 128, np.uint8)
    assert not patched(grey).any()


# ----------------------------------------------------------------- small CPU runs that fail on purpose

def _trained(tmp_path: Path, config: Config) -> Run:
    config.metrics.live_samples = 0
    config.train.checkpoint_every, config.train.memory_format = 10_000, "contiguous"  # the same numbers everywhere
    Trainer(config, tmp_path / "run").train()
    return Run(tmp_path / "run")


def test_lr_d_times_20_overpowers_g_and_the_cli_warns_once_and_diagnoses_it_after_the_fact(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tiny_config(max_steps=80, grid_every=40, checkpoint_every=10_000, memory_format="contiguous")
    config.optim.lr_d *= 20
    config.metrics.live_samples = 0
    (tmp_path / "config.json").write_text(config.to_json())
    done = subprocess.run([sys.executable, "-m", "engine", "train", "--config", str(tmp_path / "config.json"),
                           "--run-dir", str(tmp_path / "run"), "--no-progress"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if line.startswith("WARNING: ")]
    assert len(warned) == 1 and warned[0].startswith("WARNING: The discriminator is overpowering the generator")
    assert "optim.lr_d=0.001" in warned[0]
    run = Run(tmp_path / "run")
    assert [f.kind for f in run.findings() if f.active] == [findings.D_OVERPOWERING]
    assert [f.to_dict() for f in diagnose(run)] == [f.to_dict() for f in run.findings()]
    assert cli.main(["doctor", "--run", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "[warning] The discriminator is overpowering the generator" in out and "--set optim.lr_d=0.001" in out


def test_a_width_1_latent_collapses_onto_few_images(tmp_path: Path) -> None:
    config = tiny_config(max_steps=260, grid_every=20)
    config.model.options["latent_dim"] = 1
    run = _trained(tmp_path, config)
    assert findings.MODE_COLLAPSE in [f.kind for f in run.findings() if f.active]
    probes = records.probe_records(run.metrics())
    assert len(probes) == 14 and probes[-1].values[records.DISTINCT] < 0.1


def test_16_training_images_trained_long_are_memorised(tmp_path: Path) -> None:
    # Without flips the generator has 16 images to copy, not 32: `nearest` falls from about 0.9 to 0.3-0.4 in
    # 1,500 steps, and the finding opens at step 600-1,200 on seeds 0-4.
    config = tiny_config(max_steps=1500, dataset="builtin:faces:16", grid_every=50, log_every=25)
    config.model.name, config.model.options = "basic", {"hidden": 256, "d_dropout": 0.0}
    config.optim.lr_g = config.optim.lr_d = 5e-4
    config.data.flip = False
    run = _trained(tmp_path, config)
    (found,) = [f for f in run.findings() if f.kind == findings.MEMORISATION]
    assert found.active and found.evidence["distance to the nearest training image (× their spacing)"] < 0.5
    assert found.evidence["its highest so far"] > 0.8  # far from every training image at first
    assert {s.key for s in found.suggestions} == {"data.diffaugment", "data.spec"}


def test_a_healthy_run_gets_no_finding_and_a_run_without_the_doctor_no_probe(tmp_path: Path) -> None:
    run = _trained(tmp_path / "healthy", tiny_config(max_steps=200, grid_every=20))
    assert run.findings_path.is_file() and run.findings() == []
    assert len(records.probe_records(run.metrics())) == 11
    off = tiny_config(max_steps=2)
    off.doctor.enabled = False
    quiet = _trained(tmp_path / "off", off)
    assert not quiet.findings_path.exists() and records.probe_records(quiet.metrics()) == []


def _basic(config: Config, lr: float, **options: object) -> Config:
    """The fully connected GAN at its smallest (a step takes milliseconds) with both learning rates ``lr``."""
    config.model.name, config.model.options = "basic", {"hidden": 64, "d_dropout": 0.0, **options}
    config.optim.lr_g = config.optim.lr_d = lr
    return config


def _replayed(run: Run, lines: list[dict[str, object]]) -> list[str]:
    """The kinds of finding the doctor opens on the first records of a run."""
    return [f.kind for f in Doctor(run.config()).replay(lines)]


def test_an_unconstrained_critic_with_a_learning_rate_50_times_too_high_diverges(tmp_path: Path) -> None:
    # WGAN without its gradient penalty (nothing bounds the critic) and lr 1e-2: the critic's output, and with
    # it G's loss, grows from about 1 to thousands within 40 steps, before it turns non-finite.
    config = _basic(tiny_config(max_steps=40, log_every=1, grid_every=10_000), 1e-2)
    config.loss.kind, config.loss.gp_weight = "wgan-gp", 0.0
    config.doctor.window = 5
    run = _trained(tmp_path, config)
    found = [f for f in run.findings() if f.kind == findings.DIVERGING]
    assert found, [f.kind for f in run.findings()]
    first = found[0]
    # judged from the run's 4th window on (2 warm-up windows, at least 1 of baseline): step 16 at the earliest
    assert first.severity == "critical" and first.first_step >= 16
    mean = next(v for k, v in first.evidence.items() if k.endswith("window mean"))
    earlier = next(v for k, v in first.evidence.items() if k.endswith("earlier median"))
    assert isinstance(mean, float) and isinstance(earlier, float) and mean >= 10 * earlier + 1
    before = [line for line in run.metrics() if line["step"] < first.first_step + config.doctor.window - 1]
    assert findings.DIVERGING not in _replayed(run, before)  # not yet one log interval earlier
    assert {s.key for s in first.suggestions} == {"optim.lr_d", "optim.lr_g", "train.on_divergence"}


def test_large_steps_without_batch_norm_in_g_oscillate_and_the_default_steps_do_not(tmp_path: Path) -> None:
    # BCE, lr 5e-2 for both and a G without batch norm: from one step to the next D(x) − D(G(z)) jumps by
    # 0.4–0.5 on average, back and forth. At lr 2e-4 the same model moves by a few hundredths.
    config = _basic(tiny_config(max_steps=20, log_every=1, grid_every=10_000), 5e-2, g_batchnorm=False)
    run = _trained(tmp_path / "fast", config)
    (found,) = [f for f in run.findings() if f.kind == findings.OSCILLATION]
    assert found.evidence["D(x) − D(G(z)): mean change between log intervals"] >= 0.25
    assert found.evidence["changes of direction"] >= 4
    assert {(s.key, s.value) for s in found.suggestions} == {("optim.lr_d", 0.025), ("optim.lr_g", 0.025)}
    calm = _trained(tmp_path / "calm", _basic(tiny_config(max_steps=20, log_every=1, grid_every=10_000), 2e-4,
                                                  g_batchnorm=False))
    assert calm.findings() == []


def test_a_generator_that_does_not_learn_plateaus_on_the_periodic_metric(tmp_path: Path) -> None:
    # lr 1e-8 and no batch norm (whose running statistics would move the samples): the EMA generator stays as
    # it was, and SWD on 16 images, evaluated every step, stays at its first value.
    config = _basic(tiny_config(max_steps=10, grid_every=10_000), 1e-8, g_batchnorm=False)
    config.metrics.every_images, config.metrics.num_samples = config.train.batch_size, 16
    run = _trained(tmp_path, config)
    evals = [line for line in run.metrics() if line["kind"] == records.EVAL]
    assert len(evals) == 10
    assert _replayed(run, [line for line in run.metrics() if line["step"] <= 8]) == []  # 8 evaluations: too few
    (found,) = run.findings()
    assert found.kind == findings.METRIC_PLATEAU and found.active and found.title == "SWD-16 has stopped improving"
    assert found.evidence["best at step"] == 1.0 and found.evidence["evaluations since the best"] == 9.0
    assert found.evidence["latest"] == pytest.approx(found.evidence["best"], rel=0.02)


def test_diffaugment_translation_on_every_image_leaks_grey_frames_into_a_tiny_dcgan_and_on_half_of_them_does_not(
        tmp_path: Path) -> None:
    # Translation pads with the fill grey, on real and fake images alike: with p = 1 every image D sees may carry
    # grey bands, so a tiny G can paint grey frames at no cost: the finding opened on seeds 0-7 (at steps
    # 120-240; still open at step 300 on 6 of them). With translation and cutout on half of the images (p = 0.5,
    # the doctor's first suggestion) it opened on 1 of seeds 0-5 (seed 2, closed again by step 300).
    leaky = tiny_config(max_steps=300, grid_every=20)
    leaky.data.diffaugment = "translation"
    run = _trained(tmp_path / "every", leaky)
    (found,) = [f for f in run.findings() if f.kind == findings.AUGMENTATION_LEAK]
    assert found.active and found.evidence["share of grid images with grey patches, above the training images'"] >= 0.25
    assert {(s.key, s.value) for s in found.suggestions} == {("data.augment_p", 0.5), ("data.diffaugment", "color")}
    half = tiny_config(max_steps=300, grid_every=20)
    half.data.diffaugment, half.data.augment_p = "translation,cutout", 0.5
    calmer = _trained(tmp_path / "half", half)
    assert findings.AUGMENTATION_LEAK not in [f.kind for f in calmer.findings()]
    assert max(p.values[records.PATCHED] for p in records.probe_records(calmer.metrics())
               if p.step >= 200) < 0.25


def test_a_learning_rate_raised_500_fold_on_resume_makes_the_metric_rise_from_its_best(tmp_path: Path) -> None:
    # 100 steps at lr 2e-3 bring SWD-16 down (with seed 5 from about 200 to 125); resumed with lr_g = 1 the
    # generator is thrown away from what it learnt and SWD climbs back (to about 230 by step 104) and stays there.
    def config(steps: int, lr_g: float) -> Config:
        late = _basic(tiny_config(max_steps=steps, grid_every=10_000), 2e-3)
        late.optim.lr_g, late.train.seed = lr_g, 5
        late.metrics.every_images, late.metrics.num_samples = 2 * late.train.batch_size, 16
        return late

    _trained(tmp_path, config(100, 2e-3))
    first = Run(tmp_path / "run")
    assert findings.METRIC_RISING not in [f.kind for f in first.findings()]
    resumed = config(130, 1.0)
    resumed.metrics.live_samples = 0
    resumed.train.checkpoint_every, resumed.train.memory_format = 10_000, "contiguous"
    Trainer(resumed, first.path, resume=True).train()
    (found,) = [f for f in first.findings() if f.kind == findings.METRIC_RISING]
    assert found.active and found.first_step > 100 and found.title == "SWD-16 is getting worse"
    assert found.evidence["best at step"] <= 100 and found.evidence["latest"] > 1.15 * found.evidence["best"]
    assert {s.key for s in found.suggestions} >= {"optim.lr_g", "optim.lr_d"}
