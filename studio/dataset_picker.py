"""The dataset part of the Train page: choose the images, then see what the engine makes of them.

Uploads are bounded by Streamlit's ``server.maxUploadSize`` (.streamlit/config.toml: 1024 MB, as the
server holds an upload in memory), which the browser, the server and this page all check. An upload
is saved under a content-addressed name through a temporary ``.partial`` file renamed into place; a
failed save removes it, and ``.partial`` files left by an interrupted one are removed once stale.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

import engine
from studio import cache
from studio.errors import explain, shown_in_page
from studio.imaging import image_grid
from studio.monitor import file_size, noun, plural

BUILTIN = "builtin:faces"
SOURCES = {"builtin": "Built-in faces", "hub": "Hugging Face Hub", "zip": "Upload a .zip",
           "folder": "Folder on this machine"}
HUB_PRESETS = {"hf:huggan/AFHQ": "AFHQ: cats, dogs and wild animals (labelled)",
               "hf:huggan/anime-faces": "Anime faces", "hf:nielsr/CelebA-faces": "CelebA: celebrity faces"}
OTHER_HUB = "other"
CHOSEN = "data:upload"  # file name (in the uploads folder) of the archive to train on
SAVED = "data:zip-saved"  # file id of the upload last saved, so a rerun does not save it again
NOTICE = "data:upload-notice"
STALE_PARTIAL_S = 3600  # a .partial file this old is left from an interrupted save (a save takes seconds)


def choose_dataset(uploads: Path) -> str | None:
    """Render the source chooser; return the engine dataset spec, or None until one is given."""
    kind = st.segmented_control("Images", list(SOURCES), format_func=SOURCES.__getitem__, default="builtin",
                                required=True, key="data:kind", persist_state="session")
    if kind == "builtin":
        st.caption("10,000 cartoon faces of cats, dogs, foxes, bears and humans, drawn on this machine.")
        return BUILTIN
    if kind == "hub":
        return choose_hub_dataset()
    if kind == "zip":
        return choose_upload(uploads)
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


def choose_upload(uploads: Path) -> str | None:
    """Upload a .zip, or pick one uploaded before; the choice survives visits to other pages."""
    upload = st.file_uploader("A .zip of images (sub-folders become classes)", type="zip", key="data:zip",
                              help=f"At most {file_size(upload_limit())}; for more images, use a folder on this "
                                   "machine.")
    if upload is not None and st.session_state.get(SAVED) != upload.file_id:
        too_big = upload_problem(upload.name, upload.size)
        if too_big:
            st.error(too_big, icon=":material/error:")
        else:
            with shown_in_page("save the uploaded file"):
                st.session_state[CHOSEN] = save_upload(upload, uploads).name
                st.session_state[SAVED] = upload.file_id
    remove_stale_partials(uploads)
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.error(notice, icon=":material/error:")
    saved = list_uploads(uploads)
    if st.session_state.get(CHOSEN) not in {u.path.name for u in saved}:
        st.session_state.pop(CHOSEN, None)
    if saved:
        _upload_rows(saved, upload_users(saved))
    chosen = st.session_state.get(CHOSEN)
    return str(uploads / chosen) if chosen else None


@dataclass(frozen=True)
class Upload:
    """An archive kept in the uploads folder."""

    path: Path
    size: int
    modified: float

    @property
    def name(self) -> str:
        """The name it was uploaded with (without the content hash added when it was saved)."""
        return re.sub(r"-[0-9a-f]{12}$", "", self.path.stem) + self.path.suffix


def list_uploads(uploads: Path) -> list[Upload]:
    """The archives uploaded so far, newest first."""
    if not uploads.is_dir():
        return []
    found = []
    for path in uploads.glob("*.zip"):
        stat = path.stat()
        found.append(Upload(path, stat.st_size, stat.st_mtime))
    return sorted(found, key=lambda u: u.modified, reverse=True)


def upload_users(saved: list[Upload]) -> dict[Path, list[str]]:
    """For each upload, the names of the runs that train on it (their data must stay)."""
    users: dict[Path, list[str]] = {u.path.resolve(): [] for u in saved}
    for run in engine.list_runs(engine.runs_root()):
        try:
            spec = run.config().data.spec
        except engine.ConfigError:
            continue
        target = Path(spec).resolve() if spec.endswith(".zip") else None
        if target in users:
            users[target].append(run.name)
    return users


def _upload_rows(saved: list[Upload], users: dict[Path, list[str]]) -> None:
    """One row per upload: name, size and date, a button to train on it, and Delete unless a run uses it."""
    st.caption("Uploaded before: pick one to train on it again.")
    chosen = st.session_state.get(CHOSEN)
    for upload in saved:
        used_by = users[upload.path.resolve()]
        text, use, delete = st.columns([6, 2, 2], vertical_alignment="center")
        when = time.strftime("%d %b %Y, %H:%M", time.localtime(upload.modified))
        facts = [f"**{upload.name}**", file_size(upload.size), when]
        if used_by:
            facts.append(f"used by {plural(len(used_by), 'run')}")
        text.markdown(" · ".join(facts))
        is_chosen = upload.path.name == chosen
        use.button("Chosen" if is_chosen else "Use", key=f"upload-use:{upload.path.name}", disabled=is_chosen,
                   icon=":material/check:" if is_chosen else None, width="stretch", on_click=st.session_state.update,
                   args=({CHOSEN: upload.path.name},))
        delete.button("Delete", key=f"upload-delete:{upload.path.name}", disabled=bool(used_by), width="stretch",
                      icon=":material/delete:", on_click=_delete_upload, args=(upload,),
                      help=f"Used by {', '.join(used_by)}: delete those runs first." if used_by else None)


def _delete_upload(upload: Upload) -> None:
    """Button callback: remove the archive (and forget it as the choice)."""
    try:
        upload.path.unlink()
    except OSError as exc:
        st.session_state[NOTICE] = explain(exc, f"delete {upload.name}")
        return
    if st.session_state.get(CHOSEN) == upload.path.name:
        st.session_state.pop(CHOSEN)


def upload_limit() -> int:
    """The largest upload in bytes: Streamlit's ``server.maxUploadSize`` (in MB)."""
    return int(st.get_option("server.maxUploadSize")) * 2**20


def upload_problem(name: str, size: int) -> str | None:
    """Why an upload of ``size`` bytes is refused, or None."""
    if size <= upload_limit():
        return None
    return (f"{name} is {file_size(size)}, more than the {file_size(upload_limit())} an upload may be. Unpack it "
            "into a folder on the machine running the studio and choose “Folder on this machine”.")


def save_upload(upload: UploadedFile, uploads: Path) -> Path:
    """Keep an uploaded archive under a content-addressed name, so the worker can read it later.

    Written to a ``.partial`` file (removed if the save fails) and renamed into place: a name in the
    folder always holds a whole upload."""
    uploads.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", Path(upload.name).stem)[:40] or "upload"
    digest = hashlib.sha1()
    handle = tempfile.NamedTemporaryFile(dir=uploads, prefix=f".{stem}-", suffix=".partial", delete=False)
    partial = Path(handle.name)
    try:
        with handle:
            upload.seek(0)
            for block in iter(lambda: upload.read(2**20), b""):
                digest.update(block)
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        path = uploads / f"{stem}-{digest.hexdigest()[:12]}.zip"
        if not path.exists():
            partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def remove_stale_partials(uploads: Path) -> None:
    """Remove ``.partial`` files an interrupted save left behind (not one another session is writing now)."""
    cutoff = time.time() - STALE_PARTIAL_S
    for partial in uploads.glob("*.partial"):
        try:
            if partial.stat().st_mtime < cutoff:
                partial.unlink()
        except OSError:
            continue


def read_preview(spec: str, resolution: int) -> tuple[cache.Preview | None, str | None]:
    """The cached preview of a dataset, or None and one sentence saying why it cannot be read."""
    try:
        return cache.preview(spec, resolution), None
    except Exception as exc:  # noqa: BLE001 - any failure to read the data is explained, never raised
        return None, explain(exc, "read this dataset")


def show_preview(preview: cache.Preview, resolution: int) -> None:
    """Real images, count, skipped files and classes."""
    st.image(image_grid(preview.images, columns=8), caption=f"Real images at {resolution} px", width="stretch")
    facts = [f"**{preview.count:,}** {noun(preview.count, 'image')}"]
    if preview.class_counts:
        classes = len(preview.class_counts)
        facts.append(f"**{classes}** {noun(classes, 'class', 'classes')}: "
                     + ", ".join(f"{k} ({v:,})" for k, v in preview.class_counts.items()))
    if preview.skipped:
        skipped = len(preview.skipped)
        facts.append(f"**{skipped}** unreadable {noun(skipped, 'file')} skipped")
    st.markdown(" · ".join(facts))
    if preview.skipped:
        with st.expander("Skipped files"):
            st.text("\n".join(preview.skipped[:200]))
