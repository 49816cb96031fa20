"""The benchmark scripts stay runnable: a tiny throughput measurement, its FLOP count and every zoo recipe."""

from bench.flops import training_flops_per_image
from bench.train_speed import measure, row
from bench.zoo import CPU_OPTIONS, RECIPES, bench_config
from engine.models import list_models
from engine.train import Trainer
from tests.conftest import tiny_config


def test_every_model_has_a_recipe_and_cpu_widths():
    assert set(RECIPES) == set(CPU_OPTIONS) == {m.name for m in list_models()}
    for model in RECIPES:
        config = bench_config(model, "builtin:faces:64", 64, 5.0, "cpu", True, 100)
        assert config.data.spec == "builtin:faces:64" and config.train.max_seconds == 5.0
        assert all(config.model.options[k] == v for k, v in CPU_OPTIONS[model].items())


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
