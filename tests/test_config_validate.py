"""Config.validate and the model size guard: configuration mistakes are one-line ConfigErrors naming the
key, never tracebacks, and models too large for the machine are refused before they are allocated."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import engine.config
import engine.data
from engine.base.formats import GENERATOR_FORMAT as EXPORT_FORMAT
from engine.config import MAX_SEED, RULES, Config, ConfigError
from engine.data import augment
from engine.generator import load_generator
from engine.models import build_model, check_model_size, estimate_size, list_models, resolve_options
from engine.models.size import FINAL_PROGRESS, MAX_PARAMETERS
from engine.presets import PRESETS, SIZES
from engine.train import Trainer
from engine.train.init import initial_weights
from tests.conftest import ROOT, tiny_config

NAN, INF = math.nan, math.inf

# key, bad value: each was a traceback (or a silently broken run) before Config.validate.
BAD_VALUES = [
    ("train.batch_size", 0), ("train.batch_size", -4), ("train.batch_size", 10**9),
    ("train.log_every", 0), ("train.grid_every", 0), ("train.checkpoint_every", 0), ("train.keep_checkpoints", 0),
    ("optim.n_critic", 0), ("train.grid_size", 0), ("train.grid_size", 100_000),
    ("train.seed", MAX_SEED + 1), ("train.seed", 2**62), ("train.seed", -1),
    ("optim.lr_g", NAN), ("optim.lr_g", -1.0), ("optim.lr_d", INF), ("optim.lr_d", 0.0),
    ("optim.beta1", 1.0), ("optim.beta2", -0.1), ("optim.beta2", NAN),
    ("optim.ema_halflife_images", -1.0), ("optim.ema_rampup", INF), ("optim.reference_batch", 0),
    ("loss.label_smoothing", 0.5), ("loss.label_smoothing", NAN), ("loss.gp_weight", -10.0), ("loss.gamma", -1.0),
    ("data.resolution", 8), ("data.resolution", 4096), ("data.rotate_degrees", NAN), ("data.rotate_degrees", 720.0),
    ("train.max_steps", -1), ("train.max_images", -1), ("train.max_seconds", NAN), ("train.max_seconds", -5.0),
    ("train.max_rollbacks", -1), ("metrics.every_images", -1), ("metrics.num_samples", 0),
    ("metrics.live_samples", -1), ("metrics.live_budget", 0.0), ("metrics.live_budget", NAN),
    ("loss.kind", " "), ("train.precision", "fp16"), ("train.memory_format", "nhwc"), ("train.compile", "fast"),
    ("optim.lr_scaling", "cubic"), ("train.on_divergence", "retry"), ("data.diffaugment", "colour,cutout"),
    ("train.device", "gpu"), ("train.device", "meta"), ("data.spec", " "), ("model.name", ""),
    ("metrics.names", ["swd", 3]), ("model.options", {1: 2}),
    ("data.augment_p", 1.5), ("data.augment_p", NAN), ("schedule.images", -1), ("schedule.lr_g.shape", "step"),
    ("schedule.lr_d.final", -1e-4), ("schedule.beta2.final", 1.0), ("schedule.gamma.final", INF),
    ("schedule.gp_weight.final", -1.0), ("schedule.ema_halflife_images.final", NAN), ("schedule.augment_p.final", 2.0),
    ("schedule.lr_g", {"shape": "cosine"}), ("schedule.augment_p.shape", 1),
    ("train.batch_size", "16"), ("train.batch_size", 16.0), ("train.seed", True), ("optim.lr_g", "fast"),
]


def _set(config: Config, key: str, value: object) -> None:
    *path, name = key.split(".")
    target = config
    for part in path:
        target = getattr(target, part)
    setattr(target, name, value)


def _leaf_keys(part: object, prefix: str = "") -> set[str]:
    """The dotted keys of every field that is not itself a dataclass, nested sections included."""
    keys = set()
    for item in dataclasses.fields(part):
        value = getattr(part, item.name)
        if dataclasses.is_dataclass(value):
            keys |= _leaf_keys(value, f"{prefix}{item.name}.")
        elif item.type not in ("bool", bool):
            keys.add(f"{prefix}{item.name}")
    return keys


@pytest.mark.parametrize("key, value", BAD_VALUES, ids=[f"{k}={v!r}" for k, v in BAD_VALUES])
def test_a_bad_value_is_one_line_naming_the_key_and_the_value(key, value):
    config = tiny_config()
    _set(config, key, value)
    with pytest.raises(ConfigError) as caught:
        config.validate()
    message = str(caught.value)
    assert message.startswith(f"{key} must ") and "\n" not in message
    if not isinstance(value, str) or value.strip():
        assert repr(value) in message or str(value) in message


def test_every_field_but_booleans_and_paths_has_a_rule():
    keys = _leaf_keys(Config())
    assert keys - set(RULES) == {"train.init_from", "metrics.inception_weights"}
    assert set(RULES) <= keys


def test_defaults_and_every_recipe_at_every_size_are_valid():
    Config().validate()
    tiny_config().validate()
    for name, config in PRESETS.items():
        config.validate()
        for size in SIZES[name].values():
            size.apply(config).validate()
        largest = SIZES[name]["large-gpu"].apply(config)
        assert estimate_size(largest.model.name, largest.model.options, largest.data.resolution, 10,
                             largest.train.batch_size).parameters < MAX_PARAMETERS


def test_the_edges_of_the_ranges_are_accepted():
    config = tiny_config()
    for key, value in [("train.seed", MAX_SEED), ("optim.lr_g", 1.0), ("optim.beta1", 0.0), ("train.max_rollbacks", 0),
                       ("loss.label_smoothing", 0.499), ("metrics.live_budget", 1.0), ("data.resolution", 1024),
                       ("data.diffaugment", " color, cutout "), ("train.device", "CUDA:1"), ("metrics.live_samples", 0)]:
        _set(config, key, value)
    config.validate()


def test_the_largest_seed_trains_and_every_rng_accepts_it(tmp_path):
    """The seed reaches the RNGs as seed * 1_000_003 + epoch (data order), seed * 7 + 1 (latents),
    seed + 17 (augmentation) and seed + 1 (grid latents): all fine at MAX_SEED."""
    config = tiny_config(max_steps=2, seed=MAX_SEED, memory_format="contiguous")
    config.data.diffaugment, config.metrics.live_samples = "color,translation,cutout", 0
    config.validate()
    assert Trainer(config, tmp_path / "run").train() == "finished"


def test_allowed_choices_are_declared_once():
    assert augment.DIFFAUGMENT_POLICIES is engine.config.DIFFAUGMENT_POLICIES
    assert (engine.data.MIN_RESOLUTION, engine.data.MAX_RESOLUTION) == (engine.config.MIN_RESOLUTION,
                                                                        engine.config.MAX_RESOLUTION)


# ----------------------------------------------------------------- model options and sizes

@pytest.mark.parametrize("model, key, value", [("dcgan", "max_channels", 0), ("dcgan", "d_dropout", 1.0),
                                               ("dcgan", "d_slope", NAN), ("basic", "hidden", -1),
                                               ("cdcgan", "embed_dim", 0), ("progressive", "fade_images", -1),
                                               ("sngan", "g_channels", 2**40)])
def test_numeric_model_options_are_range_checked(model, key, value):
    with pytest.raises(ConfigError, match=rf"^model\.options\.{key} \({model}\) must be .*, got {value}$"):
        resolve_options(model, {key: value})


def _networks(pair):
    return [net for net in (pair.generator, pair.discriminator, pair.encoder) if net is not None]


def _kept_bytes(pair, resolution: int, batch: int) -> int:
    """Bytes of the activations a real CPU training step keeps for backward (distinct storages)."""
    weights = {p.untyped_storage().data_ptr() for net in _networks(pair) for p in net.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor):
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in weights:
            storages[pointer] = tensor.untyped_storage().nbytes()
        return tensor

    z, labels = torch.randn(batch, pair.latent_dim), torch.zeros(batch, dtype=torch.long)
    images = torch.rand(batch, 3, resolution, resolution) * 2 - 1
    for net in _networks(pair):
        if hasattr(net, "set_progress"):
            net.set_progress(FINAL_PROGRESS)  # a growing model's last stage, as estimated
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        if pair.encoder is not None:
            code = pair.encoder(images)
            pair.generator(code, labels), pair.discriminator(code, labels), pair.discriminator(z, labels)
        else:
            getattr(pair.discriminator, "forward_with_aux", pair.discriminator)(images, labels)
            pair.discriminator(pair.generator(z, labels), labels)
    return sum(storages.values())


@pytest.mark.parametrize("info", list_models(), ids=lambda info: info.name)
def test_the_estimate_matches_the_built_model(info):
    resolution, classes = info.resolutions[0], 5 if info.conditional else 0
    torch.manual_seed(0)
    rng = torch.get_rng_state()
    estimate = estimate_size(info.name, {}, resolution, classes, batch_size=4)
    assert torch.equal(torch.get_rng_state(), rng)  # measuring draws nothing from the global generator
    pair = build_model(info.name, {}, resolution, classes)
    counts = [sum(p.numel() for p in net.parameters()) for net in _networks(pair)]
    assert estimate.parameters == sum(counts)
    assert estimate.generator_parameters == counts[0] + (counts[2] if pair.encoder is not None else 0)
    measured = _kept_bytes(pair, resolution, 4)
    assert 0.8 * measured <= estimate.activation_bytes <= 1.3 * measured


def test_memory_above_the_device_is_refused_naming_the_fix(monkeypatch):
    monkeypatch.setattr("engine.models.size.available_memory", lambda device: 2**30)
    with pytest.raises(ConfigError, match=r"^model dcgan \(ndf=256, ngf=256\) at 128 px needs about [\d.]+ GiB to "
                                          r"train at batch 256, more than the 1.0 GiB available on cpu: lower "
                                          r"model.options.ngf, model.options.ndf, train.batch_size$"):
        check_model_size("dcgan", {"ngf": 256, "ndf": 256}, 128, 0, 256, device="cpu")
    assert check_model_size("dcgan", {"ngf": 8, "ndf": 8}, 32, 0, 16, device="cpu").memory_bytes < 2**30


def test_a_batch_the_model_cannot_train_on_is_refused():
    with pytest.raises(ConfigError, match="model basic cannot run batches of 1 .*train.batch_size"):
        check_model_size("basic", {}, 32, 0, 1)


def _huge_export(folder):
    folder.mkdir()
    save_file({"weight": torch.zeros(1)}, str(folder / "model.safetensors"))
    info = {"format": EXPORT_FORMAT, "model": "fastgan", "model_options": {"ngf": 4096}, "resolution": 64,
            "latent_dim": 256, "num_classes": 0}
    (folder / "config.json").write_text(json.dumps(info))
    return folder


def test_an_exported_generator_of_ngf_4096_is_refused_quickly_without_allocating(tmp_path):
    """In a fresh process (its peak memory is its own): refused in seconds, peak resident memory under 1.5 GiB."""
    folder = _huge_export(tmp_path / "huge")
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from engine import ConfigError, load_generator
        start = time.perf_counter()
        try:
            load_generator({str(folder)!r})
        except ConfigError as exc:
            print(exc)
        print(time.perf_counter() - start)
        peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
        print(int(peak.split()[1]) * 1024)  # this process's own peak (ru_maxrss keeps the parent's across exec)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    message, seconds, peak = out.stdout.strip().splitlines()[-3:]
    assert message.startswith("model fastgan (ngf=4096) at 64 px has about ") and "lower model.options.ngf" in message
    assert float(seconds) < 10 and int(peak) < 1.5 * 2**30


def test_load_generator_and_init_from_refuse_the_huge_export(tmp_path):
    folder = _huge_export(tmp_path / "huge")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"above the limit of 1.0 billion: lower model.options.ngf"):
        load_generator(folder)
    with pytest.raises(ConfigError, match=r"^train.init_from .*: model fastgan \(ngf=4096\) at 64 px has about"):
        initial_weights(str(folder), "fastgan", 64)
    assert time.perf_counter() - start < 10


def test_init_from_a_run_still_loads_and_checks_the_kind(tmp_path):
    config = tiny_config(max_steps=2, memory_format="contiguous")
    config.metrics.live_samples = 0
    Trainer(config, tmp_path / "run").train()
    assert set(initial_weights(str(tmp_path / "run"), "dcgan", 32)) == {"G", "D", "G_ema"}
    with pytest.raises(ConfigError, match="holds a dcgan model at 32 px"):
        initial_weights(str(tmp_path / "run"), "dcgan", 64)


# ----------------------------------------------------------------- property: validate or train, never a traceback

def _choices(valid: list, invalid: list) -> st.SearchStrategy:
    return st.sampled_from(valid + invalid)


# Values around each boundary; the valid ones train in well under a second (CPU, tiny DCGAN).
CHANGES = {
    "train.batch_size": _choices([1, 2, 16], [0, -1, 65_537, "16"]),
    "train.log_every": _choices([1, 5], [0, -1]),
    "train.grid_every": _choices([1, 10], [0]),
    "train.checkpoint_every": _choices([1, 10], [0, -3]),
    "train.keep_checkpoints": _choices([1, 3], [0]),
    "train.grid_size": _choices([1, 4, 64], [0, 1025]),
    "train.seed": _choices([0, MAX_SEED], [MAX_SEED + 1, -1, 2**62]),
    "train.max_images": _choices([0, 16], [-1]),
    "train.max_seconds": _choices([0.0, 60.0], [NAN, INF, -1.0]),
    "train.device": _choices(["cpu"], ["gpu", "meta", ""]),
    "train.precision": _choices(["fp32", "auto"], ["fp16"]),
    "train.memory_format": _choices(["contiguous", "channels_last"], ["nhwc"]),
    "train.compile": _choices(["off"], ["fast"]),
    "train.on_divergence": _choices(["stop", "rollback"], ["retry"]),
    "train.max_rollbacks": _choices([0, 3], [-1, 101]),
    "optim.lr_g": _choices([1e-4, 1e-2], [0.0, -1.0, 1.5, NAN, INF]),
    "optim.lr_d": _choices([2e-4], [NAN, -2e-4]),
    "optim.beta1": _choices([0.0, 0.5], [1.0, -0.1, NAN]),
    "optim.beta2": _choices([0.999], [1.0, INF]),
    "optim.n_critic": _choices([1, 2, 5], [0, -1, 101]),
    "optim.ema_halflife_images": _choices([0.0, 500.0], [-1.0, NAN]),
    "optim.ema_rampup": _choices([0.0, 0.05], [-0.05, INF]),
    "optim.lr_scaling": _choices(["none", "sqrt", "linear"], ["cubic"]),
    "optim.reference_batch": _choices([1, 64], [0, 65_537]),
    "loss.kind": _choices(["bce", "hinge", "wgan-gp"], ["lsgan"]),
    "loss.label_smoothing": _choices([0.0, 0.1, 0.49], [0.5, -0.1, NAN]),
    "loss.gp_weight": _choices([0.0, 10.0], [-1.0, INF]),
    "loss.gamma": _choices([0.0, 0.05], [-0.1, NAN]),
    "schedule.images": _choices([0, 32], [-1]),
    "schedule.lr_g.shape": _choices(["constant", "cosine"], ["step"]),
    "schedule.lr_d.final": _choices([0.0, 1e-4], [-1e-4, NAN]),
    "schedule.beta2.shape": _choices(["linear"], []),
    "schedule.gp_weight.shape": _choices(["cosine"], ["exp"]),
    "schedule.augment_p.shape": _choices(["linear"], []),
    "data.augment_p": _choices([0.0, 1.0], [1.5]),
    "data.resolution": _choices([32, 16, 48], [8, 2048]),
    "data.flip": st.booleans(),
    "data.rotate_degrees": _choices([0.0, 5.0, 180.0], [-1.0, 181.0, NAN]),
    "data.diffaugment": _choices(["", "color", "color,translation,cutout"], ["colour", "color;cutout"]),
    "metrics.live_samples": _choices([0, 16], [-1, 100_001]),
    "metrics.live_budget": _choices([0.05, 1.0], [0.0, 1.5, NAN]),
    "metrics.live_fid": st.booleans(),
    "metrics.live_fid_every_images": _choices([1, 50_000], [0, -1]),
    "metrics.live_fid_budget": _choices([0.1, 1.0], [0.0, 1.5, NAN]),
    "metrics.every_images": _choices([0], [-1]),
    "metrics.num_samples": _choices([2_000], [0, 100_001]),
    "model.options.ngf": _choices([1, 8], [0, -1, 2**31]),
    "model.options.ndf": _choices([8], [0]),
    "model.options.latent_dim": _choices([1, 100], [0]),
    "model.name": _choices(["dcgan", "wgan-gp"], ["nope", ""]),
}
MODEL_KEYS = {"data.resolution", "model.name", "model.options.ngf", "model.options.ndf", "model.options.latent_dim",
              "loss.kind"}  # checked by the model and loss registries (check_model_config), not by validate()

changes = st.sets(st.sampled_from(sorted(CHANGES)), max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({key: CHANGES[key] for key in keys}))


def _changed_config(changed: dict[str, object]) -> Config:
    config = tiny_config(max_steps=2, memory_format="contiguous")
    config.metrics.live_samples = 0
    for key, value in changed.items():
        if key.startswith("model.options."):
            config.model.options[key.removeprefix("model.options.")] = value
        else:
            _set(config, key, value)
    return config


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changed=changes)
def test_any_config_is_refused_in_one_line_or_trains(changed, tmp_path_factory):
    """validate() refuses it with a one-line ConfigError, or the trainer's model checks refuse it (a key of
    the model layer changed, or a ramp of a weight the loss lacks, named), or it trains 2 steps. Any other
    exception fails."""
    config = _changed_config(changed)
    try:
        config.validate()
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).split(" ", 1)[0] in changed
        event("refused by validate")
        return
    try:
        trainer = Trainer(config, tmp_path_factory.mktemp("run") / "run")
    except ConfigError as exc:
        assert "\n" not in str(exc) and (MODEL_KEYS & set(changed) or str(exc).split(" ", 1)[0] in changed), exc
        event("refused by the model checks")
        return
    assert trainer.train() == "finished"
    event("trained")
