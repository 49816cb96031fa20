import io
import time
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data import DatasetError, load_dataset
from engine.data.augment import Augmenter, BatchRandom, cutout, flip, parse_policy, translation
from engine.data.device_data import DeviceDataset
from engine.data.images import decode_image


def _png(mode: str, size=(40, 30), color=None) -> bytes:
    img = Image.new(mode, size, color)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(color=(200, 30, 30), size=(48, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG")
    return buf.getvalue()


def test_folder_with_classes_and_bad_files(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    (tmp_path / "cats" / "a.jpg").write_bytes(_jpeg((250, 0, 0)))
    (tmp_path / "cats" / "b.png").write_bytes(_png("RGBA", color=(0, 255, 0, 128)))
    (tmp_path / "dogs" / "c.png").write_bytes(_png("L", color=100))
    (tmp_path / "dogs" / "d.png").write_bytes(_png("P", color=3))
    sixteen = Image.fromarray(np.full((20, 20), 65535, np.uint16))
    sixteen.save(tmp_path / "dogs" / "e.png")
    (tmp_path / "dogs" / "notes.txt").write_text("ignored: not an image name")
    (tmp_path / "dogs" / "fake.jpg").write_text("this is not a jpeg")
    (tmp_path / "dogs" / "cut.jpg").write_bytes(_jpeg()[:100])

    data = load_dataset(str(tmp_path), 32)
    assert data.images.shape == (5, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.class_names == ["cats", "dogs"]
    assert sorted(data.labels.tolist()) == [0, 0, 1, 1, 1]
    assert sorted(data.skipped) == ["dogs/cut.jpg", "dogs/fake.jpg"]
    white_16bit = data.images[data.labels == 1][-1]
    assert white_16bit.min() == 255


def test_centre_crop_and_resize():
    img = np.zeros((20, 60, 3), np.uint8)
    img[:, 20:40] = 255  # the centre square is white, the sides black
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    out = decode_image(buf.getvalue(), 16)
    assert out.shape == (16, 16, 3) and out.min() > 240


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert decode_image(_jpeg(size=(64, 64)), 16) is None


def test_zip_ignores_unsafe_entries(tmp_path):
    path = tmp_path / "faces.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("good/one.jpg", _jpeg())
        archive.writestr("good/two.png", _png("RGB", color=(1, 2, 3)))
        archive.writestr("../evil.jpg", _jpeg())
        archive.writestr("/abs/evil.jpg", _jpeg())
        archive.writestr("__MACOSX/good/._one.jpg", b"junk")
    data = load_dataset(str(path), 32)
    assert len(data) == 2 and data.class_names == ["good"]


def test_npz_and_npy(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (6, 40, 40, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=images, labels=np.array([0, 1, 0, 1, 0, 1]))
    data = load_dataset(str(tmp_path / "a.npz"), 32)
    assert data.images.shape == (6, 32, 32, 3) and data.labels.tolist() == [0, 1, 0, 1, 0, 1]
    np.save(tmp_path / "b.npy", images[:, :32, :32])
    data = load_dataset(str(tmp_path / "b.npy"), 32)
    assert np.array_equal(data.images, images[:, :32, :32])
    np.save(tmp_path / "f.npy", images.astype(np.float32))
    with pytest.raises(DatasetError, match="uint8"):
        load_dataset(str(tmp_path / "f.npy"), 32)


def test_clear_errors_name_the_path(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "missing"), 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no image files"):
        load_dataset(str(tmp_path / "empty"), 32)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_text("nope")
    with pytest.raises(DatasetError, match=r"no usable images in .*bad"):
        load_dataset(str(tmp_path / "bad"), 32)
    (tmp_path / "broken.zip").write_text("not a zip")
    with pytest.raises(DatasetError, match="broken.zip"):
        load_dataset(str(tmp_path / "broken.zip"), 32)
    with pytest.raises(DatasetError, match="unknown built-in"):
        load_dataset("builtin:cars", 32)


def test_second_load_comes_from_cache():
    start = time.perf_counter()
    first = load_dataset("builtin:faces:600", 48)
    first_time = time.perf_counter() - start
    start = time.perf_counter()
    second = load_dataset("builtin:faces:600", 48)
    second_time = time.perf_counter() - start
    assert np.array_equal(first.images, second.images)
    assert second_time < first_time / 3
    assert len(first.class_names) >= 5


def test_device_dataset_order_resumes_exactly():
    images = np.arange(10 * 4 * 4 * 3, dtype=np.uint8).reshape(10, 4, 4, 3)
    a = DeviceDataset(images, np.arange(10), torch.device("cpu"), seed=3)
    first = [a.take(4)[1] for _ in range(3)]
    state = a.state_dict()
    rest = [a.take(4) for _ in range(4)]
    b = DeviceDataset(images, np.arange(10), torch.device("cpu"), seed=3)
    b.load_state_dict(state)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(rest, [b.take(4) for _ in range(4)]))
    assert sorted(torch.cat(first)[:10].tolist()) == list(range(10))  # the labels are the indices: one epoch
    batch = rest[0][0]
    assert batch.min() >= -1 and batch.max() <= 1 and batch.shape == (4, 3, 4, 4)


def _global_batches(datasets: list[DeviceDataset], steps: int, batch: int) -> list[torch.Tensor]:
    return [torch.cat([d.take(batch)[0] for d in datasets]) for _ in range(steps)]


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_hold_shards_and_together_see_the_one_process_batches(world):
    count, batch = 61, 12  # the epoch is not a multiple of the batch: batches straddle epochs
    images = np.random.default_rng(0).integers(0, 256, (count, 4, 4, 3), dtype=np.uint8)
    one = DeviceDataset(images, np.arange(count), torch.device("cpu"), seed=5)
    ranks = [DeviceDataset(images, np.arange(count), torch.device("cpu"), seed=5, rank=r, world_size=world)
             for r in range(world)]
    expected = _global_batches([one], 9, batch)
    assert all(torch.equal(x, y) for x, y in zip(expected, _global_batches(ranks, 9, batch)))
    assert one.resident_images == count
    assert all(d.resident_images <= -(-count // world) + batch // world for d in ranks)  # mid-epoch: one shard

    state = ranks[0].state_dict()  # resume the K-rank order with one process, and the other way round
    resumed = DeviceDataset(images, np.arange(count), torch.device("cpu"), seed=5)
    resumed.load_state_dict(state)
    later = _global_batches(ranks, 4, batch)
    assert all(torch.equal(x, y) for x, y in zip(later, _global_batches([resumed], 4, batch)))
    assert all(torch.equal(x, y) for x, y in zip(_global_batches([one], 4, batch), later))


def test_augmentations():
    gen = BatchRandom(torch.device("cpu"), 0)
    x = torch.rand(64, 3, 16, 16) * 2 - 1
    flipped = flip(x, gen)
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all() and 10 < mirrored.sum() < 54
    moved = translation(x, gen)
    assert moved.shape == x.shape and not torch.equal(moved, x)
    cut = cutout(torch.ones(8, 3, 16, 16), gen)
    zero_fraction = (cut == 0).float().mean().item()
    assert 0.15 < zero_fraction < 0.3
    aug = Augmenter(torch.device("cpu"), 0, flip=True, rotate_degrees=10, diffaugment="color,translation,cutout")
    state = aug.get_state()
    out1 = aug.diff(aug.real(x))
    aug.set_state(state)
    assert torch.equal(out1, aug.diff(aug.real(x)))
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        parse_policy("color,zoom")


def test_augmentation_of_a_global_batch_does_not_depend_on_the_process_count():
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    whole = Augmenter(torch.device("cpu"), 3, flip=True, rotate_degrees=10, diffaugment="color,translation,cutout")
    ranks = [Augmenter(torch.device("cpu"), 3, flip=True, rotate_degrees=10, diffaugment="color,translation,cutout",
                       rank=r, world_size=2) for r in range(2)]
    expected = whole.diff(whole.real(x))
    parts = [aug.diff(aug.real(x[4 * r:4 * r + 4])) for r, aug in enumerate(ranks)]
    assert torch.allclose(torch.cat(parts), expected, atol=1e-6)
    assert not torch.allclose(parts[0], parts[1])
