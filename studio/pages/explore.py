"""Explore: samples, latent interpolation, latent directions, a memorisation check, your photos in the latent space
and what the networks see, for any generator."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from studio import cache, generators, insight_tab, inversion_tab
from studio.errors import shown_in_page
from studio.imaging import animation, enlarge, image_grid, png_bytes
from studio.onnx_download import onnx_download

GRID = 16  # samples shown at once
DIRECTIONS = 6
TABS = ("Samples", "Interpolation", "Directions", "Real vs generated")
RECONSTRUCTIONS = "Reconstructions"


def pick_source() -> generators.Source | None:
    found = generators.sources()
    if not found:
        st.info("There is no generator to explore yet: train one on the **Train** page.")
        return None
    by_key = {s.key: s for s in found}
    linked = st.query_params.get("gen")
    if linked in by_key:
        st.session_state["gen"] = linked
    elif st.session_state.get("gen") not in by_key:
        st.session_state["gen"] = found[0].key
    key = st.selectbox("Generator", list(by_key), format_func=lambda k: by_key[k].label, key="gen",
                       on_change=link_generator, persist_state="session",
                       help="The shipped demo, or the latest checkpoint of any run (running ones too).")
    st.query_params["gen"] = key
    return by_key[key]


def link_generator() -> None:
    """Selectbox callback: the URL names the chosen generator by its stable key (run name, demo, hf:owner/name).

    Bound to the URL, the selectbox would store its label, which changes with every checkpoint."""
    st.query_params["gen"] = st.session_state["gen"]


def set_state(**values: object) -> None:
    """Button callback: put values into widget state before the widgets are drawn."""
    st.session_state.update(values)


@st.dialog("Sample", width="medium")
def zoom(image: np.ndarray, seed: int) -> None:
    st.image(enlarge(image, 512), caption=f"seed {seed}", width="stretch")
    actions = (("Use as A", {"interp:a": seed, "explore-tab": TABS[1]}),
               ("Use as B", {"interp:b": seed, "explore-tab": TABS[1]}),
               ("Edit with directions", {"edit:seed": seed, "explore-tab": TABS[2]}),
               ("Nearest training images", {"nn:seed": seed, "explore-tab": TABS[3]}))
    cols = st.columns(len(actions))
    for col, (text, values) in zip(cols, actions):
        if col.button(text, on_click=set_state, kwargs=values, width="stretch"):
            st.rerun()  # close the dialog and show the chosen tab
    st.download_button("Download PNG", png_bytes(enlarge(image, 512)), file_name=f"seed-{seed}.png",
                       mime="image/png", on_click="ignore", icon=":material/download:")


def samples_tab(src: generators.Source, version: str, truncation: float, label: int) -> None:
    seed_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
    base = seed_col.number_input("First seed", min_value=0, max_value=2**31 - GRID, step=GRID, key="seed",
                                 persist_state="session", help="Sample i uses seed + i: the same seed always "
                                 "gives the same face.")
    button_col.button("New faces", icon=":material/casino:", on_click=set_state,
                      kwargs={"seed": random.randrange(0, 10**6) * GRID}, width="stretch")
    seeds = tuple(range(base, base + GRID))
    images = cache.samples(src.path, version, seeds, truncation, label)
    st.caption("Click a seed under a face to enlarge it, interpolate from it, edit it or check it "
               "against the training images.")
    cells = st.columns(8)
    for i, (seed, image) in enumerate(zip(seeds, images)):
        with cells[i % 8]:
            st.image(image, width="stretch")
            if st.button(str(seed), key=f"zoom-{seed}", icon=":material/zoom_in:", type="tertiary"):
                zoom(image, seed)


def interpolation_tab(src: generators.Source, version: str, truncation: float, label: int) -> None:
    st.session_state.setdefault("interp:a", st.session_state.get("seed", 0))
    st.session_state.setdefault("interp:b", st.session_state["interp:a"] + 1)
    cols = st.columns([1, 1, 2])
    a = cols[0].number_input("Seed A", min_value=0, step=1, key="interp:a", persist_state="session")
    b = cols[1].number_input("Seed B", min_value=0, step=1, key="interp:b", persist_state="session")
    steps = cols[2].slider("Steps in the strip", 3, 16, 8, key="interp:steps", persist_state="session")
    t = st.slider("t (0 = A, 1 = B)", 0.0, 1.0, 0.5, step=0.01, key="interp:t")
    ends = cache.samples(src.path, version, (a, b), truncation, label)
    middle = generators.between(src.path, version, (a, b), t, truncation, label)
    left, centre, right = st.columns([1, 2, 1], vertical_alignment="center")
    left.image(enlarge(ends[0], 256), caption=f"A: seed {a}", width="stretch")
    centre.image(enlarge(middle, 512), caption=f"t = {t:.2f} (spherical interpolation)", width="stretch")
    right.image(enlarge(ends[1], 256), caption=f"B: seed {b}", width="stretch")
    strip = generators.interpolation(src.path, version, (a, b), steps, truncation, label)
    st.image(image_grid(strip, columns=steps), caption=f"{steps} steps from A to B", width="stretch")
    fmt = st.segmented_control("Animation", ["gif", "mp4"], default="gif", required=True, key="interp:fmt",
                               format_func=str.upper)

    def there_and_back() -> bytes:
        path = generators.interpolation(src.path, version, (a, b), 32, truncation, label)
        return animation([*path, *path[::-1]], fmt, fps=16, size=256)

    st.download_button(f"Download A → B → A as {fmt.upper()}", on_click="ignore", icon=":material/movie:",
                       data=there_and_back, file_name=f"interpolation-{a}-{b}.{fmt}",
                       mime="image/gif" if fmt == "gif" else "video/mp4")


def directions_tab(src: generators.Source, version: str, truncation: float, label: int) -> None:
    st.caption("The strongest directions of the first layer's weights (SeFa, Shen & Zhou 2021). Each slider "
               "moves the latent along one of them.")
    st.session_state.setdefault("edit:seed", st.session_state.get("seed", 0))
    head = st.columns([1, 1, 2], vertical_alignment="bottom")
    seed = head[0].number_input("Seed", min_value=0, step=1, key="edit:seed", persist_state="session")
    head[1].button("Reset sliders", on_click=set_state, kwargs={f"edit:d{i}": 0.0 for i in range(DIRECTIONS)})
    _, strengths = generators.directions(src.path, version, DIRECTIONS)
    controls, result = st.columns([3, 2])
    with controls:
        for i in range(len(strengths)):  # values live in session state only: Reset sets them there
            st.session_state.setdefault(f"edit:d{i}", 0.0)
        offsets = tuple(st.slider(f"Direction {i + 1} (strength {strengths[i]:.2f})", -6.0, 6.0, step=0.5,
                                  key=f"edit:d{i}") for i in range(len(strengths)))
    image = generators.edited(src.path, version, seed, offsets, truncation, label, DIRECTIONS)
    original = cache.samples(src.path, version, (seed,), truncation, label)[0]
    with result:
        st.image(enlarge(image, 384), caption="Edited", width="stretch")
        st.image(enlarge(original, 128), caption=f"Original (seed {seed})")
    with st.expander("What each direction does (−6 … +6)", expanded=True):
        for i in range(len(strengths)):
            strip = generators.direction_strip(src.path, version, seed, i, 6.0, 7, truncation, label, DIRECTIONS)
            st.image(image_grid(strip, columns=7), caption=f"Direction {i + 1}", width="stretch")


def real_tab(src: generators.Source, version: str, truncation: float, label: int,
             resolution: int) -> None:
    if src.dataset is None:
        st.info("This generator does not record which images it was trained on.")
        return
    st.caption(f"Training images: `{src.dataset}`")
    real = cache.preview(src.dataset, resolution, GRID).images
    seeds = tuple(range(st.session_state.get("seed", 0), st.session_state.get("seed", 0) + GRID))
    fake = cache.samples(src.path, version, seeds, truncation, label)
    left, right = st.columns(2)
    left.image(image_grid(real, columns=4), caption="Real", width="stretch")
    right.image(image_grid(fake, columns=4), caption="Generated", width="stretch")
    st.subheader("Nearest training images")
    st.session_state.setdefault("nn:seed", seeds[0])
    seed = st.number_input("Generated seed", min_value=0, step=1, key="nn:seed", persist_state="session")
    query = cache.samples(src.path, version, (seed,), truncation, label)[0]
    index = cache.neighbour_index(src.dataset, resolution)
    found, dist = index.search(query, k=6)
    cols = st.columns(7)
    cols[0].image(enlarge(query, 128), caption=f"seed {seed}", width="stretch")
    for col, i, d in zip(cols[1:], found, dist):
        col.image(enlarge(index.images[i], 128), caption=f"#{i} · {d:.3f}", width="stretch")
    if dist[0] < 0.03:
        st.warning("The nearest training image is almost identical: this sample may be memorised.")
    else:
        st.caption("Numbers are RMS pixel distances (0 = identical, 1 = opposite). A near-zero distance "
                   "would mean the generator copies its training data.")


def reconstructions_tab(src: generators.Source, version: str, resolution: int) -> None:
    if src.dataset is None:
        st.info("This autoencoder does not record which images it was trained on.")
        return
    st.caption(f"Training images from `{src.dataset}` (left) encoded to the latent code and decoded again "
               "(right). Samples on the other tabs decode random N(0, I) codes instead.")
    real, recon = cache.reconstructions(src.path, version, src.dataset, resolution, GRID)
    left, right = st.columns(2)
    left.image(image_grid(real, columns=4), caption="Originals", width="stretch")
    right.image(image_grid(recon, columns=4), caption="Reconstructions", width="stretch")
    error = np.abs(real.astype(np.float32) - recon.astype(np.float32)).mean() / 255
    st.caption(f"Mean absolute pixel error: {error:.3f} (0 = perfect, 1 = opposite).")


def explore(source: generators.Source, trunc_col: DeltaGenerator, class_col: DeltaGenerator) -> None:
    gen, ver = generators.load(source)
    facts = [gen.model_name, f"{gen.resolution} px", f"latent {gen.latent_dim}"]
    if "images" in gen.info:
        facts.append(f"trained on {gen.info['images']:,} images ({gen.info['step']:,} steps)")
    st.caption(" · ".join(facts))
    onnx_download(source.path, ver, Path(source.path).name if source.key == generators.DEMO else source.key)
    trunc = trunc_col.slider("Truncation", 0.1, 1.0, 1.0, 0.05, key="truncation", persist_state="session",
                             help="Below 1, latents are pulled toward the average: cleaner but less varied.")
    cls = 0
    if gen.num_classes:
        names = gen.class_names or [str(i) for i in range(gen.num_classes)]
        cls = class_col.selectbox("Class", range(gen.num_classes), format_func=names.__getitem__, key="class",
                                  persist_state="session")
    bodies: tuple[tuple[str, Callable[[], None]], ...] = (
        ("draw samples", lambda: samples_tab(source, ver, trunc, cls)),
        ("interpolate", lambda: interpolation_tab(source, ver, trunc, cls)),
        ("compute latent directions", lambda: directions_tab(source, ver, trunc, cls)),
        ("compare with the training images", lambda: real_tab(source, ver, trunc, cls, gen.resolution)))
    names = TABS
    if gen.encoder is not None:
        names += (RECONSTRUCTIONS,)
        bodies += (("reconstruct the training images", lambda: reconstructions_tab(source, ver, gen.resolution)),)
    names += (inversion_tab.TAB, insight_tab.TAB)
    bodies += (("project the photos", lambda: inversion_tab.photo_tab(source, ver, DIRECTIONS)),
               ("look inside the networks", lambda: insight_tab.insight_tab(source, ver, trunc, cls, gen.resolution)))
    for tab, (action, body) in zip(st.tabs(names, key="explore-tab", on_change="rerun"), bodies):
        if tab.open:
            with tab, shown_in_page(action):
                body()


st.title("Explore")
pick_col, trunc_col, class_col = st.columns([4, 2, 2], vertical_alignment="bottom")
with pick_col:
    source = pick_source()
if source is not None:
    with shown_in_page("load this generator"):
        explore(source, trunc_col, class_col)
