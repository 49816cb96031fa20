"""Plotly figures for training curves: one run's losses, its metrics, and several runs overlaid."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine import metrics

LOSS_SERIES = (("loss_g", "G loss"), ("loss_d", "D loss"), ("d_aux", "D self-supervised loss"))
D_SERIES = (("d_real", "D(x)"), ("d_fake", "D(G(z))"))
AUTOENCODER_LOSS_SERIES = (("loss_g", "Autoencoder loss"), ("recon", "Reconstruction"), ("loss_d", "Latent D loss"))
AUTOENCODER_D_SERIES = (("d_real", "D(prior z)"), ("d_fake", "D(E(x))"))
_HEIGHT = 320


def train_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("kind") == "train"]


def eval_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("kind") == "eval"]


def metric_names(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Metric columns of eval lines (everything but the bookkeeping fields)."""
    names: dict[str, None] = {}
    for r in eval_records(records):
        names.update({k: None for k, v in r.items()
                      if k not in ("kind", "step", "images", "time") and isinstance(v, (int, float))})
    return list(names)


def metric_label(key: str) -> str:
    """'fid_2k' -> 'FID-2k' (the engine's display label); other keys as they are."""
    try:
        return metrics.display_label(key)
    except ValueError:
        return key


def loss_figure(records: list[Mapping[str, Any]], revision: str) -> go.Figure:
    """G/D losses (left) and the discriminator's outputs on real and generated images (right)."""
    train = train_records(records)
    steps = [r["step"] for r in train]
    autoencoder = any("recon" in r for r in train)
    panels = (AUTOENCODER_LOSS_SERIES, AUTOENCODER_D_SERIES) if autoencoder else (LOSS_SERIES, D_SERIES)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Losses", "Latent discriminator outputs" if autoencoder
                                                        else "Discriminator outputs"), horizontal_spacing=0.08)
    for col, series in enumerate(panels, start=1):
        for key, label in series:
            if not any(key in r for r in train):
                continue
            fig.add_trace(go.Scatter(x=steps, y=[r.get(key) for r in train], name=label, mode="lines"),
                          row=1, col=col)
        fig.update_xaxes(title_text="step", row=1, col=col)
    return _styled(fig, revision)


def metric_figure(records: list[Mapping[str, Any]], revision: str) -> go.Figure:
    """Each evaluation metric against the images seen, in its own panel (their scales differ)."""
    evals = eval_records(records)
    names = metric_names(records)
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=[metric_label(n) for n in names] or None,
                        horizontal_spacing=0.08)
    for col, name in enumerate(names, start=1):
        points = [(r["images"] / 1000, r[name]) for r in evals if name in r]
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=metric_label(name),
                                 mode="lines+markers", showlegend=False), row=1, col=col)
        fig.update_xaxes(title_text="thousand images seen", row=1, col=col)
    return _styled(fig, revision)


def overlay_figure(runs: Mapping[str, list[Mapping[str, Any]]], key: str, label: str, kind: str = "train"
                   ) -> go.Figure:
    """One series (e.g. 'loss_g' or 'swd') of several runs on a common axis of images seen."""
    fig = go.Figure()
    for name, records in runs.items():
        points = [(r["images"] / 1000, r[key]) for r in records if r.get("kind") == kind and key in r]
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name,
                                 mode="lines" if kind == "train" else "lines+markers"))
    fig.update_xaxes(title_text="thousand images seen")
    fig.update_layout(title=label)
    return _styled(fig, "overlay")


def _styled(fig: go.Figure, revision: str) -> go.Figure:
    """Compact layout; ``uirevision`` keeps the user's zoom while live data is appended."""
    fig.update_layout(height=_HEIGHT, margin=dict(l=10, r=10, t=40, b=10), uirevision=revision,
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35, x=0))
    return fig
