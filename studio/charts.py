"""Plotly figures for training curves: one run's losses, its metrics, its scheduled values, and several runs
overlaid.

One run's curves can be drawn against wall-clock time, steps or images seen, and smoothed with a
debiased exponential moving average (TensorBoard's smoothing slider).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine import metrics
from engine.base import records
from engine.base.records import EvalRecord, TrainRecord

AXES = {"time": "minutes (wall clock)", "step": "step", "images": "thousand images seen"}
D_TITLES = {records.ADVERSARIAL: "Discriminator outputs", records.AUTOENCODER: "Latent discriminator outputs"}
_HEIGHT = 320
_RAW_OPACITY = 0.3  # the unsmoothed curve, drawn faintly behind the smoothed one
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")


def metric_names(lines: Iterable[Mapping[str, Any]]) -> list[str]:
    """Metric result keys of the evaluation lines, in the order they first appear."""
    names: dict[str, None] = {}
    for r in records.eval_records(lines):
        names.update(dict.fromkeys(r.values))
    return list(names)


def metric_series(lines: Iterable[Mapping[str, Any]]) -> list[tuple[str, bool]]:
    """(metric key, live) pairs: the live metric first, then the periodic evaluations' metrics."""
    found: dict[tuple[str, bool], None] = {}
    for r in records.eval_records(lines):
        found.update({(k, r.live): None for k in r.values})
    return sorted(found, key=lambda series: not series[1])


def metric_label(key: str) -> str:
    """'fid_2k' -> 'FID-2k' (the engine's display label); other keys as they are."""
    try:
        return metrics.display_label(key)
    except ValueError:
        return key


def ema_smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average with weight ``weight`` (0 = none, < 1),
    debiased so that the first points are not pulled towards zero."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    smoothed, average = [], 0.0
    for n, value in enumerate(values, start=1):
        average = weight * average + (1.0 - weight) * value
        smoothed.append(average / (1.0 - weight**n))
    return smoothed


def x_values(points: Sequence[TrainRecord | EvalRecord], axis: str, train: Sequence[TrainRecord] = ()) -> list[float]:
    """Where each record lies on ``axis`` (a key of AXES). On the time axis a record without a wall
    time (an evaluation line) is placed by its training time plus the wall-clock overhead of the last
    training line logged before it."""
    if axis == "step":
        return [r.step for r in points]
    if axis == "images":
        return [r.images / 1000 for r in points]
    if axis != "time":
        raise ValueError(f"unknown axis {axis!r}: use one of {', '.join(AXES)}")
    return [_wall_seconds(r, train) / 60 for r in points]


def _wall_seconds(record: TrainRecord | EvalRecord, train: Sequence[TrainRecord]) -> float:
    if isinstance(record, TrainRecord) and record.wall is not None:
        return record.wall
    overheads = [r.wall - r.time for r in train if r.wall is not None and r.step <= record.step]
    overhead = overheads[-1] if overheads else 0.0
    return record.time + overhead


def loss_figure(lines: Sequence[Mapping[str, Any]], revision: str, axis: str = "step", smoothing: float = 0.0,
                model_kind: str = records.ADVERSARIAL) -> go.Figure:
    """The losses (left) and the discriminator's outputs (right) a model of ``model_kind`` logs: for an
    autoencoder, its reconstruction and its latent discriminator's outputs on prior draws and codes."""
    train = records.train_records(lines)
    xs = x_values(train, axis, train)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Losses", D_TITLES[model_kind]), horizontal_spacing=0.08)
    drawn = 0
    for col, keys in enumerate((records.LOSSES[model_kind], records.D_OUTPUTS), start=1):
        for key in keys:
            points = [(x, r.values[key]) for x, r in zip(xs, train) if key in r.values]
            if points:
                _add_curve(fig, points, records.stat_label(key, model_kind), smoothing, col, "lines",
                           PALETTE[drawn % len(PALETTE)])
                drawn += 1
        fig.update_xaxes(title_text=AXES[axis], row=1, col=col)
    return _styled(fig, revision)


def metric_figure(lines: Sequence[Mapping[str, Any]], revision: str, axis: str = "images", smoothing: float = 0.0
                  ) -> go.Figure:
    """Each metric in its own panel (their scales differ): the live metric, then periodic evaluations."""
    evals, train = records.eval_records(lines), records.train_records(lines)
    series = metric_series(lines)
    titles = [_series_title(key, live) for key, live in series]
    fig = make_subplots(rows=1, cols=max(1, len(series)), subplot_titles=titles or None, horizontal_spacing=0.08)
    for col, (key, live) in enumerate(series, start=1):
        chosen = [r for r in evals if r.live == live and key in r.values]
        points = list(zip(x_values(chosen, axis, train), (r.values[key] for r in chosen)))
        _add_curve(fig, points, titles[col - 1], smoothing, col, "lines+markers", PALETTE[(col - 1) % len(PALETTE)],
                   legend=False)
        fig.update_xaxes(title_text=AXES[axis], row=1, col=col)
    return _styled(fig, revision)


def schedule_figure(lines: Sequence[Mapping[str, Any]], revision: str, keys: Sequence[str]) -> go.Figure:
    """The scheduled values ``keys`` (training-record keys, e.g. 'lr_g', 'augment_p') against images seen,
    one panel each (their scales differ), as the run logged them."""
    train = records.train_records(lines)
    titles = [records.stat_label(key) for key in keys]
    fig = make_subplots(rows=max(1, len(keys)), cols=1, subplot_titles=titles or None, shared_xaxes=True,
                        vertical_spacing=min(0.15, 0.6 / max(1, len(keys))))
    for row, key in enumerate(keys, start=1):
        points = [(r.images / 1000, r.values[key]) for r in train if key in r.values]
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=titles[row - 1],
                                 mode="lines" if len(points) > 1 else "markers", showlegend=False,
                                 line_color=PALETTE[(row - 1) % len(PALETTE)],
                                 marker_color=PALETTE[(row - 1) % len(PALETTE)]), row=row, col=1)
        if key in (records.LR_G, records.LR_D):
            fig.update_yaxes(tickformat=".1e", row=row, col=1)  # 2.0e-4 rather than 200µ
    fig.update_xaxes(title_text=AXES["images"], row=max(1, len(keys)), col=1)
    fig = _styled(fig, revision)
    fig.update_layout(height=max(_HEIGHT, 60 + 130 * len(keys)), title="Schedules", margin=dict(t=70))
    return fig


def _series_title(key: str, live: bool) -> str:
    label = metric_label(key)
    return f"{label} (live, lower is better)" if live else label


def _add_curve(fig: go.Figure, points: list[tuple[float, float]], label: str, smoothing: float, col: int,
               mode: str, colour: str, legend: bool = True) -> None:
    """One series; when smoothed, the raw curve stays visible behind it, faint (as in TensorBoard)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if smoothing > 0:
        fig.add_trace(go.Scatter(x=xs, y=ys, name=label, mode="lines", opacity=_RAW_OPACITY, showlegend=False,
                                 hoverinfo="skip", legendgroup=label, line_color=colour), row=1, col=col)
        ys = ema_smooth(ys, smoothing)
    if len(points) == 1:
        mode = "markers"  # a line through one point draws nothing
    fig.add_trace(go.Scatter(x=xs, y=ys, name=label, mode=mode, showlegend=legend, legendgroup=label,
                             line_color=colour, marker_color=colour), row=1, col=col)


def overlay_figure(runs: Mapping[str, Sequence[Mapping[str, Any]]], key: str, label: str, kind: str = records.TRAIN
                   ) -> go.Figure:
    """One series of several runs on a common axis of images seen: a training statistic (e.g. 'loss_g',
    ``kind`` TRAIN) or a metric ('swd_256', ``kind`` EVAL)."""
    read = records.train_records if kind == records.TRAIN else records.eval_records
    fig = go.Figure()
    for name, lines in runs.items():
        points = [(r.images / 1000, r.values[key]) for r in read(lines) if key in r.values]
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name,
                                 mode="lines" if kind == records.TRAIN else "lines+markers"))
    fig.update_xaxes(title_text="thousand images seen")
    fig.update_layout(title=label)
    return _styled(fig, "overlay")


def _styled(fig: go.Figure, revision: str) -> go.Figure:
    """Compact layout; ``uirevision`` keeps the user's zoom while live data is appended."""
    fig.update_layout(height=_HEIGHT, margin=dict(l=10, r=10, t=40, b=10), uirevision=revision,
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35, x=0))
    return fig
