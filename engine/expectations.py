"""What to expect of a configuration on a device before it starts: speed, checkpoint size, and
whether it is too slow there to show faces in reasonable time.

Speeds come from this machine's own runs (``record_speed``, called by the trainer) or else from the
shipped benchmark table ``engine/speeds.json`` (written by ``bench/recipe_speeds.py``), which only
applies to a recipe at the size for the device's class.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.base.environment import cache_dir
from engine.base.files import atomic_write_json, read_json
from engine.config import Config
from engine.device import device_summary
from engine.models import build_model, get_model, resolve_options
from engine.presets import PRESETS, device_class, recipe

log = logging.getLogger(__name__)

IMAGES_TO_FACES = 30_000
"""Training images after which built-in faces usually become recognisable; calibrated by eye with
saved grids in docs/benchmarks.md (bench/first_faces.py)."""
TOO_SLOW_SECONDS = 20 * 60  # longer than this to IMAGES_TO_FACES is "too slow here"
SPEEDS_TABLE = Path(__file__).with_name("speeds.json")
SAFETENSORS_ENTRY_BYTES = 64  # header bytes per tensor besides its name (dtype, shape, offsets)
CHECKPOINT_EXTRA_BYTES = 3 * 5056 + 4096  # three CPU RNG states, the checkpoint's JSON


@dataclass(frozen=True)
class Expectation:
    """Expected speed (None when never measured for this shape and device), where that number comes
    from, the size of one checkpoint, and a sentence when the configuration is too slow here."""

    img_per_sec: float | None
    source: str
    checkpoint_bytes: int
    too_slow: str | None


def expectation(config: Config, device: torch.device) -> Expectation:
    """What ``config`` will do on ``device``. Raises ConfigError for model options the model refuses."""
    img_per_sec, source = _measured(config, device) or _benchmarked(config, device) or (
        None, "not measured on this device yet: the speed shows once the run starts")
    return Expectation(img_per_sec, source, checkpoint_bytes(config), _too_slow(img_per_sec, device))


def record_speed(config: Config, device: torch.device, img_per_sec: float, run_name: str) -> None:
    """Remember ``img_per_sec`` measured by run ``run_name`` for this machine and shape (atomically)."""
    path = _local_table()
    speeds = _read(path)
    speeds.setdefault(machine_key(device), {})[shape_key(config)] = {
        "img_per_sec": img_per_sec, "run": run_name, "time": time.time()}
    atomic_write_json(path, speeds)


def machine_key(device: torch.device) -> str:
    """This machine's device and torch version, e.g. 'CPU, 2 cores · torch 2.14.1'."""
    return f"{device_summary(str(device))} · torch {torch.__version__}"


def shape_key(config: Config) -> str:
    """What the speed depends on: model, its options, resolution, batch and D steps per G step."""
    options = resolve_options(config.model.name, config.model.options)
    return json.dumps([config.model.name, options, config.data.resolution, config.train.batch_size,
                       config.optim.n_critic], sort_keys=True)


def checkpoint_bytes(config: Config) -> int:
    """Bytes of one checkpoint (tensors + JSON): G, D, G_ema (and E) in fp32 and two Adam moments per
    trained parameter, counted on networks built on the meta device (no memory, no time). A growing
    model's checkpoints reach this size once all its layers train."""
    info = get_model(config.model.name)
    with torch.device("meta"):
        pair = build_model(config.model.name, config.model.options, config.data.resolution,
                           num_classes=2 if info.conditional else 0)
    g_side = [pair.generator] + ([pair.encoder] if pair.encoder is not None else [])
    modules = {"G": pair.generator, "D": pair.discriminator, "G_ema": pair.generator}
    if pair.encoder is not None:
        modules["E"] = pair.encoder
    total = CHECKPOINT_EXTRA_BYTES
    for prefix, module in modules.items():
        total += sum(_tensor_bytes(f"{prefix}.{name}", t) for name, t in module.state_dict().items())
    for prefix, trained in (("opt_G", g_side), ("opt_D", [pair.discriminator])):
        params = [p for module in trained for p in module.parameters() if p.requires_grad]
        for index, param in enumerate(params):
            total += sum(_tensor_bytes(f"{prefix}.{index}.{key}", param) for key in ("exp_avg", "exp_avg_sq"))
            total += len(f"{prefix}.{index}.step") + SAFETENSORS_ENTRY_BYTES + 4  # fp32 step count
    return total


def _tensor_bytes(name: str, tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size() + len(name) + SAFETENSORS_ENTRY_BYTES


def _local_table() -> Path:
    return cache_dir() / "speeds.json"


def _read(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; empty when it is missing or unreadable (a cache: it refills)."""
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        if path.exists():
            log.warning("ignoring unreadable speed table %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _measured(config: Config, device: torch.device) -> tuple[float, str] | None:
    entry = _read(_local_table()).get(machine_key(device), {}).get(shape_key(config))
    if not entry:
        return None
    return entry["img_per_sec"], f"measured on this machine (run {entry['run']}, {_ago(time.time() - entry['time'])})"


def _benchmarked(config: Config, device: torch.device) -> tuple[float, str] | None:
    """The shipped benchmark's speed when ``config`` has the shape of a recipe at its size for this device."""
    size = device_class(device)
    shape = shape_key(config)
    for name, entry in _read(SPEEDS_TABLE).get(size, {}).items():
        if name in PRESETS and shape_key(recipe(name, device, size)[0]) == shape:
            return (entry["img_per_sec"],
                    f"benchmark on {entry['measured_on']}, {entry['date']} (bench/recipe_speeds.py)")
    return None


def _too_slow(img_per_sec: float | None, device: torch.device) -> str | None:
    if not img_per_sec:
        return None
    seconds = IMAGES_TO_FACES / img_per_sec
    if seconds <= TOO_SLOW_SECONDS:
        return None
    where = "CPU" if device.type == "cpu" else "GPU"
    return (f"About {_rate(img_per_sec)} img/s on this {where}: ~{IMAGES_TO_FACES:,} images (when faces usually "
            f"become recognisable) would take {duration(seconds)}.")


def _rate(img_per_sec: float) -> str:
    return f"{img_per_sec:,.0f}" if img_per_sec >= 10 else f"{img_per_sec:.2g}"


def duration(seconds: float) -> str:
    """E.g. '40 s', '25 min', '2 h 45 min', '3 d 4 h'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _ago(seconds: float) -> str:
    return "just now" if seconds < 60 else f"{duration(seconds)} ago"
