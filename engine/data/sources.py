"""Dataset sources selected by a spec string: 'builtin:faces[:N]', a folder, a .zip, a .npz/.npy.

A source knows its fingerprint (what identifies its content) and how to decode itself at a
resolution. New kinds ('hf:owner/name') register a scheme with ``register_scheme``.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np

from engine.data.images import decode_image, is_image_name, resize_array
from engine.runs.files import file_digest

MAX_ZIP_ENTRY_BYTES = 256 * 2**20


class DatasetError(ValueError):
    """A dataset spec or file a user supplied cannot be used."""


@dataclass
class Decoded:
    """What a source decodes to at one resolution."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    skipped: list[str] = field(default_factory=list)


@dataclass
class Source:
    """A dataset before decoding: its identity and how to decode it."""

    spec: str
    fingerprint: str
    decode: Callable[[int], Decoded]


_SCHEMES: dict[str, Callable[[str, str], Source]] = {}


def register_scheme(scheme: str) -> Callable[[Callable[[str, str], Source]], Callable[[str, str], Source]]:
    """Register ``fn(spec, rest) -> Source`` for specs starting with ``scheme:``."""

    def add(fn: Callable[[str, str], Source]) -> Callable[[str, str], Source]:
        _SCHEMES[scheme] = fn
        return fn

    return add


def resolve_source(spec: str) -> Source:
    """Turn a dataset spec string into a Source, or raise DatasetError naming the problem."""
    spec = spec.strip()
    if not spec:
        raise DatasetError("empty dataset spec: use builtin:faces, a folder, a .zip or a .npz file")
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in _SCHEMES:
        return _SCHEMES[scheme](spec, rest)
    return _path_source(spec)


@register_scheme("builtin")
def _builtin_source(spec: str, rest: str) -> Source:
    from engine.data import faces

    name, _, count_text = rest.partition(":")
    if name != "faces":
        raise DatasetError(f"unknown built-in dataset {rest!r}: the built-in dataset is builtin:faces[:N]")
    try:
        count = int(count_text) if count_text else 10_000
    except ValueError:
        raise DatasetError(f"bad image count in {spec!r}: use builtin:faces:N with N a number") from None
    if not 1 <= count <= 1_000_000:
        raise DatasetError(f"image count in {spec!r} must be between 1 and 1,000,000")

    def decode(resolution: int) -> Decoded:
        drawn = max(resolution, faces.MIN_RESOLUTION)  # smaller sizes are drawn at the minimum, then shrunk
        try:
            images, labels = faces.render_faces(count, drawn, seed=0)
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        return Decoded(resize_array(images, resolution), labels.astype(np.int64), list(faces.SPECIES))

    return Source(spec, f"builtin-faces-v2-n{count}", decode)


def _path_source(spec: str) -> Source:
    path = Path(spec).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist: check the path, or use builtin:faces")
    if path.is_dir():
        return _folder_source(spec, path)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _zip_source(spec, path)
    if suffix in (".npz", ".npy"):
        return _array_source(spec, path)
    raise DatasetError(f"cannot read dataset {path}: expected a folder of images, a .zip, .npz or .npy file")


def _folder_source(spec: str, root: Path) -> Source:
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if is_image_name(rel):
                files.append((rel, full))
    if not files:
        raise DatasetError(f"no image files (.jpg, .png, …) found in folder {root}")
    digest = hashlib.sha1(b"folder-v1")
    for rel, full in files:
        stat = full.stat()
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())

    def decode(resolution: int) -> Decoded:
        return _decode_named(((rel, full.read_bytes) for rel, full in files), resolution, str(root))

    return Source(spec, f"folder-{digest.hexdigest()[:16]}", decode)


def _safe_zip_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return not (path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0] == "__MACOSX")
                or ":" in name)


def _zip_source(spec: str, path: Path) -> Source:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"cannot open zip file {path}: {exc}; is it a valid .zip?") from exc
    usable = sorted((i.filename for i in infos if _safe_zip_name(i.filename) and is_image_name(i.filename)
                     and i.file_size <= MAX_ZIP_ENTRY_BYTES))
    if not usable:
        raise DatasetError(f"no usable image files (.jpg, .png, …) inside zip file {path}")

    def decode(resolution: int) -> Decoded:
        with zipfile.ZipFile(path) as archive:
            def reader(name: str) -> Callable[[], bytes]:
                return lambda: archive.read(name)
            return _decode_named(((n, reader(n)) for n in usable), resolution, str(path), threads=1)

    return Source(spec, f"zip-{file_digest(path)[:16]}", decode)


def _array_source(spec: str, path: Path) -> Source:
    def decode(resolution: int) -> Decoded:
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read array file {path}: {exc}") from exc
        labels = None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                keys = list(loaded.keys())
                if not keys:
                    raise DatasetError(f"array file {path} is empty")
                images = loaded["images"] if "images" in keys else loaded[keys[0]]
                labels = loaded["labels"] if "labels" in keys else None
        else:
            images = loaded
        images = _as_nhwc_uint8(images, path)
        if labels is None or len(labels) != len(images):
            labels = np.zeros(len(images), dtype=np.int64)
        labels = labels.astype(np.int64)
        names = [str(i) for i in range(int(labels.max()) + 1)] if labels.any() else []
        return Decoded(resize_array(images, resolution), labels, names)

    return Source(spec, f"array-{file_digest(path)[:16]}", decode)


def _as_nhwc_uint8(images: np.ndarray, path: Path) -> np.ndarray:
    if images.dtype != np.uint8:
        raise DatasetError(f"array in {path} has dtype {images.dtype}; expected uint8 images (N×H×W×3)")
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=3)
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[3] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)
    if images.ndim != 4 or images.shape[3] not in (1, 3) or len(images) == 0:
        raise DatasetError(f"array in {path} has shape {images.shape}; expected N×H×W×3 uint8 images")
    if images.shape[3] == 1:
        images = np.repeat(images, 3, axis=3)
    return images


def _decode_named(items: Iterable[tuple[str, Callable[[], bytes]]], resolution: int, where: str,
                  threads: int | None = None) -> Decoded:
    """Decode (relative name, byte reader) pairs; first-level folders become class labels."""
    items = list(items)

    def work(item: tuple[str, Callable[[], bytes]]) -> np.ndarray | None:
        try:
            data = item[1]()
        except (OSError, KeyError, RuntimeError, zipfile.BadZipFile):
            return None
        return decode_image(data, resolution)

    workers = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = list(pool.map(work, items))
    kept = [(name, im) for (name, _), im in zip(items, decoded) if im is not None]
    skipped = [name for (name, _), im in zip(items, decoded) if im is None]
    if not kept:
        raise DatasetError(f"no usable images in {where}: all {len(items)} files failed to decode")
    groups = [PurePosixPath(name).parts[0] if len(PurePosixPath(name).parts) > 1 else "." for name, _ in kept]
    class_names = sorted(set(groups)) if set(groups) != {"."} else []
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.array([index.get(g, 0) for g in groups], dtype=np.int64)
    return Decoded(np.stack([im for _, im in kept]), labels, class_names, skipped)
