import numpy as np
import pytest
import torch

from engine import CheckpointError, load_generator
from engine.generator import export_generator, slerp
from engine.train import Trainer
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "run"
    Trainer(tiny_config(max_steps=10), path).train()
    return path


def test_sample_is_deterministic_per_seed(run_dir):
    gen = load_generator(run_dir)
    a = gen.sample(seeds=[1, 2, 3])
    b = gen.sample(seeds=[3, 2, 1])
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a[0], b[2]) and not np.array_equal(a[0], a[1])
    assert np.array_equal(gen.sample(latents=gen.latents([2])), a[1:2])


def test_truncation_zero_gives_the_mean_image(run_dir):
    gen = load_generator(run_dir)
    images = gen.sample(seeds=[5, 6], truncation=0.0)
    assert np.array_equal(images[0], images[1])


def test_interpolation_ends_match_the_endpoints(run_dir):
    gen = load_generator(run_dir)
    z = gen.latents([10, 11])
    path = gen.interpolate(z[0], z[1], steps=5)
    assert path.shape == (5, 32, 32, 3)
    ends = gen.sample(latents=z)
    assert np.abs(path[0].astype(int) - ends[0]).max() <= 1
    assert np.abs(path[-1].astype(int) - ends[1]).max() <= 1


def test_slerp_keeps_the_norm_of_equal_norm_latents():
    a, b = torch.randn(64), torch.randn(64)
    b = b / b.norm() * a.norm()
    mid = slerp(a, b, 0.5)
    assert torch.isclose(mid.norm(), a.norm(), rtol=1e-4)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)


def test_directions_are_orthonormal(run_dir):
    directions, strengths = load_generator(run_dir).directions(5)
    assert directions.shape == (5, 100)
    assert torch.allclose(directions @ directions.T, torch.eye(5), atol=1e-4)
    assert (strengths[:-1] >= strengths[1:]).all()


def test_export_and_load_from_checkpoint_file(run_dir, tmp_path):
    out = export_generator(run_dir, tmp_path / "exported")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    from_export = load_generator(out).sample(seeds=[4])
    from_run = load_generator(run_dir).sample(seeds=[4])
    ckpt = sorted((run_dir / "checkpoints").glob("ckpt_*.json"))[-1]
    assert np.array_equal(from_export, from_run)
    assert np.array_equal(load_generator(ckpt).sample(seeds=[4]), from_run)


def test_wrong_paths_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a run directory"):
        load_generator(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError):
        load_generator(tmp_path)
