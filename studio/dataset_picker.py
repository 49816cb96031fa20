"""The dataset part of the Train page: choose the images, then see what the engine makes of them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from studio import cache
from studio.errors import shown_in_page
from studio.imaging import image_grid

BUILTIN = "builtin:faces"
SOURCES = {"builtin": "Built-in faces", "hub": "Hugging Face Hub", "zip": "Upload a .zip",
           "folder": "Folder on this machine"}
HUB_PRESETS = {"hf:huggan/AFHQ": "AFHQ: cats, dogs and wild animals (labelled)",
               "hf:huggan/anime-faces": "Anime faces", "hf:nielsr/CelebA-faces": "CelebA: celebrity faces"}
OTHER_HUB = "other"


def choose_dataset(uploads: Path) -> str | None:
    """Render the source chooser; return the engine dataset spec, or None until one is given."""
    kind = st.segmented_control("Images", list(SOURCES), format_func=SOURCES.get, default="builtin",
                                required=True, key="data:kind", persist_state="session")
    if kind == "builtin":
        st.caption("10,000 cartoon faces of cats, dogs, foxes, bears and humans, drawn on this machine.")
        return BUILTIN
    if kind == "hub":
        return choose_hub_dataset()
    if kind == "zip":
        upload = st.file_uploader("A .zip of images (sub-folders become classes)", type="zip", key="data:zip")
        if upload is None:
            return None
        with shown_in_page("save the uploaded file"):
            return str(save_upload(upload, uploads))
        return None
    folder = st.text_input("Folder path", key="data:folder", placeholder="/home/me/pictures/faces",
                           help="A folder of .jpg/.png images on the machine running the studio; "
                                "sub-folders become classes.", persist_state="session").strip()
    if folder and not Path(folder).expanduser().is_dir():
        st.error(f"{folder} is not a folder on this machine.")
        return None
    return folder or None


def choose_hub_dataset() -> str | None:
    """A preset Hub dataset or any 'hf:owner/name[:split]'."""
    choice = st.selectbox("Dataset", [*HUB_PRESETS, OTHER_HUB], key="data:hub", persist_state="session",
                          format_func=lambda key: HUB_PRESETS.get(key, "Another dataset on the Hub…"))
    st.caption("Downloaded once into the Hugging Face cache (progress in the terminal), decoded once, then "
               "usable offline. A class column becomes the labels.")
    if choice != OTHER_HUB:
        return choice
    text = st.text_input("Dataset repo", key="data:hub-spec", placeholder="owner/name or owner/name:split",
                         help="Any dataset with an image column, e.g. huggan/AFHQ or huggan/AFHQ:train.",
                         persist_state="session").strip()
    if not text:
        return None
    return text if text.startswith("hf:") else f"hf:{text}"


def save_upload(upload: UploadedFile, uploads: Path) -> Path:
    """Keep an uploaded archive under a content-addressed name, so the worker can read it later."""
    data = upload.getvalue()
    stem = re.sub(r"[^\w.-]+", "_", Path(upload.name).stem)[:40] or "upload"
    path = uploads / f"{stem}-{hashlib.sha1(data).hexdigest()[:12]}.zip"
    if not path.exists():
        uploads.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(path)
    return path


def show_preview(spec: str, resolution: int) -> bool:
    """Real images, count, skipped files and classes; False (with a message) if the data is unusable."""
    with shown_in_page("read this dataset"):
        preview = cache.preview(spec, resolution)
        st.image(image_grid(preview.images, columns=8), caption=f"Real images at {resolution} px",
                 width="stretch")
        facts = [f"**{preview.count:,}** images"]
        if preview.class_counts:
            facts.append(f"**{len(preview.class_counts)}** classes: "
                         + ", ".join(f"{k} ({v:,})" for k, v in preview.class_counts.items()))
        if preview.skipped:
            facts.append(f"**{len(preview.skipped)}** unreadable files skipped")
        st.markdown(" · ".join(facts))
        if preview.skipped:
            with st.expander("Skipped files"):
                st.text("\n".join(preview.skipped[:200]))
        return True
    return False
