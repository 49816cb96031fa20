"""The procedural `builtin:faces` generator: shapes, determinism, chunking, labels, variety."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import faces
from engine.data.faces import SPECIES, render_faces


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """300 faces at 32 px, seed 0."""
    return render_faces(300, 32, seed=0)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute pixel difference (0..255)."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_shapes_and_dtypes(resolution: int) -> None:
    images, labels = render_faces(3, resolution, seed=1)
    assert images.shape == (3, resolution, resolution, 3) and images.dtype == np.uint8
    assert labels.shape == (3,) and labels.dtype == np.int64
    assert set(labels.tolist()) <= set(range(len(SPECIES)))
    assert images.std() > 20  # drawn, not blank


def test_species_order() -> None:
    assert SPECIES[:5] == ("cat", "dog", "fox", "bear", "human")


def test_same_seed_same_faces_other_seed_other_faces() -> None:
    a, la = render_faces(6, 32, seed=3)
    b, lb = render_faces(6, 32, seed=3)
    c, _ = render_faces(6, 32, seed=4)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert all(_mad(a[i], c[i]) > 5 for i in range(6))


def test_a_face_depends_only_on_seed_and_index() -> None:
    whole, whole_labels = render_faces(20, 64, seed=0)
    part, part_labels = render_faces(10, 64, seed=0, start=5)
    assert np.array_equal(part, whole[5:15]) and np.array_equal(part_labels, whole_labels[5:15])


def test_worker_processes_match_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    serial = render_faces(12, 32, seed=2, start=7)
    monkeypatch.setattr(faces, "_CHUNK", 5)
    monkeypatch.setattr(faces, "_workers", lambda count: 2)
    split = render_faces(12, 32, seed=2, start=7)
    assert np.array_equal(split[0], serial[0]) and np.array_equal(split[1], serial[1])


def test_labels_cover_all_species_roughly_balanced(sample: tuple[np.ndarray, np.ndarray]) -> None:
    counts = np.bincount(sample[1], minlength=len(SPECIES))
    expected = len(sample[1]) / len(SPECIES)
    assert counts.min() > 0.6 * expected and counts.max() < 1.4 * expected, counts


def test_faces_are_varied(sample: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = sample
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(images), (2, 1000))
    keep = i != j
    assert _mad(images[i[keep]], images[j[keep]]) > 35
    # within each species the face region itself varies (no single template per class)
    centre = images[:, 10:26, 8:24]
    for s in range(len(SPECIES)):
        own = centre[labels == s]
        assert _mad(own[:-1], own[1:]) > 25, SPECIES[s]
    # and the species look different on average
    means = [images[labels == s].astype(np.float32).mean(0) for s in range(len(SPECIES))]
    gaps = [_mad(means[a], means[b]) for a in range(len(means)) for b in range(a + 1, len(means))]
    assert min(gaps) > 4


def test_empty_request() -> None:
    images, labels = render_faces(0, 32)
    assert images.shape == (0, 32, 32, 3) and labels.shape == (0,)


@pytest.mark.parametrize("resolution", [0, 16, 31, 257, 512])
def test_resolution_out_of_range_raises(resolution: int) -> None:
    with pytest.raises(ValueError, match="between 32 and 256"):
        render_faces(1, resolution)
