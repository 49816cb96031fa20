"""Hugging Face Hub datasets: 'hf:owner/name[:split]'. The split's parquet files (the repo's own, else the Hub's
parquet conversion) are downloaded once into the Hub cache and decoded once into the uint8 cache; labels come
from the dataset's class column. Offline, a dataset downloaded before still loads.

A Hub dataset is untrusted input like a local file, under the limits of ``engine.data.sources``: the
decoded size is checked from the row count in the parquet metadata before decoding, images over the
pixel limit are skipped, and labels are capped at ``MAX_CLASSES`` (plain integer labels are
renumbered 0..K-1, their values becoming the class names)."""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import RevisionNotFoundError

from engine.base.environment import cache_dir
from engine.base.files import atomic_write_json, read_json
from engine.data.errors import DatasetError
from engine.data.images import decode_image
from engine.data.sources import (Decoded, Source, check_classes, check_decoded_size, compact_labels,
                                 register_scheme)
from engine.hf.client import api, check_repo_id, reachable
from engine.hf.errors import NETWORK_ERRORS, HubError, hub_error
from engine.hf.token import resolve_token

DEFAULT_SPLIT = "train"
CONVERTED = "refs/convert/parquet"  # the branch where the Hub keeps a parquet copy of every public dataset
SPLIT_WORDS = ("train", "test", "validation", "valid", "val", "dev", "eval")
LABEL_NAMES = ("label", "labels", "class", "category")
BATCH_ROWS = 256

@dataclass(frozen=True)
class Located:
    """Which parquet files of which commit hold a split."""

    repo_id: str
    split: str
    commit: str
    files: list[str]


@register_scheme("hf")
def hub_source(spec: str, rest: str) -> Source:
    """'hf:owner/name[:split]' (default split 'train')."""
    name, _, split = rest.partition(":")
    try:
        repo_id = check_repo_id(name, "dataset")
    except HubError as exc:
        raise DatasetError(f"{spec}: {exc} (for example hf:huggan/AFHQ or hf:huggan/AFHQ:train)") from None
    if split and not re.fullmatch(r"\w[\w.-]*", split):
        raise DatasetError(f"{spec}: {split!r} is not a split name (train, test, validation, …)")
    located = locate(repo_id, split or DEFAULT_SPLIT)
    fingerprint = f"hf-{repo_id.replace('/', '--')}-{located.split}-{located.commit[:12]}"
    return Source(spec, fingerprint, lambda resolution: decode_parquet(download(located), resolution, spec))


def _manifest(repo_id: str, split: str) -> Path:
    return cache_dir() / "hub-datasets" / f"{repo_id.replace('/', '--')}--{split}.json"


def locate(repo_id: str, split: str) -> Located:
    """The split's files at the current commit (asked of the Hub), or as last seen when the Hub is unreachable."""
    reason = reachable()
    if reason:
        try:
            return Located(**read_json(_manifest(repo_id, split)))
        except (OSError, ValueError, TypeError):
            raise DatasetError(f"hf:{repo_id} (split {split}) has not been downloaded on this machine and the "
                               f"Hugging Face Hub cannot be reached ({reason}); connect to the internet once to "
                               "download it") from None
    token = resolve_token()
    client = api(token)
    try:
        info = client.dataset_info(repo_id)
        commit, files = info.sha, split_files([s.rfilename for s in info.siblings or []], split)
        if not files:
            commit, files = _converted(client, repo_id, split)
    except NETWORK_ERRORS as exc:
        message = hub_error(exc, f"read the dataset hf:{repo_id}", repo_id, token, kind="dataset")
        raise DatasetError(str(message)) from exc
    if not files or not commit:
        raise DatasetError(f"hf:{repo_id} has no parquet files for the split {split!r}; check the split name "
                           f"(hf:{repo_id}:train, :test, …) on the dataset's Hub page")
    located = Located(repo_id, split, commit, files)
    atomic_write_json(_manifest(repo_id, split), asdict(located))
    return located


def _converted(client: HfApi, repo_id: str, split: str) -> tuple[str | None, list[str]]:
    """The split's files in the Hub's parquet conversion, if the dataset has one."""
    try:
        info = client.dataset_info(repo_id, revision=CONVERTED)
    except RevisionNotFoundError:
        return None, []
    return info.sha, one_config(split_files([s.rfilename for s in info.siblings or []], split))


def split_files(paths: list[str], split: str) -> list[str]:
    """Parquet files of ``split`` by the Hub's naming convention (a file naming no split counts as train)."""
    parquet = sorted(p for p in paths if p.endswith(".parquet"))

    def names(path: str, words: tuple[str, ...]) -> bool:
        pattern = rf"(^|[/_.-])({'|'.join(map(re.escape, words))})([/_.-]|$)"
        return re.search(pattern, path.removesuffix(".parquet")) is not None

    matched = [p for p in parquet if names(p, (split,))]
    if matched or split != DEFAULT_SPLIT:
        return matched
    return [p for p in parquet if not names(p, SPLIT_WORDS)]


def one_config(paths: list[str]) -> list[str]:
    """In the parquet conversion (config/split/NNNN.parquet) keep one config: 'default', else the first."""
    configs = sorted({p.split("/", 1)[0] for p in paths})
    if len(configs) <= 1:
        return paths
    chosen = "default" if "default" in configs else configs[0]
    return [p for p in paths if p.split("/", 1)[0] == chosen]


def download(located: Located) -> list[Path]:
    """Local paths of the split's files, downloaded into the Hub cache unless already there."""
    token = resolve_token()
    cached_only = reachable() is not None  # unreachable: use the cache at once instead of retrying
    paths = []
    for name in located.files:
        try:
            paths.append(Path(hf_hub_download(located.repo_id, name, repo_type="dataset", revision=located.commit,
                                              token=token or False, local_files_only=cached_only)))
        except NETWORK_ERRORS as exc:
            message = hub_error(exc, f"download {name} of hf:{located.repo_id}", located.repo_id, token,
                                kind="dataset")
            raise DatasetError(str(message)) from exc
    return paths


def decode_parquet(paths: list[Path], resolution: int, where: str) -> Decoded:
    """Decode the image column of parquet files; the class column (ClassLabel, ints or strings) gives labels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(paths[0])
    features = _features(schema)
    image_column = _image_column(schema, features, where)
    label_column, class_names = _label_column(schema, features)
    check_classes(len(class_names), where)
    columns = [image_column] + ([label_column] if label_column else [])
    files = [pq.ParquetFile(path) for path in paths]
    rows = sum(file.metadata.num_rows for file in files)
    check_decoded_size(rows, resolution, where)
    images = np.empty((rows, resolution, resolution, 3), np.uint8)
    raw_labels: list[Any] = []
    skipped: list[str] = []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for path, file in zip(paths, files):
            row = 0
            for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                column = batch.column(image_column)
                blobs = column.field("bytes").to_pylist() if pa.types.is_struct(column.type) else column.to_pylist()
                labels = batch.column(label_column).to_pylist() if label_column else [0] * len(blobs)
                decoded = pool.map(lambda data: decode_image(data, resolution) if data else None, blobs)
                for i, (image, label) in enumerate(zip(decoded, labels)):
                    if image is None:
                        skipped.append(f"{path.name} row {row + i}")
                    elif len(raw_labels) == rows:
                        raise DatasetError(f"{where}: {path.name} holds more rows than its metadata declares")
                    else:
                        images[len(raw_labels)] = image
                        raw_labels.append(label)
                row += len(blobs)
    if not raw_labels:
        raise DatasetError(f"no usable images in {where}: all {len(skipped)} rows failed to decode")
    images.resize((len(raw_labels), resolution, resolution, 3), refcheck=False)
    labels, class_names = _labels(raw_labels, class_names, where)
    return Decoded(images, labels, class_names, skipped)


def _features(schema: Any) -> dict[str, Any]:
    """The `datasets` features stored in the parquet metadata ({} when absent or unreadable)."""
    try:
        features = json.loads((schema.metadata or {})[b"huggingface"])["info"]["features"]
    except (KeyError, ValueError, TypeError):
        return {}
    return features if isinstance(features, dict) else {}


def _image_column(schema: Any, features: dict[str, Any], where: str) -> str:
    import pyarrow as pa

    for name, feature in features.items():
        if isinstance(feature, dict) and feature.get("_type") == "Image" and name in schema.names:
            return name
    for field in schema:
        if pa.types.is_struct(field.type) and field.type.get_field_index("bytes") >= 0:
            return field.name
    for field in schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            return field.name
    raise DatasetError(f"{where} has no image column: expected an Image feature (a struct with 'bytes') or a "
                       f"binary column, found {', '.join(schema.names)}")


def _label_column(schema: Any, features: dict[str, Any]) -> tuple[str | None, list[str]]:
    import pyarrow as pa

    for name, feature in features.items():
        if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and name in schema.names:
            return name, [str(n) for n in feature.get("names") or []]
    for field in schema:
        if field.name.lower() in LABEL_NAMES and (pa.types.is_integer(field.type) or pa.types.is_string(field.type)):
            return field.name, []
    return None, []


def _labels(raw: list[Any], class_names: list[str], where: str) -> tuple[np.ndarray, list[str]]:
    """int64 labels and their names: ClassLabel names as given (-1, no label, counts as the first), strings
    sorted, bare integers renumbered 0..K-1 with their values as names; a missing label counts as the first."""
    if any(isinstance(value, str) for value in raw):
        class_names = sorted({str(value) for value in raw if value is not None})
        check_classes(len(class_names), where)
        index = {name: i for i, name in enumerate(class_names)}
        return np.array([index.get(str(value), 0) for value in raw], np.int64), class_names
    try:
        values = np.array([value if isinstance(value, int) else 0 for value in raw], np.int64)
    except OverflowError:
        raise DatasetError(f"{where} has labels beyond 64-bit integers: labels must be class numbers") from None
    if not class_names:
        return compact_labels(values, f"the labels of {where}")
    outside = values[values >= len(class_names)]
    if len(outside):
        raise DatasetError(f"{where} has label {int(outside[0])} but its class column names only {len(class_names)} "
                           "classes: the dataset's labels do not match its features")
    return np.maximum(values, 0), class_names
