"""Hub datasets ('hf:owner/name[:split]') from parquet files served by the local Hub server."""

from __future__ import annotations

import io
import json
import time
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import engine
from engine.cli import main
from engine.data import DatasetError, load_dataset
from engine.data.hub_source import CONVERTED, split_files
from tests.hub_server import HubServer

pytest_plugins = ["tests.hub_helpers"]  # fixtures: hub, go_offline

CLASSES = ["cat", "dog", "wild"]
COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220)]


def png(colour: tuple[int, int, int], size: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def parquet(labels: list[int], with_features: bool = True, string_labels: bool = False) -> bytes:
    """A parquet file as `datasets` writes it: an Image struct column and a ClassLabel column."""
    images = pa.array([{"bytes": png(COLOURS[i]), "path": f"{i}.png"} for i in labels],
                      pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    label = pa.array([CLASSES[i] for i in labels]) if string_labels else pa.array(labels, pa.int64())
    table = pa.table({"image": images, "label": label})
    if with_features:
        features = {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": CLASSES}}
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@pytest.fixture
def afhq(hub: HubServer) -> str:
    hub.add_repo("dataset", "huggan/toy", {
        "README.md": b"---\nlicense: cc\n---\n# toy",
        "data/train-00000-of-00002.parquet": parquet([0, 1, 2, 0, 1]),
        "data/train-00001-of-00002.parquet": parquet([2, 2, 0, 1]),
        "data/test-00000-of-00001.parquet": parquet([1, 1]),
    })
    return "hf:huggan/toy"


def test_hub_dataset_loads_with_class_labels_and_splits(hub: HubServer, afhq: str) -> None:
    data = load_dataset(afhq, 32)
    assert data.images.shape == (9, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.class_names == CLASSES
    assert data.labels.tolist() == [0, 1, 2, 0, 1, 2, 2, 0, 1]
    assert np.abs(data.images[1, 16, 16].astype(int) - COLOURS[1]).max() < 3
    assert data.fingerprint.startswith("hf-huggan--toy-train-")
    test = load_dataset(f"{afhq}:test", 32)
    assert len(test) == 2 and test.labels.tolist() == [1, 1]
    downloads = [r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]
    assert len(downloads) == 3 and not any("README" in path for path in downloads)

    with pytest.raises(DatasetError, match="no parquet files for the split 'validation'"):
        load_dataset(f"{afhq}:validation", 32)
    with pytest.raises(DatasetError, match="there is no dataset repo huggan/absent"):
        load_dataset("hf:huggan/absent", 32)
    with pytest.raises(DatasetError, match="not a dataset repo id"):
        load_dataset("hf:toy", 32)
    with pytest.raises(DatasetError, match="not a split name"):
        load_dataset(f"{afhq}:../x", 32)


def test_hub_dataset_works_offline_once_downloaded(hub: HubServer, afhq: str, go_offline: Callable) -> None:
    online = load_dataset(afhq, 32)
    go_offline()
    seen = len(hub.requests)
    again = load_dataset(afhq, 32)  # from the uint8 cache
    smaller = load_dataset(afhq, 16)  # decoded again from the Hub cache
    assert again.fingerprint == online.fingerprint and np.array_equal(again.images, online.images)
    assert smaller.images.shape == (9, 16, 16, 3) and smaller.class_names == CLASSES
    assert len(hub.requests) == seen
    start = time.monotonic()
    with pytest.raises(DatasetError, match="not been downloaded on this machine.*HF_HUB_OFFLINE"):
        load_dataset("hf:huggan/other", 32)
    assert time.monotonic() - start < 2


def test_the_hubs_parquet_conversion_is_used_when_the_repo_has_none(hub: HubServer) -> None:
    hub.add_repo("dataset", "someone/jpegs", {"images/a.jpg": b"...", "README.md": b"# jpegs"})
    hub.add_repo("dataset", "someone/jpegs", {
        "default/train/0000.parquet": parquet([2, 0, 2], with_features=False, string_labels=True),
        "other/train/0000.parquet": parquet([1]),
    }, branch=CONVERTED)
    data = load_dataset("hf:someone/jpegs", 32)
    assert len(data) == 3 and data.class_names == ["cat", "wild"] and data.labels.tolist() == [1, 0, 1]
    assert any("refs%2Fconvert%2Fparquet" in r.path for r in hub.requests)


def test_split_file_names_follow_the_hub_convention() -> None:
    files = ["data/train-00000-of-00002.parquet", "data/validation-0.parquet", "train/x.parquet",
             "trained/y.parquet", "README.md"]
    assert split_files(files, "train") == ["data/train-00000-of-00002.parquet", "train/x.parquet"]
    assert split_files(files, "validation") == ["data/validation-0.parquet"]
    assert split_files(["a.parquet", "b.parquet"], "train") == ["a.parquet", "b.parquet"]
    assert split_files(["a.parquet"], "test") == []


def test_training_on_a_hub_dataset_is_like_a_local_one(hub: HubServer, afhq: str, tmp_path) -> None:
    run = tmp_path / "run"
    assert main(["train", "--dataset", afhq, "--resolution", "32", "--batch-size", "4", "--max-steps", "2",
                 "--run-dir", str(run), "--device", "cpu", "--no-progress", "--set", "model.options.ngf=4",
                 "--set", "model.options.ndf=4"]) == 0
    assert engine.Run(run).status()["state"] == "finished"
    assert engine.Run(run).config().data.spec == afhq
