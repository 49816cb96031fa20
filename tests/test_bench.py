"""The benchmark scripts stay runnable: a tiny throughput measurement, its FLOP count and every zoo recipe."""

import json

from bench.flops import training_flops_per_image
from bench.train_speed import measure, row
from bench.zoo import RECIPES, bench_config
from engine.models import list_models
from engine.presets import PRESETS, SIZES
from engine.train import Trainer
from tests.conftest import tiny_config


def test_every_model_has_a_recipe_trained_at_its_cpu_size():
    assert set(RECIPES) == {m.name for m in list_models()}
    for model, name in RECIPES.items():
        size = SIZES[name]["cpu"]
        config = bench_config(model, "builtin:faces:64", 64, 5.0, "cpu", True, 0)
        assert config.data.spec == "builtin:faces:64" and config.train.max_seconds == 5.0
        assert config.train.batch_size == size.batch_size
        assert config.model.options == {**PRESETS[name].model.options, **size.options}
        published = bench_config(model, "builtin:faces:64", 64, 5.0, "cpu", False, 0)
        assert published.model == PRESETS[name].model and published.train.batch_size == PRESETS[name].train.batch_size


def test_measure_counts_images_and_flops(tmp_path):
    trainer = Trainer(tiny_config(dataset="builtin:faces:64", batch_size=8), tmp_path)
    img_per_sec, flops, peak_bytes = measure(trainer, 0.5)
    assert img_per_sec > 0 and peak_bytes is None
    assert trainer.step >= 5  # 3 warm-up steps, the counted one, then at least one timed
    assert abs(flops - training_flops_per_image(trainer)) < 1e-6 * flops
    line = row("dcgan", img_per_sec, flops, None, None)
    assert f"{flops / 1e9:.2f}" in line and line.split()[-2:] == ["n/a", "n/a"]


def test_flops_grow_with_the_width(tmp_path):
    counts = []
    for width in (8, 16):
        config = tiny_config(dataset="builtin:faces:64", batch_size=8)
        config.model.options = {"ngf": width, "ndf": width}
        counts.append(training_flops_per_image(Trainer(config, tmp_path / str(width))))
    assert 3 < counts[1] / counts[0] < 4.5  # conv FLOPs scale with the square of the width


def test_recipe_speeds_measures_a_recipe_and_merges_it_into_the_table(tmp_path):
    from bench.recipe_speeds import measure_one, write_table

    row = measure_one("quick-faces-32", "cpu", 0.0)
    assert row["recipe"] == "quick-faces-32" and row["steps"] == 2 and row["img_per_sec"] > 0
    assert row["size"].startswith("CPU size applied")
    table = tmp_path / "speeds.json"
    table.write_text(json.dumps({"large-gpu": {"fastgan-64": {"img_per_sec": 9000.0}},
                                 "cpu": {"fastgan-64": {"img_per_sec": 70.0}}}))
    write_table("cpu", [row], "CPU, 2 cores", table)
    merged = json.loads(table.read_text())
    assert merged["large-gpu"] == {"fastgan-64": {"img_per_sec": 9000.0}}
    assert merged["cpu"]["fastgan-64"] == {"img_per_sec": 70.0}
    assert merged["cpu"]["quick-faces-32"]["measured_on"] == "CPU, 2 cores"
