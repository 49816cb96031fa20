"""Layers only point down: what importing each layer loads (in fresh processes), no engine import inside a
function to dodge a cycle, and the metadata formats round-tripping through JSON (older files included)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

import engine
from engine.base.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from engine.base.formats import (CHECKPOINT_FORMAT, GENERATOR_FORMAT, CheckpointError, CheckpointMeta,
                                 GeneratorInfo)
from engine.generator import load_generator
from engine.models import build_model

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "checkpoints" / "demo-faces64"
EVERYWHERE = ("engine", "engine.lazy", "engine.base")  # the package root and the base layer
# What importing a layer may load besides itself and EVERYWHERE: only layers below it.
BELOW = {
    "engine.config": (),
    "engine.hf.client": ("engine.hf",),
    "engine.data": ("engine.hf",),
    "engine.models": ("engine.config",),
    "engine.runs": ("engine.config",),
    "engine.metrics": (),
    "engine.doctor": ("engine.config", "engine.metrics", "engine.runs"),
    "engine.hub.pull": ("engine.config", "engine.hf", "engine.hub", "engine.runs"),
    "engine.generator": ("engine.config", "engine.grid", "engine.hf", "engine.hub", "engine.models", "engine.runs"),
    "engine.activations": (),
    "engine.discriminator": ("engine.config", "engine.hf", "engine.hub", "engine.models", "engine.runs"),
    "engine.inversion": ("engine.activations", "engine.config", "engine.discriminator", "engine.generator",
                         "engine.grid", "engine.hf", "engine.hub", "engine.models", "engine.runs"),
    "engine.insight": ("engine.activations", "engine.config", "engine.discriminator", "engine.generator",
                       "engine.grid", "engine.hf", "engine.hub", "engine.models", "engine.runs"),
}
# Engine imports inside functions that are kept: each CLI subcommand imports its module when it runs, and the
# built-in faces are imported on use (their worker processes run `python -m engine.data.faces`).
LAZY_IMPORTS = {"engine/cli.py", "engine/hub/cli.py", "engine/data/sources.py"}


def loaded_by(statement: str) -> set[str]:
    """The engine modules a fresh interpreter holds after running ``statement``."""
    script = (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n{statement}\n"
              "print(' '.join(m for m in sys.modules if m == 'engine' or m.startswith('engine.')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(out.stdout.split())


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("statement", ["import engine.generator", "from engine import Generator, load_generator",
                                       "import engine.hub.pull", "from engine.hub import pull_model"])
def test_inference_and_the_hub_pull_load_neither_the_trainer_nor_a_metric(statement: str) -> None:
    loaded = loaded_by(statement)
    assert "engine.generator" in loaded or "engine.hub.pull" in loaded
    assert not {m for m in loaded if within(m, ("engine.train", "engine.metrics"))}


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_each_layer_loads_only_layers_below_it(layer: str) -> None:
    allowed = (layer, *EVERYWHERE, *BELOW[layer])
    assert sorted(m for m in loaded_by(f"import {layer}") if not within(m, allowed)) == []


def test_the_base_layer_imports_nothing_above_it() -> None:
    modules = [f"engine.base.{p.stem}" for p in (ROOT / "engine" / "base").glob("*.py") if p.stem != "__init__"]
    loaded = loaded_by("\n".join(f"import {m}" for m in modules))
    assert set(modules) <= loaded
    assert sorted(m for m in loaded if not within(m, EVERYWHERE)) == []


def engine_imports_in_functions(path: Path) -> set[int]:
    """Lines of a module where a function imports an engine module."""
    lines = set()
    for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""] if node.level == 0 else ["engine"]
                else:
                    continue
                if any(within(name, ("engine",)) for name in names):
                    lines.add(node.lineno)
    return lines


def test_no_engine_import_hides_in_a_function_outside_the_cli_entry_points() -> None:
    hidden = {path.relative_to(ROOT).as_posix(): engine_imports_in_functions(path)
              for path in sorted((ROOT / "engine").rglob("*.py"))}
    assert {name: lines for name, lines in hidden.items() if lines and name not in LAZY_IMPORTS} == {}


def test_the_engine_version_is_the_project_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert engine.__version__ == project["version"]


def test_generator_info_round_trips_through_strict_json() -> None:
    info = GeneratorInfo("dcgan", 32, 64, {"ngf": 8}, num_classes=2, class_names=["cat", "dog"],
                         dataset="builtin:faces", step=10, images=160, extra={"note": "kept"})
    text = info.to_json()
    assert json.loads(text)["format"] == GENERATOR_FORMAT and json.loads(text)["engine_version"] == engine.__version__
    assert GeneratorInfo.from_json(text) == info
    assert dict(info)["note"] == "kept" and info["latent_dim"] == 64 and "step" in info
    with pytest.raises(ValueError):
        GeneratorInfo("dcgan", 32, 64, {"scale": float("nan")}).to_json()


def test_the_shipped_demo_generator_reads_as_an_older_file_and_round_trips(tmp_path: Path) -> None:
    written = json.loads((DEMO / "config.json").read_text())
    info = GeneratorInfo.read(DEMO)
    assert info.engine_version is None and info.extra == {}  # written before versions were recorded
    assert info.to_dict() == written
    gen = load_generator(DEMO)
    assert gen.sample(seeds=[0, 1]).shape == (2, 64, 64, 3)
    again = GeneratorInfo.read(gen.save_pretrained(tmp_path / "export"))
    assert again.engine_version == engine.__version__ and again.network == info.network


def test_unknown_keys_of_a_generator_config_are_kept_and_bad_ones_refused() -> None:
    data = {"format": GENERATOR_FORMAT, "model": "dcgan", "resolution": 32, "latent_dim": 8, "future": [1, 2]}
    assert GeneratorInfo.from_dict(data).to_dict() == dict(data, model_options={}, num_classes=0, class_names=[])
    with pytest.raises(CheckpointError, match="has format 'diffusers'"):
        GeneratorInfo.from_dict(dict(data, format="diffusers"))
    with pytest.raises(CheckpointError, match="malformed .*'resolution' is '32'"):
        GeneratorInfo.from_dict(dict(data, resolution="32"))
    with pytest.raises(CheckpointError, match="malformed .*no 'latent_dim'"):
        GeneratorInfo.from_dict({k: v for k, v in data.items() if k != "latent_dim"})


def _old_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint of a tiny DCGAN as the engine wrote them before recording its version."""
    pair = build_model("dcgan", {"ngf": 8, "ndf": 8, "latent_dim": 16}, 32)
    opt = torch.optim.Adam(pair.generator.parameters())
    state = {"step": 3, "images": 48, "model": "dcgan", "model_options": {"ngf": 8, "ndf": 8, "latent_dim": 16},
             "resolution": 32, "latent_dim": 16, "num_classes": 0, "seed": 0,
             "dataset": {"spec": "builtin:faces:64", "classes": [], "count": 64}}
    path = tmp_path / "run" / "checkpoints" / "ckpt_00000003.json"
    save_checkpoint(path, {"G": pair.generator, "G_ema": pair.generator, "D": pair.discriminator}, {"opt_G": opt},
                    {}, state)
    data = json.loads(path.read_text())
    del data["engine_version"]
    path.write_text(json.dumps(data))
    return path


def test_an_old_checkpoint_loads_and_its_json_round_trips(tmp_path: Path) -> None:
    path = _old_checkpoint(tmp_path)
    written = json.loads(path.read_text())
    meta = read_checkpoint(path)
    assert meta.engine_version is None and meta.state["step"] == 3 and meta.to_dict() == written
    assert CheckpointMeta.from_json(meta.to_json()) == meta
    flat, tensors = load_checkpoint(path)
    assert flat == written and any(name.startswith("G_ema.") for name in tensors)
    info = meta.generator_info()
    assert (info.model, info.resolution, info.latent_dim, info.dataset, info.step) == (
        "dcgan", 32, 16, "builtin:faces:64", 3)
    assert load_generator(path).sample(seeds=[0]).shape == (1, 32, 32, 3)


def test_a_new_checkpoint_records_the_engine_version_and_refuses_other_files(tmp_path: Path) -> None:
    path = _old_checkpoint(tmp_path)
    pair = build_model("dcgan", {"ngf": 8, "ndf": 8, "latent_dim": 16}, 32)
    save_checkpoint(path, {"G_ema": pair.generator}, {}, {}, read_checkpoint(path).state)
    assert json.loads(path.read_text())["engine_version"] == engine.__version__
    path.write_text(json.dumps({"format": GENERATOR_FORMAT}))
    with pytest.raises(CheckpointError, match=f"not a GAN Studio checkpoint \\(format {CHECKPOINT_FORMAT}\\)"):
        read_checkpoint(path)
    path.write_text(json.dumps({"format": CHECKPOINT_FORMAT, "tensors": "x.safetensors"}))
    with pytest.raises(CheckpointError, match="malformed .*no 'tensors_bytes'"):
        read_checkpoint(path)
