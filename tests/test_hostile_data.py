"""Hostile dataset input: each case loads within the limits or raises DatasetError; never another
exception, a hang or a memory blow-up.

Loads run in a child process under an address-space limit (RLIMIT_AS) and a timeout, so a case
that would exhaust memory fails its test instead of the machine, and one that would block forever
fails instead of hanging the suite. The fuzz test ends with deterministic mutations (bit flips,
overwritten headers, truncation, lying sizes) of images, zips and .npz/.npy files.
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import stat
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MEMORY_CAP = 2 * 2**30  # the child's address space; importing engine.data takes ~160 MB of it
TIMEOUT_S = 30
RESOLUTION = 16


# --- the limited child -----------------------------------------------------------------------------------

def child_main() -> None:
    """In the child: apply the memory cap, run the job given as JSON in argv[1], print JSON results."""
    job = json.loads(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    from engine.data import DatasetError

    results = []
    for spec in job["specs"]:
        try:
            results.append(_summary(*_load(job["kind"], spec)))
        except DatasetError as exc:
            results.append({"error": str(exc)})
    print(json.dumps(results))


def _load(kind: str, spec: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    from engine.data import load_dataset
    from engine.data.hub_source import decode_parquet
    from engine.data.sources import resolve_source

    if kind == "load":
        data = load_dataset(spec, RESOLUTION)
        return data.images, data.labels, data.class_names, data.skipped
    decoded = decode_parquet([Path(spec)], RESOLUTION, "hf:someone/data") if kind == "parquet" else \
        resolve_source(spec).decode(RESOLUTION)
    return decoded.images, decoded.labels, decoded.class_names, decoded.skipped


def _summary(images: np.ndarray, labels: np.ndarray, class_names: list[str], skipped: list[str]) -> dict[str, Any]:
    """What a test checks of a load, after checking what every load must be."""
    assert images.dtype == np.uint8 and images.shape[1:] == (RESOLUTION, RESOLUTION, 3) and len(images) > 0
    assert labels.shape == (len(images),) and labels.min() >= 0 and labels.max() < max(len(class_names), 1)
    return {"count": len(images), "labels": labels.tolist()[:20], "class_names": class_names[:20],
            "skipped": skipped[:20]}


def limited(specs: list[str | Path], kind: str = "load", timeout: float = TIMEOUT_S, **env: str) -> list[dict]:
    """Load each spec in a child under MEMORY_CAP: its summary, or {'error': the DatasetError's message}."""
    job = json.dumps({"kind": kind, "specs": [str(s) for s in specs]})
    child_env = {**os.environ, "GAN_STUDIO_CACHE": tempfile.mkdtemp(prefix="hostile-cache-"), **env}
    code = "from tests.test_hostile_data import child_main; child_main()"
    done = subprocess.run([sys.executable, "-c", code, job], cwd=ROOT, env=child_env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"the load did not end in a result or a DatasetError:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.splitlines()[-1])


def one(spec: str | Path, **env: str) -> dict:
    return limited([spec], **env)[0]


# --- building hostile files ---------------------------------------------------------------------------------

def png(colour: tuple[int, int, int] = (200, 40, 40), size: int = 24, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (size, size), colour if mode == "RGB" else 0).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png(seed: int, size: int = 180) -> bytes:
    """A PNG that does not compress (about size² × 3 bytes)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy_bytes(header: str, payload: bytes = b"") -> bytes:
    """An .npy file with a header written by hand (it may declare anything)."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def npy_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def images_array(count: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(count).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def npz(tmp_path: Path, name: str, compression: int = zipfile.ZIP_STORED, **arrays: np.ndarray | bytes) -> Path:
    members = {f"{key}.npy": value if isinstance(value, bytes) else npy_of(value) for key, value in arrays.items()}
    path = tmp_path / name
    path.write_bytes(zip_bytes(members, compression))
    return path


def lie_about_sizes(data: bytes, size: int) -> bytes:
    """The zip with every member's uncompressed size in the table of contents replaced by ``size``."""
    out, at = bytearray(data), 0
    while (at := out.find(b"PK\x01\x02", at)) >= 0:
        struct.pack_into("<I", out, at + 24, size)
        at += 4
    return bytes(out)


# --- npz / npy ---------------------------------------------------------------------------------------------

def test_a_huge_or_negative_label_value_is_a_class_not_a_billion(tmp_path: Path) -> None:
    images = images_array(4)
    huge = npz(tmp_path, "huge.npz", images=images, labels=np.array([0, 10**9, 0, 10**9]))
    negative = npz(tmp_path, "negative.npz", images=images, labels=np.array([-1, 5, 5, -1], np.int8))
    flags = npz(tmp_path, "flags.npz", images=images, labels=np.array([True, False, True, True]))
    huge_result, negative_result, flags_result = limited([huge, negative, flags])
    assert huge_result["class_names"] == ["0", "1000000000"] and huge_result["labels"] == [0, 1, 0, 1]
    assert negative_result["class_names"] == ["-1", "5"] and negative_result["labels"] == [0, 1, 1, 0]
    assert flags_result["class_names"] == ["False", "True"] and flags_result["labels"] == [1, 0, 1, 1]


def test_labels_that_are_not_one_integer_per_image_are_refused(tmp_path: Path) -> None:
    images = images_array(4)
    cases = {"dtype float32; expected integer": np.array([0.0, 1.0, 0.5, 1.0], np.float32),
             "dtype object; expected integer": np.array([0, "cat", None, 1], object),
             "shape (4, 2); expected (4,)": np.zeros((4, 2), np.int64), "shape (3,); expected (4,)": np.array([0, 1, 2])}
    paths = [npz(tmp_path, f"labels{i}.npz", images=images, labels=labels) for i, labels in enumerate(cases.values())]
    for words, result in zip(cases, limited(paths)):
        assert "the labels array in" in result["error"] and words in result["error"], result


def test_more_classes_than_the_limit_are_refused(tmp_path: Path) -> None:
    many = npz(tmp_path, "ids.npz", images=images_array(1001, size=2), labels=np.arange(1001) * 7)
    folder = tmp_path / "folders"
    for name in ("a", "b", "c"):
        (folder / name).mkdir(parents=True)
        (folder / name / "x.png").write_bytes(png())
    assert "1,001 classes, more than the limit of 1,000" in one(many)["error"]
    assert "3 classes, more than the limit of 2" in one(folder, GAN_STUDIO_MAX_CLASSES="2")["error"]


def test_object_and_float_image_arrays_are_refused_from_the_header(tmp_path: Path) -> None:
    objects = npz(tmp_path, "objects.npz", images=np.array([[1, 2], "x"], object))
    floats = tmp_path / "floats.npy"
    floats.write_bytes(npy_of(images_array(2).astype(np.float64)))
    objects_result, floats_result = limited([objects, floats])
    assert "dtype object; expected uint8 images" in objects_result["error"]
    assert "dtype float64; expected uint8 images" in floats_result["error"]


def test_an_array_declaring_gigabytes_is_refused_before_memory_is_taken(tmp_path: Path) -> None:
    six_gib = "{'descr': '|u1', 'fortran_order': False, 'shape': (131072, 128, 128, 3), }"
    declared = npy_bytes(six_gib, bytes(6 * 2**20))  # 6 MB there, 6 GiB declared
    member = npz(tmp_path, "six-gib.npz", zipfile.ZIP_DEFLATED, images=declared)
    file = tmp_path / "six-gib.npy"
    file.write_bytes(declared)
    for result in limited([member, file]):
        assert "6 GiB, more than the limit of 4 GiB" in result["error"], result


def test_a_compressed_array_bomb_stops_at_the_array_limit(tmp_path: Path) -> None:
    bomb = npz(tmp_path, "bomb.npz", zipfile.ZIP_DEFLATED, images=np.zeros((64, 256, 256, 3), np.uint8))
    assert bomb.stat().st_size < 2**20
    assert "12 MiB, more than the limit of 4 MiB" in one(bomb, GAN_STUDIO_MAX_ARRAY_BYTES=str(4 * 2**20))["error"]


def test_a_dataset_over_the_decoded_size_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png())
    result = one(tmp_path, GAN_STUDIO_MAX_DATASET_BYTES="2048")
    assert "3 images at 16 px would take 2.2 KiB of memory, more than the limit of 2 KiB" in result["error"]


# --- zips ----------------------------------------------------------------------------------------------------

def test_a_zip_stops_unpacking_at_its_total_limit_and_names_what_it_dropped(tmp_path: Path) -> None:
    members = {f"pets/{i}.png": noise_png(i) for i in range(6)}
    path = tmp_path / "bomb.zip"
    path.write_bytes(zip_bytes(members))
    size = len(members["pets/0.png"])
    result = one(path, GAN_STUDIO_MAX_ZIP_BYTES=str(int(3.5 * size)))
    assert result["count"] == 3
    assert result["skipped"] == [f"pets/{i}.png (past the {size * 3.5 / 1024:.1f} KiB one zip may unpack to; "
                                 "GAN_STUDIO_MAX_ZIP_BYTES raises it)" for i in range(3, 6)]


def test_what_a_limit_drops_is_named_in_a_warning_and_a_bad_limit_is_a_dataset_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from engine.data import DatasetError, load_dataset

    path = tmp_path / "two.zip"
    path.write_bytes(zip_bytes({"a.png": png(), "b.png": noise_png(2)}))
    monkeypatch.setenv("GAN_STUDIO_MAX_ZIP_BYTES", str(len(png()) + 10))
    with caplog.at_level("WARNING", logger="engine.data"):
        assert len(load_dataset(str(path), RESOLUTION)) == 1
    assert "skipped 1 file(s)" in caplog.text and "b.png (past the " in caplog.text
    monkeypatch.setenv("GAN_STUDIO_MAX_ZIP_BYTES", str(2**20))
    assert len(load_dataset(str(path), RESOLUTION)) == 2  # decoded again under the raised limit, not from the cache
    monkeypatch.setenv("GAN_STUDIO_MAX_ZIP_BYTES", "4G")
    with pytest.raises(DatasetError, match="GAN_STUDIO_MAX_ZIP_BYTES='4G' is not a limit"):
        load_dataset(str(tmp_path / "two.zip"), RESOLUTION + 1)


def test_zip_members_over_the_file_limit_or_that_are_links_are_skipped_and_named(tmp_path: Path) -> None:
    big = tmp_path / "big.zip"
    big.write_bytes(zip_bytes({"a.png": png(), "b.png": noise_png(0)}))
    assert one(big, GAN_STUDIO_MAX_FILE_BYTES=str(50_000))["skipped"] == ["b.png (larger than 48.8 KiB)"]
    lying = tmp_path / "lying.zip"
    lying.write_bytes(lie_about_sizes(zip_bytes({f"{i}.png": png() for i in range(16)}), 255 * 2**20))
    assert "0.png (larger than 64 MiB), 1.png (larger than 64 MiB)" in one(lying)["error"]
    linked = tmp_path / "linked.zip"
    with zipfile.ZipFile(linked, "w") as archive:
        archive.writestr("a.png", png())
        link = zipfile.ZipInfo("b.png")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, png())
    result = one(linked)
    assert result["count"] == 1 and result["skipped"] == ["b.png (a symbolic link)"]


def test_a_zip_listing_too_many_files_is_refused_before_its_table_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    path.write_bytes(zip_bytes({f"{i}.png": b"" for i in range(3000)}, zipfile.ZIP_STORED))
    result = one(path, GAN_STUDIO_MAX_ZIP_DIRECTORY_BYTES=str(64 * 2**10))
    assert "lists too many files" in result["error"] and "more than the limit of 64 KiB" in result["error"]


def test_a_corrupt_compressed_member_is_skipped(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({"a.png": png(), "b.png": noise_png(1, size=40)}))
    second = data.find(b"PK\x03\x04", 4)
    data[second + 30 + len("b.png")] = 0xFF  # b.png's deflate stream opens with a block of a type that does not exist
    path = tmp_path / "corrupt.zip"
    path.write_bytes(bytes(data))
    result = one(path)
    assert result["count"] == 1 and result["skipped"] == ["b.png"]


# --- folders, pipes, devices and links ----------------------------------------------------------------------------

def test_pipes_devices_and_links_out_of_a_folder_are_skipped_unread(tmp_path: Path) -> None:
    folder, outside = tmp_path / "faces", tmp_path / "outside.png"
    folder.mkdir()
    (folder / "a.png").write_bytes(png())
    outside.write_bytes(png())
    os.mkfifo(folder / "fifo.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "outside.png").symlink_to(outside)
    (folder / "inside.png").symlink_to(folder / "a.png")
    result = one(folder, timeout=15)
    assert result["count"] == 2
    assert sorted(result["skipped"]) == ["fifo.jpg (not a regular file)", "outside.png (a link to outside the folder)",
                                         "zero.jpg (a link to outside the folder)"]


def test_a_dataset_path_that_is_a_pipe_or_a_device_is_refused_unread(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "data.zip")
    (tmp_path / "zeros.npy").symlink_to("/dev/zero")
    for result in limited([tmp_path / "data.zip", tmp_path / "zeros.npy"], timeout=15):
        assert "is not a regular file" in result["error"], result


def test_a_picture_over_the_pixel_limit_is_skipped_unread(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("1", (10_000, 5_001)).save(buffer, format="PNG")
    path = tmp_path / "huge.zip"
    path.write_bytes(zip_bytes({"a.png": png(), "huge.png": buffer.getvalue()}))
    assert one(path)["skipped"] == ["huge.png"]


# --- Hub datasets (parquet) -------------------------------------------------------------------------------------

def parquet(tmp_path: Path, name: str, labels: pa.Array, class_names: list[str] | None = None) -> Path:
    images = pa.array([{"bytes": png(), "path": f"{i}.png"} for i in range(len(labels))],
                      pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    table = pa.table({"image": images, "label": labels})
    if class_names is not None:
        features = {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": class_names}}
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    path = tmp_path / name
    pq.write_table(table, path)
    return path


def test_hub_labels_are_renumbered_and_capped(tmp_path: Path) -> None:
    huge = parquet(tmp_path, "huge.parquet", pa.array([10**9, -3, 10**9], pa.int64()))
    outside = parquet(tmp_path, "outside.parquet", pa.array([0, 7], pa.int64()), ["cat", "dog"])
    named = parquet(tmp_path, "named.parquet", pa.array([0], pa.int64()), [str(i) for i in range(1001)])
    strings = parquet(tmp_path, "strings.parquet", pa.array([f"id{i}" for i in range(1001)]))
    huge_result, outside_result, named_result, strings_result = limited([huge, outside, named, strings], "parquet")
    assert huge_result["class_names"] == ["-3", "1000000000"] and huge_result["labels"] == [1, 0, 1]
    assert "label 7 but its class column names only 2 classes" in outside_result["error"]
    assert "1,001 classes" in named_result["error"] and "1,001 classes" in strings_result["error"]


# --- the studio's uploads ---------------------------------------------------------------------------------------

def test_the_studio_refuses_an_upload_over_its_limit_and_removes_stale_partial_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    from streamlit import config
    from streamlit.testing.v1 import AppTest

    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["maxUploadSize"] == 1024  # what the browser and the server refuse beyond, in MB
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(tmp_path / "runs"))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    stale, fresh = uploads / ".old-1234.partial", uploads / ".now-5678.partial"
    stale.write_bytes(b"left by a crash")
    fresh.write_bytes(b"being written by another session")
    os.utime(stale, (0, 0))

    config.set_option("server.maxUploadSize", 1)
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.button_group(key="data:kind").set_value("zip").run()
        at.file_uploader(key="data:zip").upload("big.zip", b"PK" + bytes(2**20), "application/zip").run()
    finally:
        config.set_option("server.maxUploadSize", 1024)
    assert not at.exception, at.exception
    assert any("big.zip is 1.0 MB, more than the 1.0 MB an upload may be" in e.value for e in at.error)
    assert sorted(p.name for p in uploads.iterdir()) == [fresh.name]  # nothing saved; the stale file removed


def test_an_upload_is_saved_whole_or_not_at_all(tmp_path: Path) -> None:
    from studio import dataset_picker

    class Upload(io.BytesIO):
        name = "pets.zip"

    class Dropped(Upload):
        def read(self, size: int = -1) -> bytes:
            if self.tell():
                raise OSError("the connection dropped")
            return super().read(4)

    with pytest.raises(OSError, match="connection dropped"):
        dataset_picker.save_upload(Dropped(b"12345678"), tmp_path)
    assert not list(tmp_path.iterdir())
    saved = dataset_picker.save_upload(Upload(b"1234"), tmp_path)
    assert list(tmp_path.iterdir()) == [saved] and saved.read_bytes() == b"1234" and saved.name.startswith("pets-")


# --- fuzzing ------------------------------------------------------------------------------------------------------

def mutants(seed: bytes, rng: random.Random, count: int, header: int = 64) -> list[bytes]:
    """``count`` deterministic mutations of ``seed``: bit flips, overwritten header bytes, truncation, splices."""
    out = []
    for k in range(count):
        data = bytearray(seed)
        if k % 4 == 0:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif k % 4 == 1:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(min(header, len(data)))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        elif k % 4 == 2:
            del data[rng.randrange(1, len(data)):]
        else:
            at, length = rng.randrange(len(data)), rng.randint(1, 64)
            data[at:at] = data[at:at + length] * rng.randint(1, 4)
        out.append(bytes(data))
    return out


def image_seeds() -> list[bytes]:
    seeds = [png(), png(mode="L"), png(mode="P"), png(mode="I;16")]
    rgba = io.BytesIO()
    Image.new("RGBA", (20, 12), (1, 2, 3, 100)).save(rgba, format="PNG")
    seeds.append(rgba.getvalue())
    for fmt in ("JPEG", "GIF", "BMP", "TIFF", "WEBP"):
        buffer = io.BytesIO()
        Image.new("RGB", (24, 20), (30, 160, 90)).save(buffer, format=fmt)
        seeds.append(buffer.getvalue())
    return seeds


def array_seeds() -> list[tuple[str, bytes]]:
    """(.npz or .npy, bytes): honest files and hand-written headers declaring hostile things."""
    images = images_array(3)
    honest = [("npz", zip_bytes({"images.npy": npy_of(images), "labels.npy": npy_of(np.array([2, -1, 2]))},
                                compression)) for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)]
    headers = ["'shape': (10**12, 64, 64, 3)", "'shape': (2**62, 2**62, 3, 3)", "'shape': (-3, 8, 8, 3)",
               "'shape': ()", "'shape': (3, 8, 8, 3), 'descr': '|O'", "'descr': '<f4'", "'descr': 'V7'",
               "'fortran_order': True", "'descr': [('a', '<i4')]", "'shape': 'x'", "(((((((((((", "'descr': '>u1'"]
    crafted = []
    for change in headers:
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 8, 8, 3), " + change + ", }"
        crafted.append(("npy", npy_bytes(header, images.tobytes())))
        crafted.append(("npz", zip_bytes({"images.npy": npy_bytes(header, images.tobytes())})))
    labels = [np.array([0.5, 1.5, 2.5]), np.array([2**62, -2**62, 0]), np.array([[0, 1, 2]]), np.array([1, 2]),
              np.array(["a", "b", "c"]), np.array([0, None, 1], object)]
    crafted += [("npz", zip_bytes({"images.npy": npy_of(images), "labels.npy": npy_of(values)})) for values in labels]
    return honest + crafted


def zip_seeds() -> list[bytes]:
    members = {"cats/a.png": png(), "dogs/b.jpg": image_seeds()[5], "dogs/c.gif": image_seeds()[6]}
    stored, deflated = zip_bytes(members, zipfile.ZIP_STORED), zip_bytes(members)
    return [stored, deflated, lie_about_sizes(deflated, 2**32 - 1), lie_about_sizes(stored, 3)]


def test_fuzzed_images_zips_and_arrays_give_images_or_a_dataset_error(tmp_path: Path) -> None:
    rng = random.Random(14)
    specs: list[Path] = []
    for i, seed in enumerate(image_seeds()):
        folder = tmp_path / f"images{i}"
        folder.mkdir()
        for j, data in enumerate(mutants(seed, rng, 60)):
            (folder / f"{j}.png").write_bytes(data)
        specs.append(folder)
    for i, seed in enumerate(zip_seeds()):
        for j, data in enumerate(mutants(seed, rng, 150, header=len(seed))):
            specs.append(tmp_path / f"zip{i}-{j}.zip")
            specs[-1].write_bytes(data)
    for i, (suffix, seed) in enumerate(array_seeds()):
        specs.append(tmp_path / f"array{i}.{suffix}")
        specs[-1].write_bytes(seed)
        for j, data in enumerate(mutants(seed, rng, 20, header=128)):
            specs.append(tmp_path / f"array{i}-{j}.{suffix}")
            specs[-1].write_bytes(data)
    results = limited(specs, kind="decode", timeout=120)
    loaded = sum("count" in r for r in results)
    assert len(results) == len(specs) and 0 < loaded < len(results), (loaded, len(results))
