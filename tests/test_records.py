"""The metrics.jsonl schema (engine.base.records): typed records read back what was written, and what the
trainer writes uses only the schema's names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.base import records
from engine.base.records import EvalRecord, EventRecord, TrainRecord
from tests.conftest import ROOT, tiny_config

TRAIN_LINE = {"kind": "train", "step": 10, "images": 160, "time": 4.5, "wall": 7.25, "loss_g": 1.5, "loss_d": 0.5,
              "d_real": 0.7, "d_fake": 0.3, "img_per_sec": 35.0, "lr_g": 2e-4, "lr_d": 2e-4}
LIVE_LINE = {"kind": "eval", "live": True, "step": 10, "images": 160, "time": 4.75, "swd_256": 61.5}
CLI_LINE = {"kind": "eval", "step": 10, "images": 160, "time": 4.5, "source": "cli",
            "checkpoint": "ckpt_00000010.json", "fid_2k": 80.25, "errors": {"kid": "no weights"}}
ROLLBACK_LINE = {"kind": "event", "event": "rollback", "step": 10, "images": 160, "time": 4.5, "diverged_at": 14,
                 "detail": "loss_d was NaN", "lr_g": 1e-4, "lr_d": 1e-4, "rollbacks": 1}
LINES = [TRAIN_LINE, LIVE_LINE, CLI_LINE, ROLLBACK_LINE, {"kind": "future", "step": 11}]


@pytest.mark.parametrize("line", LINES[:4])
def test_a_typed_record_writes_back_the_line_it_read(line):
    assert records.parse(line).to_dict() == line


def test_each_kind_is_read_into_its_own_type():
    train = records.train_records(LINES)
    assert train == [TrainRecord(10, 160, 4.5, 7.25, {k: v for k, v in TRAIN_LINE.items()
                                                      if k not in ("kind", "step", "images", "time", "wall")})]
    assert [r.values for r in records.eval_records(LINES)] == [{"swd_256": 61.5}, {"fid_2k": 80.25}]
    assert [r.live for r in records.eval_records(LINES)] == [True, False]
    assert records.eval_records(LINES, live=True)[0].values == {"swd_256": 61.5}
    assert records.eval_records(LINES, live=False)[0].errors == {"kid": "no weights"}
    assert records.events(LINES) == records.events(LINES, records.ROLLBACK) == [
        EventRecord("rollback", 10, 160, 4.5, 14, "loss_d was NaN", 1e-4, 1e-4, 1)]
    assert records.events(LINES, records.DIVERGENCE) == []
    assert records.parse(LINES[-1]) is None


def test_values_hold_numbers_only_and_missing_bookkeeping_reads_as_zero():
    line = {"kind": "eval", "step": 3, "swd_2k": 5, "flag": True, "note": "text", "nonfinite": ["fid_2k"]}
    record = EvalRecord.from_dict(line)
    assert record.values == {"swd_2k": 5} and record.nonfinite == ("fid_2k",)
    assert (record.images, record.time) == (0, 0.0)
    assert TrainRecord.from_dict({"kind": "train", "step": 1}).wall is None


def test_statistic_labels_follow_the_model_kind():
    assert [records.stat_label(k) for k in records.LOSSES[records.ADVERSARIAL]] == ["G loss", "D loss",
                                                                             "D self-supervised loss"]
    assert [records.stat_label(k, records.AUTOENCODER) for k in records.LOSSES[records.AUTOENCODER]] == [
        "Autoencoder loss", "Reconstruction", "Latent D loss"]
    assert [records.stat_label(k, records.AUTOENCODER) for k in records.D_OUTPUTS] == ["D(prior z)", "D(E(x))"]
    assert records.stat_label("something_new") == "something_new"
    with pytest.raises(ValueError, match="model kind"):
        records.stat_label(records.LOSS_G, "diffusion")


def test_the_schema_loads_without_torch_or_numpy():
    code = ("import sys, engine.base.records; heavy = {'torch', 'numpy'} & {m.split('.')[0] for m in sys.modules}; "
            "sys.exit(sorted(heavy) or 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("model, options, stats", [
    ("dcgan", {"ngf": 8, "ndf": 8}, records.ADVERSARIAL_STATS),
    ("aae", {"ngf": 8, "nef": 8, "latent_dim": 8, "d_hidden": 16}, records.AUTOENCODER_STATS)])
def test_the_trainer_writes_the_schema(tmp_path, model, options, stats):
    from engine.runs import Run
    from engine.train import Trainer

    config = tiny_config(max_steps=2, log_every=1, grid_every=2, checkpoint_every=2)
    config.model.name, config.model.options = model, options
    config.metrics.live_samples = 16
    Trainer(config, tmp_path / "run").train()
    lines = Run(tmp_path / "run").metrics()
    train = records.train_records(lines)
    assert [r.step for r in train] == [1, 2] and all(r.wall is not None for r in train)
    assert all(set(r.values) == {*stats, records.IMG_PER_SEC, records.LR_G, records.LR_D} for r in train)
    assert records.eval_records(lines, live=True), "the live metric logs at the first log step"
    assert all(records.parse(line).to_dict() == line for line in lines)
