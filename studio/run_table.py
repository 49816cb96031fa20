"""What the studio shows of a run: its summary row, the kind of model it trains, and its generator as a
download."""

from __future__ import annotations

import functools
import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import engine
from engine import metrics
from engine.base import records
from studio import charts


def model_kind(run: engine.Run) -> str:
    """How the run's model trains (``records.MODEL_KINDS``), which says what its training lines hold: as
    the run recorded it, else (a run from before that) from its model's registry entry; adversarial when
    neither says."""
    recorded = run.model_kind()
    if recorded is not None:
        return recorded
    try:
        info = engine.get_model(run.config().model.name)
    except engine.ConfigError:
        return records.ADVERSARIAL
    return records.AUTOENCODER if info.capabilities.step == records.AUTOENCODER else records.ADVERSARIAL


def best_metric(lines: list[dict[str, Any]], output: str) -> str:
    """'FID-2k 23.4': the best value of the run's ranking metric (``metrics.best_metric``), or ''."""
    keys = [k for k in charts.metric_names(lines) if metrics.output_of(k) == output]
    if not keys:
        return ""
    key = keys[-1]
    values = [r.values[key] for r in records.eval_records(lines) if key in r.values]
    try:
        best = min(values) if metrics.lower_is_better(key) else max(values)
    except ValueError:  # an informative-only output cannot rank anything
        return ""
    return f"{charts.metric_label(key)} {best:.4g}"


def _best_of(run: engine.Run, output: str) -> str:
    try:
        stat = run.metrics_path.stat()
    except FileNotFoundError:
        return ""
    return _best_cached(run.path, stat.st_size, stat.st_mtime_ns, output)


@functools.lru_cache(maxsize=128)
def _best_cached(path: Path, size: int, mtime_ns: int, output: str) -> str:
    """Keyed by the metrics file's size and time: a table refreshing every few seconds re-reads only the
    curves of runs that are logging."""
    return best_metric(engine.Run(path).metrics(), output)


def summary(run: engine.Run) -> dict[str, Any]:
    """Name, status, dataset, model, resolution, steps, images, best metric and size of a run."""
    status = run.status()
    row: dict[str, Any] = {"Run": run.name, "Status": status["state"], "Steps": status.get("step") or 0,
                           "Images seen": status.get("images") or 0}
    try:
        config = run.config()
    except engine.ConfigError:
        row.update(Dataset="(unreadable config)", Model="", Resolution=None, **{"Best metric": ""})
    else:
        row.update(Dataset=config.data.spec, Model=config.model.name, Resolution=config.data.resolution,
                   **{"Best metric": _best_of(run, config.metrics.best_metric)})
    row["Size (MB)"] = run.size_bytes() / 2**20
    return row


def generator_zip(run: engine.Run) -> bytes:
    """The EMA generator of the run's latest checkpoint, zipped as ``<run>-generator/`` holding
    ``model.safetensors`` + ``config.json``: unzipped, ``engine.load_generator`` opens that folder."""
    folder = f"{run.name}-generator"
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buffer, "w") as archive:
        exported = engine.export_generator(run.path, tmp)
        for file in sorted(exported.iterdir()):
            archive.write(file, f"{folder}/{file.name}")  # stored: float weights barely compress
    return buffer.getvalue()
