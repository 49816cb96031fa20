"""Device-aware recipes (sizes per device class, the recommended one) and the expectations shown
before Start (speed, its source, checkpoint size, too slow)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from engine import expectations
from engine.config import ConfigError
from engine.device import DeviceError
from engine.expectations import IMAGES_TO_FACES, Expectation, duration, expectation, record_speed
from engine.models import build_model, declared_recipes, get_model
from engine.presets import (DEVICE_CLASSES, PRESETS, QUALITY_TABLE, RECOMMENDED, RECOMMENDED_DEFAULTS, SIZES, Size,
                            device_class, preset, recipe, recommended, suggested_config)
from engine.train import Trainer

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """This machine's recorded speeds live in a cache directory of the test's own."""
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))


def _gpu(monkeypatch, gib: float) -> torch.device:
    """A CUDA device with ``gib`` GiB of memory, as torch would report it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=gib * 2**30))
    return torch.device("cuda", 0)


def test_every_recipe_has_a_size_for_every_device_class_that_builds():
    assert set(SIZES) == set(PRESETS)
    for name, sizes in SIZES.items():
        assert tuple(sizes) == DEVICE_CLASSES, name
        for size in DEVICE_CLASSES:
            config, _ = recipe(name, CPU, size)
            assert config.data.resolution in get_model(config.model.name).resolutions, (name, size)
            with torch.device("meta"):
                build_model(config.model.name, config.model.options, config.data.resolution, num_classes=2)


def test_cpu_sizes_are_small_and_gpu_sizes_keep_the_recipe():
    for name, sizes in SIZES.items():
        published = PRESETS[name]
        cpu, small, large = (recipe(name, CPU, size)[0] for size in DEVICE_CLASSES)
        assert cpu.data.resolution <= 64 and 16 <= cpu.train.batch_size <= 32, name
        assert all(getattr(sizes["cpu"], key) for key in ("log_every", "grid_every", "checkpoint_every")), name
        assert small.model == large.model == published.model, name
        assert small.train.batch_size == min(published.train.batch_size, 64), name
        assert (large.data, large.train.batch_size) == (published.data, published.train.batch_size), name


def test_recipe_applies_the_size_and_says_so():
    config, note = recipe("fastgan-64", CPU)
    assert config.model.options == {"latent_dim": 256, "ngf": 8, "ndf": 8}
    assert (config.train.batch_size, config.data.resolution, config.train.grid_every) == (16, 64, 50)
    assert note == ("CPU size applied: ngf 8, ndf 8, batch 16, 64 px "
                    "(the recipe's own: ngf 64, ndf 64, batch 16, 64 px).")
    assert Size(32, 64, {"fade_images": 20_000}).describe() == "fade images 20,000, batch 32, 64 px"
    _, note = recipe("afhq-dcgan-128", CPU, "large-gpu")
    assert note == "Large-GPU size applied: the recipe as published (ngf 64, ndf 64, batch 64, 128 px)."
    assert PRESETS["fastgan-64"].model.options["ngf"] == 64  # the published recipe is untouched


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_source_leaves_the_recipe_as_published(name):
    config, note = recipe(name, CPU, "source")
    assert config == PRESETS[name] == preset(name) and config is not PRESETS[name]
    assert note.startswith("Source size applied: the recipe as published (")


def test_unknown_sizes_and_recipes_are_refused():
    with pytest.raises(ValueError, match="auto, cpu, small-gpu, large-gpu, source"):
        recipe("fastgan-64", CPU, "huge")
    with pytest.raises(KeyError, match="unknown preset"):
        recipe("stylegan-1024", CPU)


def test_device_classes_and_the_recommended_recipe_for_each(monkeypatch):
    assert device_class(CPU) == "cpu" and device_class(torch.device("mps")) == "small-gpu"
    assert device_class(_gpu(monkeypatch, 16)) == "small-gpu"
    assert device_class(_gpu(monkeypatch, 80)) == "large-gpu"
    assert recommended(_gpu(monkeypatch, 80)) == RECOMMENDED["large-gpu"]["builtin"]
    assert suggested_config(_gpu(monkeypatch, 80)) == recipe(RECOMMENDED["large-gpu"]["builtin"], CPU, "large-gpu")[0]
    assert recommended(torch.device("mps"), "/data/cats") == RECOMMENDED["small-gpu"]["photos"]
    assert set(RECOMMENDED) == set(DEVICE_CLASSES)
    assert all(set(by_kind) == {"builtin", "photos"} and set(by_kind.values()) <= set(PRESETS)
               for by_kind in RECOMMENDED.values())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        device_class(torch.device("cuda"))


def test_on_a_cpu_each_kind_of_images_gets_the_quality_tables_best_recipe_sized_for_the_cpu():
    measured = json.loads(QUALITY_TABLE.read_text())["cpu"]
    assert recommended(CPU) == recommended(CPU, "builtin:faces:2000") == measured["builtin"]["recipe"]
    assert recommended(CPU, "/home/me/cats") == recommended(CPU, "hf:huggan/AFHQ") == measured["photos"]["recipe"]
    photos = suggested_config(CPU, "/home/me/cats")
    expected = recipe(measured["photos"]["recipe"], CPU)[0]
    expected.data.spec = "/home/me/cats"
    assert photos == expected


def test_without_a_quality_table_the_defaults_apply(tmp_path, monkeypatch):
    """Before bench/quality.py has run on a device class: the narrow DCGAN at 32 px for the built-in faces,
    at 64 px with DiffAugment for photographs."""
    import engine.presets as presets

    monkeypatch.setattr(presets, "QUALITY_TABLE", tmp_path / "missing.json")
    assert presets._measured_best() == {}
    photos = recipe(RECOMMENDED_DEFAULTS["cpu"]["photos"], CPU)[0]
    assert photos.model.name == "dcgan" and photos.data.diffaugment
    assert (photos.data.resolution, photos.model.options["ngf"]) == (64, 32)
    assert recipe(RECOMMENDED_DEFAULTS["cpu"]["builtin"], CPU)[0].data.resolution == 32


def test_checkpoint_size_of_the_recommended_cpu_recipe_matches_a_saved_checkpoint(tmp_path):
    config = suggested_config(CPU)
    config.data.spec, config.train.max_steps, config.train.device = "builtin:faces:64", 1, "cpu"
    config.train.memory_format = "contiguous"
    expected = expectation(config, CPU).checkpoint_bytes
    trainer = Trainer(config, tmp_path / "run")
    trainer.train()
    written = sum(path.stat().st_size for path in (tmp_path / "run" / "checkpoints").glob("ckpt_*"))
    assert len(list((tmp_path / "run" / "checkpoints").glob("ckpt_*"))) == 2
    assert abs(expected - written) <= 0.05 * written


def test_nothing_measured_means_no_speed_and_nothing_too_slow(monkeypatch, tmp_path):
    monkeypatch.setattr(expectations, "SPEEDS_TABLE", tmp_path / "none.json")
    found = expectation(suggested_config(CPU), CPU)
    assert found.img_per_sec is None and found.too_slow is None and "not measured" in found.source
    assert isinstance(found, Expectation) and found.checkpoint_bytes > 0


def test_the_shipped_benchmark_covers_every_recipe_on_a_cpu_and_applies_only_at_that_size(monkeypatch):
    """Every recipe of engine/presets.py has a shipped CPU speed; one a model file declares may lack it until
    bench/recipe_speeds.py --write measures it, and meanwhile nothing is promised for it."""
    table = json.loads(expectations.SPEEDS_TABLE.read_text())
    declared = {declared.name for declared in declared_recipes()}
    assert set(PRESETS) - declared <= set(table["cpu"]) <= set(PRESETS)
    assert all(e["img_per_sec"] > 0 for e in table["cpu"].values())
    for unmeasured in declared - set(table["cpu"]):
        assert expectation(recipe(unmeasured, CPU)[0], CPU).img_per_sec is None
    name = "fastgan-64"  # its published size differs from its CPU size
    found = expectation(recipe(name, CPU)[0], CPU)
    assert found.img_per_sec == table["cpu"][name]["img_per_sec"]
    assert found.source.startswith(f"benchmark on {table['cpu'][name]['measured_on']}")
    assert expectation(preset(name), CPU).img_per_sec is None  # the published size was not measured here


def test_a_recorded_speed_is_read_back_for_the_same_shape_only():
    config = suggested_config(CPU, "/data/cats")
    record_speed(config, CPU, 123.4, "20261125-101500-fastgan-64px")
    found = expectation(config, CPU)
    assert found.img_per_sec == 123.4
    assert found.source == "measured on this machine (run 20261125-101500-fastgan-64px, just now)"
    wider = suggested_config(CPU, "/data/cats")
    wider.model.options["ngf"] = 2 * config.model.options["ngf"]
    assert expectation(wider, CPU).img_per_sec != 123.4
    config.data.spec, config.optim.lr_g = "another-dataset", 1e-3  # neither changes the speed
    assert expectation(config, CPU).img_per_sec == 123.4


def test_too_slow_says_why_in_words_and_numbers():
    config = suggested_config(CPU)
    record_speed(config, CPU, 3.0, "slow-run")
    assert IMAGES_TO_FACES == 30_000
    assert expectation(config, CPU).too_slow == ("About 3 img/s on this CPU: ~30,000 images (when faces usually "
                                                 "become recognisable) would take 2 h 47 min.")
    record_speed(config, CPU, 100.0, "fast-run")  # 5 minutes to faces
    assert expectation(config, CPU).too_slow is None


def test_durations_read_in_words():
    assert [duration(s) for s in (42, 25 * 60, 10_000, 90_000)] == ["42 s", "25 min", "2 h 47 min", "1 d 1 h"]


def test_expectation_refuses_options_the_model_refuses():
    config = suggested_config(CPU)
    config.model.options["bogus"] = 1
    with pytest.raises(ConfigError, match="bogus"):
        expectation(config, CPU)


def test_every_recipes_float_settings_hold_floats():
    """The studio's number inputs take the value's type: an int in a float field (500_000 for 5e5) would show as
    an integer field with a float format."""
    import dataclasses
    import typing

    def ints_in_float_fields(node: object, path: str) -> list[str]:
        if not dataclasses.is_dataclass(node):
            return []
        hints = typing.get_type_hints(type(node))
        found = []
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if hints[f.name] is float and type(value) is int:
                found.append(f"{path}{f.name}")
            found += ints_in_float_fields(value, f"{path}{f.name}.")
        return found

    assert {name: ints_in_float_fields(config, "") for name, config in PRESETS.items()
            if ints_in_float_fields(config, "")} == {}
