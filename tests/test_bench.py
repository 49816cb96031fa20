"""The benchmark scripts stay runnable: a tiny throughput measurement, its FLOP count and every zoo recipe."""

import json
from pathlib import Path

import pytest

from bench.flops import training_flops_per_image
from bench.train_speed import measure, row
from bench.zoo import RECIPES, bench_config
from engine.models import list_models
from engine.presets import PRESETS, SIZES
from engine.train import Trainer
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]


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


def test_quality_budget_is_the_idle_speed_times_the_seconds():
    from bench.quality import budget_args
    from engine.expectations import SPEEDS_TABLE

    speed = json.loads(SPEEDS_TABLE.read_text())["cpu"]["fastgan-64"]["img_per_sec"]
    stop, assumed = budget_args("fastgan-64", "cpu", 60.0, "idle")
    assert stop == ["--max-images", str(int(speed * 60))] and assumed == speed
    assert budget_args("fastgan-64", "cpu", 60.0, "wall") == (["--max-seconds", "60.0"], None)


def test_quality_recipes_cover_every_model_and_the_recommended_recipes():
    from bench.quality import default_recipes, recipe_names
    from engine.presets import RECOMMENDED

    names = default_recipes("cpu")
    assert {PRESETS[name].model.name for name in names} == {m.name for m in list_models()}
    assert set(RECOMMENDED["cpu"].values()) <= set(names)
    assert recipe_names("fastgan,quick-faces-32", "cpu") == [RECIPES["fastgan"], "quick-faces-32"]


def test_quality_table_marks_the_best_fid_and_the_recommendation_follows_it(tmp_path, monkeypatch):
    from bench import quality

    rows = [{"dataset": "cats", "spec": "/data/cats", "recipe": "fastgan-64", "model": "fastgan", "px": 64,
             "speed": 52.0, "images": 6240, "fid": 180.25, "kid": 0.15, "swd": 60.0, "grid": "cats-fastgan-64.png"},
            {"dataset": "cats", "spec": "/data/cats", "recipe": "quick-photos-64", "model": "dcgan", "px": 64,
             "speed": 150.0, "images": 18000, "fid": 120.5, "kid": 0.1, "swd": 70.0, "grid": "cats-q.png"},
            {"dataset": "cats", "spec": "/data/cats", "recipe": "conditional-dcgan-64", "model": "cdcgan", "px": 64,
             "speed": 150.0, "error": "needs labels"}]
    text = quality.table(rows, 1000)
    assert "| **120.5** |" in text and "| 180.2 |" in text and "needs labels" in text and "FID-1k" in text
    best = quality.best_recipes(rows)
    assert best == {"photos": {"recipe": "quick-photos-64", "fid": 120.5, "dataset": "cats"}}

    docs = tmp_path / "benchmarks.md"
    docs.write_text("before\n<!-- quality:cpu:start -->\nold\n<!-- quality:cpu:end -->\nafter\n")
    monkeypatch.setattr(quality, "DOCS", docs)
    quality.write_docs("new table", "cpu")
    assert docs.read_text() == "before\n<!-- quality:cpu:start -->\nnew table\n<!-- quality:cpu:end -->\nafter\n"

    import engine.presets as presets

    table = tmp_path / "quality.json"
    monkeypatch.setattr(presets, "QUALITY_TABLE", table)
    quality.write_recommendation("cpu", {"photos": {"recipe": "fastgan-64", "fid": 99.0}}, {"seconds": 120})
    assert presets._measured_best() == {"cpu": {"photos": "fastgan-64"}}


def test_the_shipped_recommendation_is_the_best_fid_of_the_published_quality_table():
    """engine/quality.json, docs/benchmarks.md's table and RECOMMENDED tell the same story: per kind of images,
    the recipe in bold (lowest FID) is the one recorded and the one the studio and the CLI recommend."""
    import re

    from engine.presets import QUALITY_TABLE, RECOMMENDED, images_kind

    recorded = json.loads(QUALITY_TABLE.read_text())
    section = (ROOT / "docs" / "benchmarks.md").read_text().split("<!-- quality:cpu:start -->")[1]
    rows = re.findall(r"^\| (\S+) \| `([\w.-]+)` \(\w[\w-]*\) \|.*\| (\*\*)?([\d.]+)(?:\*\*)? \| [\d.]+ \| [\d.]+ \| \[grid\]",
                      section.split("<!-- quality:cpu:end -->")[0], re.M)
    best = {images_kind(dataset): (recipe, float(fid)) for dataset, recipe, bold, fid in rows if bold}
    assert {dataset for dataset, _, _, _ in rows} == {"builtin:faces", "cats"}
    assert set(best) == {"builtin", "photos"} == set(recorded["cpu"])
    for kind, (recipe, fid) in best.items():
        assert recorded["cpu"][kind]["recipe"] == recipe == RECOMMENDED["cpu"][kind]
        assert recorded["cpu"][kind]["fid"] == pytest.approx(fid, abs=0.051)
        assert all(float(f) >= fid for d, _, _, f in rows if images_kind(d) == kind)
