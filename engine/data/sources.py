"""Dataset sources selected by a spec string: 'builtin:faces[:N]', a folder, a .zip, a .npz/.npy.

A source knows its fingerprint (what identifies its content) and how to decode itself at a
resolution. New kinds ('hf:owner/name') register a scheme with ``register_scheme``.

Dataset files are untrusted input: a few kilobytes can declare gigabytes. What one may cost is
checked before it is spent, against limits that an environment variable of the same name
(prefixed GAN_STUDIO_) raises for a power user:

- ``MAX_FILE_BYTES`` (64 MiB): one image file, in a folder or a zip. Larger ones are skipped and
  named in ``Decoded.skipped``; no picture worth training on is that large.
- ``MAX_ZIP_BYTES`` (4 GiB): all that is unpacked from one zip. The members (in name order) from
  the one that would pass it on are skipped and named; a zip bomb stops there.
- ``MAX_ZIP_DIRECTORY_BYTES`` (32 MiB): a zip's table of contents, parsed into memory (about 12
  bytes for each of its bytes) before anything else; enough for some 400,000 files.
- ``MAX_ARRAY_BYTES`` (4 GiB): one array in an .npz/.npy, read whole into memory. Its shape and
  dtype are checked from the .npy header first: only uint8 images of 1 or 3 channels, and integer
  labels, one per image; never Python objects.
- ``MAX_CLASSES`` (1000, ImageNet's count): distinct class labels. Labels of arrays and Hub
  datasets are renumbered 0..K-1 (their values become the class names), so any integers work.
- ``MAX_DATASET_BYTES`` (half this machine's memory): the decoded images, N × resolution² × 3
  bytes, checked from the file count before decoding.
- ``images.MAX_IMAGE_PIXELS``: one picture's pixels, from its header.

A file, a zip member or a picture dropped by a limit is skipped and named ('name (why)'); any other
limit passed is a DatasetError naming the file, the limit, its variable and what to do instead.
Fingerprints carry a tag of the limits that change what a decode holds when they are not the
defaults, so a decode made under other limits is never taken from the cache.

Only regular files are read: a pipe, device or socket is refused without opening it for reading
(a FIFO would block forever, /dev/zero never ends), and a symbolic link in a folder is followed
only to a file inside that folder. Zip members that are symbolic links are skipped.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
import struct
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterable

import numpy as np
from numpy.lib import format as npy_format

from engine.base.files import file_digest
from engine.data.errors import DatasetError
from engine.data.images import MAX_IMAGE_PIXELS, Limit, decode_image, format_bytes, is_image_name, resize_array


def _half_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, OSError, ValueError):
        return 8 * 2**30


MAX_FILE_BYTES = Limit("GAN_STUDIO_MAX_FILE_BYTES", 64 * 2**20)
MAX_ZIP_BYTES = Limit("GAN_STUDIO_MAX_ZIP_BYTES", 4 * 2**30)
MAX_ZIP_DIRECTORY_BYTES = Limit("GAN_STUDIO_MAX_ZIP_DIRECTORY_BYTES", 32 * 2**20)
MAX_ARRAY_BYTES = Limit("GAN_STUDIO_MAX_ARRAY_BYTES", 4 * 2**30)
MAX_CLASSES = Limit("GAN_STUDIO_MAX_CLASSES", 1000)
MAX_DATASET_BYTES = Limit("GAN_STUDIO_MAX_DATASET_BYTES", _half_memory())
CONTENT_LIMITS = (MAX_FILE_BYTES, MAX_ZIP_BYTES, MAX_IMAGE_PIXELS)  # the limits that change what a decode holds

# What reading a corrupt or hostile archive member or array can raise (zlib, zipfile, numpy's header parser).
READ_ERRORS = (OSError, EOFError, RuntimeError, ValueError, TypeError, SyntaxError, struct.error, zlib.error,
               zipfile.BadZipFile, OverflowError, MemoryError)


class Unusable(Exception):
    """A file that is skipped for a reason worth naming (the message)."""


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
    source = _SCHEMES[scheme](spec, rest) if sep and scheme in _SCHEMES else _path_source(spec)
    tag = _limits_tag()
    return replace(source, fingerprint=source.fingerprint + tag) if tag else source


def _limits_tag() -> str:
    """'' under the default limits, else a tag of the ``CONTENT_LIMITS`` in force: a decode made under other
    limits (holding fewer files, say) is then not taken from the cache."""
    values = [limit.get() for limit in CONTENT_LIMITS]
    if values == [limit.default for limit in CONTENT_LIMITS]:
        return ""
    return "-limits-" + hashlib.sha1(repr(values).encode()).hexdigest()[:8]


def check_decoded_size(count: int, resolution: int, where: str) -> None:
    """Refuse a dataset whose decoded images would pass ``MAX_DATASET_BYTES``."""
    need, cap = count * resolution * resolution * 3, MAX_DATASET_BYTES.get()
    if need > cap:
        raise DatasetError(f"{where}: {count:,} images at {resolution} px would take {format_bytes(need)} of memory, "
                           f"more than the limit of {format_bytes(cap)} (by default half this machine's memory; "
                           f"{MAX_DATASET_BYTES.env} sets it): choose a lower resolution or fewer images")


def check_classes(count: int, where: str) -> None:
    """Refuse more than ``MAX_CLASSES`` classes."""
    cap = MAX_CLASSES.get()
    if count > cap:
        raise DatasetError(f"{where} has {count:,} classes, more than the limit of {cap:,}: labels must be class "
                           f"numbers, not ids of single images ({MAX_CLASSES.env} raises the limit)")


def compact_labels(values: np.ndarray, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer labels renumbered 0..K-1 in sorted order, and their original values as class names
    (no names when there is one class only: a single class labels nothing)."""
    classes, labels = np.unique(values, return_inverse=True)
    check_classes(len(classes), where)
    names = [str(value) for value in classes.tolist()] if len(classes) > 1 else []
    return labels.reshape(-1).astype(np.int64), names


@register_scheme("builtin")
def _builtin_source(spec: str, rest: str) -> Source:
    from engine.data import faces  # on use: `python -m engine.data.faces` workers must not find it imported

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
        check_decoded_size(count, drawn, spec)
        try:
            images, labels = faces.render_faces(count, drawn, seed=0)
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        return Decoded(resize_array(images, resolution), labels.astype(np.int64), list(faces.SPECIES))

    return Source(spec, f"builtin-faces-v2-n{count}", decode)


def _path_source(spec: str) -> Source:
    path = Path(spec).expanduser()
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetError(f"dataset path {path} does not exist: check the path, or use builtin:faces") from None
    except OSError as exc:
        raise DatasetError(f"cannot read dataset path {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        return _folder_source(spec, path)
    if not stat.S_ISREG(mode):
        raise DatasetError(f"dataset path {path} is not a regular file: a pipe, device or socket cannot be read as "
                           "a dataset; give a folder of images, a .zip, .npz or .npy file")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _zip_source(spec, path)
    if suffix in (".npz", ".npy"):
        return _array_source(spec, path)
    raise DatasetError(f"cannot read dataset {path}: expected a folder of images, a .zip, .npz or .npy file")


def _shown(names: list[str], count: int = 5) -> str:
    return ", ".join(names[:count]) + (f" and {len(names) - count} more" if len(names) > count else "")


def _folder_source(spec: str, root: Path) -> Source:
    files, refused = _folder_files(root)
    if refused and not files:
        raise DatasetError(f"no readable image files in folder {root}: {_shown(refused)}")
    if not files:
        raise DatasetError(f"no image files (.jpg, .png, …) found in folder {root}")
    digest = hashlib.sha1(b"folder-v1")
    for rel, _, info in files:
        digest.update(f"{rel}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())

    def decode(resolution: int) -> Decoded:
        cap = MAX_FILE_BYTES.get()

        def reader(path: Path) -> Callable[[], bytes]:
            return lambda: _read_file(path, cap)

        return _decode_named(((rel, reader(path)) for rel, path, _ in files), resolution, str(root), refused=refused)

    return Source(spec, f"folder-{digest.hexdigest()[:16]}", decode)


def _folder_files(root: Path) -> tuple[list[tuple[str, Path, os.stat_result]], list[str]]:
    """Image files under ``root`` that may be read (name, path to read, stat), and 'name (why)' for the others."""
    inside = root.resolve()
    files, refused = [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if not is_image_name(rel):
                continue
            try:
                target = full.resolve(strict=True) if full.is_symlink() else full
                info = target.stat()
            except (OSError, RuntimeError):
                refused.append(f"{rel} (cannot be read)")
                continue
            if target is not full and not target.is_relative_to(inside):
                refused.append(f"{rel} (a link to outside the folder)")
            elif not stat.S_ISREG(info.st_mode):
                refused.append(f"{rel} (not a regular file)")
            else:
                files.append((rel, target, info))
    return files, refused


def _read_file(path: Path, cap: int) -> bytes:
    """A regular file's bytes, at most ``cap``; anything else is refused without blocking on it."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(path, flags), "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise Unusable("not a regular file")
        return _read_capped(handle, cap)


def _read_capped(handle: IO[bytes], cap: int) -> bytes:
    data = handle.read(cap + 1)
    if len(data) > cap:
        raise Unusable(f"larger than {format_bytes(cap)}")
    return data


def _safe_zip_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return not (path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0] == "__MACOSX")
                or ":" in name)


def _zip_directory_bytes(handle: IO[bytes]) -> int:
    """How many bytes of table of contents ``zipfile`` would parse (found as it finds it: from the end record)."""
    size = handle.seek(0, os.SEEK_END)
    start = max(0, size - (1 << 16) - 22)
    handle.seek(start)
    tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return 0
    declared = int.from_bytes(tail[at + 12:at + 16], "little")
    if at >= 76 and tail[at - 20:at - 16] == b"PK\x06\x07" and tail[at - 76:at - 72] == b"PK\x06\x06":
        declared = max(declared, int.from_bytes(tail[at - 36:at - 28], "little"))  # the zip64 record's size
    return min(declared, size)


def _open_zip(path: Path) -> zipfile.ZipFile:
    """The zip at ``path`` if its table of contents is within ``MAX_ZIP_DIRECTORY_BYTES``, else DatasetError."""
    cap = MAX_ZIP_DIRECTORY_BYTES.get()
    try:
        with open(path, "rb") as handle:
            directory = _zip_directory_bytes(handle)
        if directory > cap:
            raise DatasetError(f"zip file {path} lists too many files: its table of contents takes "
                               f"{format_bytes(directory)}, more than the limit of {format_bytes(cap)} (some 400,000 "
                               f"files; {MAX_ZIP_DIRECTORY_BYTES.env} raises it)")
        return zipfile.ZipFile(path)
    except DatasetError:
        raise
    except READ_ERRORS as exc:
        raise DatasetError(f"cannot open zip file {path}: {exc}; is it a valid .zip?") from exc


def _zip_plan(infos: list[zipfile.ZipInfo]) -> tuple[list[zipfile.ZipInfo], list[str]]:
    """The image members to read, in name order within the limits, and 'name (why)' for those skipped."""
    per_file, total_cap = MAX_FILE_BYTES.get(), MAX_ZIP_BYTES.get()
    usable, refused, total = [], [], 0
    for info in sorted(infos, key=lambda i: i.filename):
        if info.is_dir() or not _safe_zip_name(info.filename) or not is_image_name(info.filename):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            refused.append(f"{info.filename} (a symbolic link)")
        elif info.file_size > per_file:
            refused.append(f"{info.filename} (larger than {format_bytes(per_file)})")
        elif total + info.file_size > total_cap:
            total = total_cap + 1  # stop here: what follows is skipped too, even if small
            refused.append(f"{info.filename} (past the {format_bytes(total_cap)} one zip may unpack to; "
                           f"{MAX_ZIP_BYTES.env} raises it)")
        else:
            usable.append(info)
            total += info.file_size
    return usable, refused


def _zip_source(spec: str, path: Path) -> Source:
    with _open_zip(path) as archive:
        usable, refused = _zip_plan(archive.infolist())
    if not usable:
        found = f": {_shown(refused)}" if refused else ""
        raise DatasetError(f"no usable image files (.jpg, .png, …) inside zip file {path}{found}")

    def decode(resolution: int) -> Decoded:
        cap = MAX_FILE_BYTES.get()
        with _open_zip(path) as archive:
            def reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
                def read() -> bytes:
                    with archive.open(info) as member:
                        return _read_capped(member, cap)
                return read
            return _decode_named(((i.filename, reader(i)) for i in usable), resolution, str(path), threads=1,
                                 refused=refused)

    return Source(spec, f"zip-{file_digest(path)[:16]}", decode)


def _array_source(spec: str, path: Path) -> Source:
    def decode(resolution: int) -> Decoded:
        if path.suffix.lower() == ".npz":
            images, labels = _read_npz(path, resolution)
        else:
            with open(path, "rb") as handle:
                images, labels = _read_npy(handle, f"the array in {path}", _images_check(resolution)), None
        class_labels, names = (np.zeros(len(images), np.int64), []) if labels is None else compact_labels(
            labels, f"the labels in {path}")
        resized = resize_array(_frames(images), resolution)
        rgb = resized if resized.ndim == 4 else np.repeat(resized[..., None], 3, axis=3)
        return Decoded(rgb, class_labels, names)

    return Source(spec, f"array-{file_digest(path)[:16]}", decode)


def _read_npz(path: Path, resolution: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The images (the 'images' array, else the first) and the 'labels' array if there is one."""
    with _open_zip(path) as archive:
        members = {i.filename.removesuffix(".npy"): i for i in archive.infolist() if i.filename.endswith(".npy")}
        if not members:
            raise DatasetError(f"array file {path} holds no arrays")
        key = "images" if "images" in members else next(iter(members))
        images = _read_member(archive, members[key], f"the array {key!r} in {path}", _images_check(resolution))
        if "labels" not in members:
            return images, None
        return images, _read_member(archive, members["labels"], f"the labels array in {path}",
                                 _labels_check(len(images)))


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                 check: Callable[[tuple[int, ...], np.dtype, str], None]) -> np.ndarray:
    try:
        with archive.open(info) as member:
            return _read_npy(member, where, check)
    except DatasetError:
        raise
    except READ_ERRORS as exc:
        raise DatasetError(f"cannot read {where}: {exc}") from exc


def _read_npy(handle: IO[bytes], where: str, check: Callable[[tuple[int, ...], np.dtype, str], None]) -> np.ndarray:
    """An array in .npy format, its header checked (by ``check`` and ``MAX_ARRAY_BYTES``) before any data is read."""
    try:
        version = npy_format.read_magic(handle)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy format version {version}")
        read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(handle)
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many kinds on a hostile header
        raise DatasetError(f"cannot read {where}: {exc}") from exc
    check(shape, dtype, where)
    size, cap = math.prod(shape) * dtype.itemsize, MAX_ARRAY_BYTES.get()
    if size > cap:
        raise DatasetError(f"{where} has shape {shape}: {format_bytes(size)}, more than the limit of "
                           f"{format_bytes(cap)} for an array file ({MAX_ARRAY_BYTES.env} raises it); for more "
                           "images use a folder or a .zip of image files")
    data = _read_exactly(handle, size, where)
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")


def _read_exactly(handle: IO[bytes], size: int, where: str) -> bytearray:
    """``size`` bytes, read in blocks (memory grows with what is really there, not with what a header claims)."""
    data = bytearray()
    try:
        while len(data) < size:
            block = handle.read(min(size - len(data), 1 << 24))
            if not block:
                raise DatasetError(f"{where} is cut short: {len(data):,} of its {size:,} bytes are there")
            data += block
    except DatasetError:
        raise
    except READ_ERRORS as exc:
        raise DatasetError(f"cannot read {where}: {exc}") from exc
    return data


def _layout(shape: tuple[int, ...]) -> str | None:
    """'NHW', 'NHWC' or 'NCHW' for a shape of grey, 1- or 3-channel images; None for any other shape."""
    if not shape or min(shape) < 1:
        return None
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4 and shape[3] in (1, 3):
        return "NHWC"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "NCHW"
    return None


def _images_check(resolution: int) -> Callable[[tuple[int, ...], np.dtype, str], None]:
    def check(shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
        if dtype != np.uint8:
            raise DatasetError(f"{where} has dtype {dtype}; expected uint8 images (N×H×W×3)")
        layout = _layout(shape)
        if layout is None:
            raise DatasetError(f"{where} has shape {shape}; expected N×H×W×3 uint8 images")
        height, width = shape[2:4] if layout == "NCHW" else shape[1:3]
        if height * width > MAX_IMAGE_PIXELS.get():
            raise DatasetError(f"{where} holds {height}×{width} images, more than the limit of "
                               f"{MAX_IMAGE_PIXELS.get():,} pixels ({MAX_IMAGE_PIXELS.env} raises it)")
        check_decoded_size(shape[0], resolution, where)

    return check


def _labels_check(count: int) -> Callable[[tuple[int, ...], np.dtype, str], None]:
    def check(shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
        if dtype.kind not in "iub":
            raise DatasetError(f"{where} has dtype {dtype}; expected integer class numbers")
        if shape != (count,):
            raise DatasetError(f"{where} has shape {shape}; expected ({count},): one label per image")

    return check


def _frames(images: np.ndarray) -> np.ndarray:
    """N×H×W×3 or grey N×H×W views of images of a checked layout."""
    if _layout(images.shape) == "NCHW":
        images = images.transpose(0, 2, 3, 1)
    return images[..., 0] if images.ndim == 4 and images.shape[3] == 1 else images


def _decode_one(read: Callable[[], bytes], resolution: int) -> tuple[np.ndarray | None, str]:
    """The image, or None and why (empty when the file simply is not a readable image)."""
    try:
        data = read()
    except Unusable as exc:
        return None, str(exc)
    except READ_ERRORS:
        return None, ""
    return decode_image(data, resolution), ""


def _decode_named(items: Iterable[tuple[str, Callable[[], bytes]]], resolution: int, where: str,
                  threads: int | None = None, refused: Iterable[str] = ()) -> Decoded:
    """Decode (relative name, byte reader) pairs; first-level folders become class labels.

    ``refused`` names files already ruled out; they join the skipped ones, each skipped for a
    reason worth naming written 'name (why)'."""
    items = list(items)
    check_decoded_size(len(items), resolution, where)
    out = np.empty((len(items), resolution, resolution, 3), np.uint8)
    kept: list[str] = []
    skipped = list(refused)
    workers = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for (name, _), (image, why) in zip(items, pool.map(lambda item: _decode_one(item[1], resolution), items)):
            if image is None:
                skipped.append(f"{name} ({why})" if why else name)
            else:
                out[len(kept)] = image
                kept.append(name)
    if not kept:
        raise DatasetError(f"no usable images in {where}: all {len(items)} files failed to decode "
                           f"(skipped: {_shown(skipped)})")
    if len(kept) < len(items):
        out.resize((len(kept), resolution, resolution, 3), refcheck=False)
    groups = [PurePosixPath(name).parts[0] if len(PurePosixPath(name).parts) > 1 else "." for name in kept]
    class_names = sorted(set(groups)) if set(groups) != {"."} else []
    check_classes(len(class_names), f"{where} (its first-level folders are the classes)")
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.array([index.get(g, 0) for g in groups], dtype=np.int64)
    return Decoded(out, labels, class_names, skipped)
