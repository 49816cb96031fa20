"""Explore › Your photo: project uploaded photos into the latent space, then edit and interpolate them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from engine.inversion import Projection, Weights, project, read_photo
from studio import cache, generators, networks
from studio.imaging import animation, enlarge, image_grid, png_bytes

TAB = "Your photo"
STEPS = 100  # default Adam steps: 9 s for one photo with the perceptual loss (the 64 px cats recipe, 2 busy CPU cores)
RESTARTS = 4
KEY = "inv:projection"


@dataclass(frozen=True)
class Projected:
    """The last projection shown in this session, with what produced it."""

    key: tuple[str, str, tuple[str, ...]]  # generator path, its version, the photos' hashes
    names: tuple[str, ...]
    projection: Projection


def _upload_key(files: list[tuple[str, bytes]]) -> tuple[str, ...]:
    return tuple(hashlib.sha1(data).hexdigest() for _, data in files)


def _project(src: generators.Source, version: str, files: list[tuple[str, bytes]], steps: int, restarts: int,
             use_d: bool, key: tuple[str, str, tuple[str, ...]]) -> None:
    gen = cache.generator(src.path, version)
    photos = [read_photo(data, name) for name, data in files]
    disc = networks.discriminator(src.path, version)[0] if use_d else None
    bar = st.progress(0.0, text="Projecting…")

    def show(done: int, total: int, error: float) -> None:
        bar.progress(done / total, text=f"Step {done:,} of {total:,} · mean pixel error {error:.3f}")

    restarts = max(restarts, gen.num_classes)  # conditional models: each class gets a start
    weights = Weights() if use_d else Weights(feature=0)
    result = project(gen, photos, disc, steps=steps, restarts=restarts, weights=weights, callback=show)
    bar.empty()
    st.session_state[KEY] = Projected(key, tuple(name for name, _ in files), result)


def _class_note(class_names: list[str], label: int, conditional: bool) -> str:
    if not conditional:
        return ""
    return f" · class {class_names[label] if label < len(class_names) else label}"


def photo_tab(src: generators.Source, version: str, directions: int) -> None:
    """Upload, project, compare; then edit with the latent directions and interpolate between photos."""
    gen = cache.generator(src.path, version)
    disc, no_disc = networks.discriminator(src.path, version)
    st.caption(f"Upload face photos: the generator's latent space is searched (Adam from {RESTARTS} random "
               "starts per photo) for the sample closest to each, centre-cropped and resized to "
               f"{gen.resolution} px. The closer the photos are to the training images, the closer the match.")
    uploads = st.file_uploader("Photos", type=["png", "jpg", "jpeg", "webp"], accept_multiple_files=True,
                               key="inv:upload")
    cols = st.columns([1, 1, 2], vertical_alignment="bottom")
    steps = cols[0].number_input("Steps", min_value=0, max_value=2000, value=STEPS, step=50, key="inv:steps",
                                 help="More steps match more closely and take longer: about 0.1 s a step and "
                                      "photo on 2 CPU cores for the 64 px cats recipe (half that without the "
                                      "perceptual loss).")
    use_d = cols[1].toggle("Perceptual loss", value=disc is not None, disabled=disc is None, key="inv:perceptual",
                           help="Compare the trained discriminator's feature maps too, not only the pixels "
                                "(2–3× slower: the pixel error ends a little higher, but contrast and shapes "
                                "follow the photo more closely).")
    if disc is None:
        st.caption(f"Pixel loss only: {no_disc}.")
    files = [(f.name, f.getvalue()) for f in uploads or []]
    key = (src.path, version, _upload_key(files))
    if cols[2].button("Project", type="primary", icon=":material/search:", disabled=not files, key="inv:go"):
        _project(src, version, files, int(steps), RESTARTS, use_d, key)
    done = st.session_state.get(KEY)
    if not isinstance(done, Projected) or done.key != key:
        if files:
            st.info("Press **Project** to find these photos in the latent space.")
        return
    _results(done, gen.class_names, gen.num_classes > 0)
    _edit(src, version, done, directions)
    if len(done.names) > 1:
        _interpolate(src, version, done, gen.num_classes > 0)


def _results(done: Projected, class_names: list[str], conditional: bool) -> None:
    p = done.projection
    for i, name in enumerate(done.names):
        photo_col, recon_col, text_col = st.columns([1, 1, 3], vertical_alignment="center")
        photo_col.image(enlarge(p.targets[i], 192), caption=f"Photo: {name}", width="stretch")
        recon_col.image(enlarge(p.reconstructions[i], 192), caption="Reconstruction", width="stretch")
        feature = f" · discriminator-feature loss {p.feature_errors[i]:.3f}" if p.feature_errors is not None else ""
        text_col.caption(f"Mean absolute pixel error {p.errors[i]:.3f} (0 = identical, 1 = opposite){feature}"
                         f"{_class_note(class_names, p.labels[i], conditional)}")
        text_col.download_button("Download PNG", png_bytes(enlarge(p.reconstructions[i], 256)),
                                  file_name=f"reconstruction-{i}.png", mime="image/png", on_click="ignore",
                                  icon=":material/download:", key=f"inv:png{i}")


@st.cache_data(max_entries=64, show_spinner=False)
def _edited(path: str, version: str, latent: np.ndarray, label: int, offsets: tuple[float, ...],
            count: int) -> np.ndarray:
    """The projected latent moved by ``offsets[i]`` along latent direction i, as an image."""
    vectors, _ = generators.directions(path, version, count)
    z = torch.from_numpy(latent + np.asarray(offsets, np.float32) @ vectors)
    return cache.generator(path, version).sample(latents=z[None], labels=[label])[0]


def _edit(src: generators.Source, version: str, done: Projected, directions: int) -> None:
    st.subheader("Edit")
    p = done.projection
    pick = st.selectbox("Photo", range(len(done.names)), format_func=done.names.__getitem__, key="inv:edit-photo") \
        if len(done.names) > 1 else 0
    _, strengths = generators.directions(src.path, version, directions)
    controls, result = st.columns([3, 2])
    with controls:
        offsets = tuple(st.slider(f"Direction {i + 1} (strength {strengths[i]:.2f})", -6.0, 6.0, 0.0, step=0.5,
                                  key=f"inv:d{i}") for i in range(len(strengths)))
    image = _edited(src.path, version, p.latents[pick].numpy(), p.labels[pick], offsets, directions)
    with result:
        st.image(enlarge(image, 320), caption="Edited reconstruction", width="stretch")
        st.download_button("Download PNG", png_bytes(enlarge(image, 256)), file_name="edited.png", mime="image/png",
                           on_click="ignore", icon=":material/download:", key="inv:edited-png")


@st.cache_data(max_entries=16, show_spinner=False)
def _path(path: str, version: str, z0: np.ndarray, z1: np.ndarray, steps: int, label: int) -> np.ndarray:
    return cache.generator(path, version).interpolate(torch.from_numpy(z0), torch.from_numpy(z1), steps, label=label)


def _interpolate(src: generators.Source, version: str, done: Projected, conditional: bool) -> None:
    st.subheader("Interpolate between two photos")
    p, names = done.projection, done.names
    cols = st.columns(2)
    a = cols[0].selectbox("From", range(len(names)), format_func=names.__getitem__, key="inv:a")
    b = cols[1].selectbox("To", range(len(names)), index=1, format_func=names.__getitem__, key="inv:b")
    z0, z1 = p.latents[a].numpy(), p.latents[b].numpy()
    strip = _path(src.path, version, z0, z1, 8, p.labels[a])
    kept = "; the class of the first photo" if conditional else ""
    st.image(image_grid(strip, columns=8), caption=f"{names[a]} → {names[b]} (spherical interpolation{kept})",
             width="stretch")

    def there_and_back() -> bytes:
        frames = _path(src.path, version, z0, z1, 32, p.labels[a])
        return animation([*frames, *frames[::-1]], "gif", fps=16, size=256)

    st.download_button("Download as GIF", there_and_back, file_name="photo-interpolation.gif", mime="image/gif",
                       on_click="ignore", icon=":material/movie:", key="inv:gif")
