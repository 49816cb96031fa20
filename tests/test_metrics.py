"""Metric maths against closed forms and known properties; no network, no pretrained weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.metrics import display_label, format_count, lower_is_better, metric_key, parse_count, parse_key
from engine.metrics.fid import frechet_distance
from engine.metrics.inception_score import inception_score
from engine.metrics.kid import kernel_inception_distance
from engine.metrics.precision_recall import precision_recall
from engine.metrics.swd import laplacian_pyramid, num_levels, swd


def _rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_frechet_distance_commuting_covariances_closed_form() -> None:
    rng = np.random.default_rng(0)
    d = 64
    q = _rotation(d, 1)
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_non_commuting_2d_closed_form() -> None:
    # For 2×2 S1·S2 (similar to an SPD matrix): tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
    s1 = np.array([[2.0, 0.7], [0.7, 1.0]])
    s2 = np.array([[0.5, -0.2], [-0.2, 1.5]])
    mu1, mu2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    m = s1 @ s2
    tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    features = np.random.default_rng(2).normal(size=(500, 32))
    mu, sigma = features.mean(0), np.cov(features, rowvar=False)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_inception_score_uniform_predictions_is_one() -> None:
    assert inception_score(torch.zeros(100, 1008)) == pytest.approx(1.0, abs=1e-12)


def test_inception_score_of_confident_balanced_predictions_is_number_of_classes() -> None:
    classes = 5
    logits = torch.full((500, classes), -1e4)
    logits[torch.arange(500), torch.arange(500) % classes] = 0.0
    assert inception_score(logits, splits=1) == pytest.approx(classes, rel=1e-6)


def test_kid_is_unbiased_on_identical_distributions() -> None:
    from torch_fidelity.metric_kid import mmd2

    rng = np.random.default_rng(3)
    unbiased, biased = [], []
    for seed in range(40):
        x, y = (rng.normal(size=(100, 8)).astype(np.float32) for _ in range(2))
        unbiased.append(kernel_inception_distance(torch.from_numpy(x), torch.from_numpy(y), seed=seed))
        kernel = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731  (KID's cubic kernel)
        biased.append(mmd2(kernel(x, x), kernel(x, y), kernel(y, y), mmd_est="biased"))
    standard_error = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * standard_error
    assert np.mean(biased) > 10 * standard_error  # the V-statistic would not pass the line above


def test_precision_recall_identical_and_disjoint_sets() -> None:
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x + 100.0, x) == (0.0, 0.0)


def _blobs(n: int, seed: int, size: int = 64) -> np.ndarray:
    """Grainy coloured discs on a dark background: a stand-in for face images with fine detail."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.35)
        disc = np.clip(1.2 - np.hypot(x - cx, y - cy) / r, 0, 1)[..., None]
        grain = rng.normal(0, 12, (size, size, 1))
        images[i] = np.clip(40 + disc * (rng.uniform(80, 215, 3) + grain), 0, 255)
    return images


def _blur(images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    kernel = torch.outer(kernel, kernel).expand(3, 1, 5, 5)
    for _ in range(2):
        x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=3)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def test_swd_self_far_below_noise_and_blur() -> None:
    real = _blobs(128, seed=0)
    noise = np.random.default_rng(2).integers(0, 256, real.shape, dtype=np.uint8)
    self_distance, blurred = swd(real, real), swd(real, _blur(real))
    assert self_distance < 0.3 * blurred  # measured: 14 vs 72
    assert swd(real, _blobs(128, seed=1)) < 0.5 * blurred  # another sample of the same distribution: 26
    assert self_distance < 0.1 * swd(real, noise)  # 361


def test_laplacian_pyramid_reconstructs_the_image() -> None:
    images = torch.from_numpy(_blobs(2, seed=4)).permute(0, 3, 1, 2).float()
    levels = num_levels(64)
    assert levels == 3
    pyramid = laplacian_pyramid(images, levels)
    assert [level.shape[-1] for level in pyramid] == [64, 32, 16]
    image = pyramid[-1]
    kernel = (torch.outer(torch.tensor([1.0, 4, 6, 4, 1]), torch.tensor([1.0, 4, 6, 4, 1])) / 256).expand(3, 1, 5, 5)
    for band in reversed(pyramid[:-1]):
        up = torch.zeros_like(band)
        up[:, :, ::2, ::2] = image
        image = band + 4 * torch.nn.functional.conv2d(
            torch.nn.functional.pad(up, (2, 2, 2, 2), mode="reflect"), kernel, groups=3)
    assert torch.allclose(image, images, atol=1e-3)


def test_keys_carry_the_sample_count() -> None:
    assert metric_key("fid", 10_000) == "fid_10k"
    assert metric_key("kid", 50_000) == "kid_50k"
    assert metric_key("swd", 2_500) == "swd_2500"
    assert parse_key("nn_pixel_500") == ("nn_pixel", 500)
    assert parse_key("precision_2k") == ("precision", 2000)
    assert display_label("fid_10k") == "FID-10k"
    assert display_label("is_50k") == "IS-50k"
    assert display_label("recall_2k") == "Recall-2k"
    assert parse_count("10k") == 10_000 and format_count(64) == "64"
    with pytest.raises(ValueError):
        parse_count("0")


def test_lower_is_better() -> None:
    assert lower_is_better("fid") and lower_is_better("fid_2k") and lower_is_better("swd_10k")
    assert lower_is_better("kid_2k")
    assert not lower_is_better("is_2k") and not lower_is_better("precision") and not lower_is_better("recall_50k")
    for informative_or_unknown in ("nn_pixel_2k", "nn_feature", "pr", "bogus"):
        with pytest.raises(ValueError):
            lower_is_better(informative_or_unknown)
