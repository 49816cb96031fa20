"""Explore › What the networks see: G's feature maps, D's feature maps and saliency, D's score distributions."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.insight import (DiscriminatorView, LayerMaps, ScoreHistograms, discriminator_view, generator_features,
                            heat_map, render_layer, score_histograms)
from studio import cache, generators, networks
from studio.charts import PALETTE
from studio.imaging import enlarge

TAB = "What the networks see"
BATCH = 64  # real and generated images scored for the histograms
REAL, GENERATED = "Real image", "Generated image"


@st.cache_data(max_entries=16, show_spinner=False)
def _generator_view(path: str, version: str, seed: int, truncation: float, label: int
                    ) -> tuple[np.ndarray, list[LayerMaps]]:
    gen = cache.generator(path, version)
    return generator_features(gen, gen.latents([seed])[0] * truncation, label)


@st.cache_data(max_entries=16, show_spinner=False)
def _discriminator_view(path: str, version: str, image: np.ndarray, label: int) -> DiscriminatorView | None:
    disc, _ = networks.discriminator(path, version)
    return discriminator_view(disc, image, label) if disc is not None else None


def _real_batch(spec: str, resolution: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` training images (a fixed random choice) and their labels."""
    data = cache.dataset(spec, resolution)
    picks = np.sort(np.random.default_rng(0).permutation(len(data))[:count])
    return data.images[picks], data.labels[picks]


@st.cache_data(max_entries=8, show_spinner="Scoring real and generated images…")
def _histograms(path: str, version: str, spec: str, resolution: int, truncation: float) -> ScoreHistograms | None:
    disc, _ = networks.discriminator(path, version)
    if disc is None:
        return None
    real, labels = _real_batch(spec, resolution, BATCH)
    fake = cache.generator(path, version).sample(seeds=range(len(real)), truncation=truncation, labels=labels.tolist())
    return score_histograms(disc, real, fake, real_labels=labels.tolist(), generated_labels=labels.tolist())


def _layers(layers: list[LayerMaps]) -> None:
    for layer in layers:
        st.image(render_layer(layer, side=48), width="stretch",
                 caption=f"{layer.height}×{layer.width} · {layer.channels} channels · `{layer.name}`: the "
                         f"{len(layer.top)} most active (brighter = stronger)")


def _histogram_figure(h: ScoreHistograms) -> go.Figure:
    centres = (h.edges[:-1] + h.edges[1:]) / 2
    width = float(h.edges[1] - h.edges[0])
    figure = go.Figure([go.Bar(x=centres, y=h.real, width=width, name="real", opacity=0.6, marker_color=PALETTE[0]),
                        go.Bar(x=centres, y=h.generated, width=width, name="generated", opacity=0.6,
                               marker_color=PALETTE[1])])
    figure.update_layout(barmode="overlay", height=280, margin=dict(l=10, r=10, t=10, b=10),
                         xaxis_title="D's score (raw; higher = judged real)", yaxis_title="images")
    return figure


def insight_tab(src: generators.Source, version: str, truncation: float, label: int, resolution: int) -> None:
    """G's feature maps for a seed; D's view of a real or generated image; D's scores of both kinds."""
    st.caption("Feature maps are the last activation at each resolution; each row shows that layer's most "
               "active channels, each scaled to its own range.")
    st.session_state.setdefault("see:seed", st.session_state.get("seed", 0))
    seed = st.number_input("Seed", min_value=0, step=1, key="see:seed", persist_state="session")
    image, layers = _generator_view(src.path, version, seed, truncation, label)
    st.subheader("Inside the generator")
    left, right = st.columns([1, 3])
    left.image(enlarge(image, 256), caption=f"seed {seed}", width="stretch")
    with right:
        if layers:
            _layers(layers)
        else:
            st.info("This generator is fully connected: it has no feature maps to show.")
    st.subheader("What the discriminator sees")
    disc, reason = networks.discriminator(src.path, version)
    if disc is None:
        st.info(f"No discriminator here: {reason}. Open a run on this page to see D's view.")
        return
    _discriminator_section(src, version, seed, image, label, resolution)
    if src.dataset is not None:
        _scores_section(src, version, src.dataset, resolution, truncation)


def _discriminator_section(src: generators.Source, version: str, seed: int, generated: np.ndarray, label: int,
                           resolution: int) -> None:
    kinds = [GENERATED, REAL] if src.dataset is not None else [GENERATED]
    kind = st.segmented_control("Image", kinds, default=GENERATED, required=True, key="see:kind")
    if kind == REAL and src.dataset is not None:
        data = cache.dataset(src.dataset, resolution)
        index = st.number_input("Training image", min_value=0, max_value=len(data) - 1, step=1, key="see:real")
        image, image_label, caption = data.images[index], int(data.labels[index]), f"training image #{index}"
    else:
        image, image_label, caption = generated, label, f"seed {seed}"
    view = _discriminator_view(src.path, version, image, image_label)
    if view is None:
        return
    cols = st.columns([1, 1, 2])
    cols[0].image(enlarge(image, 256), caption=f"{caption} · D's score {view.score:.2f}", width="stretch")
    cols[1].image(enlarge(heat_map(image, view.saliency), 256), width="stretch",
                  caption="Saliency: |∂ score / ∂ pixel| (bright = the pixels that move the score most)")
    with cols[2]:
        _layers(view.layers)


def _scores_section(src: generators.Source, version: str, spec: str, resolution: int, truncation: float) -> None:
    h = _histograms(src.path, version, spec, resolution, truncation)
    if h is None:
        return
    st.subheader("Scores of real vs generated images")
    st.plotly_chart(_histogram_figure(h), key="see:histogram")
    st.caption(f"D's raw scores of {len(h.real_scores)} training images (mean {h.real_scores.mean():.2f}) and "
               f"{len(h.generated_scores)} generated ones (mean {h.generated_scores.mean():.2f}). Well-separated "
               "histograms mean D tells them apart easily; overlapping ones mean G fools it.")
