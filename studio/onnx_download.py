"""The "Download ONNX" control of Explore and Runs: the generator is exported and checked against PyTorch when
asked (a few seconds on a CPU, under a spinner), then offered as one ``.onnx`` file."""

from __future__ import annotations

import re

import streamlit as st

import engine
from engine.onnx_export import OnnxGenerator, usage
from studio import cache
from studio.errors import explain

EXPORTED = "onnx:exported"  # {generator path: (weights version, OnnxGenerator)} exported in this session


def file_name(name: str) -> str:
    """``<name>-generator.onnx``, with what a file name cannot hold replaced by '-'."""
    return f"{re.sub(r'[^A-Za-z0-9._]+', '-', name).strip('-.') or 'gan'}-generator.onnx"


def _export(path: str, version: str) -> OnnxGenerator | None:
    """The checked export, remembered for this session; None, with the reason in the page, when it fails."""
    with st.spinner("Exporting to ONNX and checking it against PyTorch with onnxruntime…"):
        try:
            exported = engine.to_onnx(cache.generator(path, version))
        except Exception as exc:  # noqa: BLE001 - shown to the user in plain words
            st.error(explain(exc, "export this generator to ONNX"), icon=":material/error:")
            return None
    st.session_state.setdefault(EXPORTED, {})[path] = (version, exported)
    return exported


def onnx_download(path: str, version: str, name: str) -> None:
    """An "Export to ONNX" button for the generator at ``path``, then "Download ONNX" with the parity check's
    result. ``version`` names its weights (a newer checkpoint is exported again); ``name`` names the file."""
    done = st.session_state.get(EXPORTED, {}).get(path)
    exported = done[1] if done is not None and done[0] == version else None
    button_col, note_col = st.columns([1, 3], vertical_alignment="center")
    slot = button_col.empty()  # the export button, replaced by the download once exported
    if exported is None and slot.button(
            "Export to ONNX", icon=":material/deployed_code:", key=f"onnx-export:{path}", width="stretch",
            help="A portable copy of the generator for onnxruntime (Python, C++, C#, JavaScript…): latents in, "
                 "uint8 RGB images out, any batch size. Checked against PyTorch before it is offered."):
        with note_col:
            exported = _export(path, version)
    if exported is None:
        return
    file = file_name(name)
    slot.download_button(f"Download ONNX ({len(exported.data) / 2**20:.1f} MB)", exported.data, file_name=file,
                         mime="application/octet-stream", on_click="ignore", icon=":material/download:",
                         width="stretch", key=f"onnx-download:{path}",
                         help="The generator for onnxruntime: latents in, uint8 RGB images out.")
    note_col.caption(f"Checked: {exported.parity}. Sample from it without PyTorch "
                     "(`pip install onnxruntime numpy pillow`):")
    note_col.code(usage(exported.info, file), language="python", wrap_lines=True)
