"""Runs: every run at a glance; compare curves, rename, delete and share on the Hub."""

from __future__ import annotations

from typing import Callable

import pandas as pd
import streamlit as st

import engine
from studio import charts, settings
from studio.errors import explain, shown_in_page
from studio.run_table import summary

COLUMNS = ("Run", "Status", "Dataset", "Model", "Resolution", "Steps", "Images seen", "Best metric", "Size (MB)")
SERIES = {"G loss": ("loss_g", "train"), "D loss": ("loss_d", "train"), "D(x)": ("d_real", "train"),
          "D(G(z))": ("d_fake", "train")}


def notify(action: str, fn: Callable[[], object]) -> None:
    """Button callback: do ``fn`` and leave a message for the page (callbacks run before it is drawn)."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - shown to the user in plain words
        st.session_state["runs:notice"] = ("error", explain(exc, action))
    else:
        st.session_state["runs:notice"] = ("success", f"Done: {action}.")
        st.session_state.pop("runs-table", None)


@st.dialog("Delete run")
def confirm_delete(run: engine.Run) -> None:
    st.write(f"Delete **{run.name}** and everything it saved (checkpoints, grids, curves)? This cannot be undone.")
    left, right = st.columns(2)
    left.button("Delete", type="primary", icon=":material/delete:", width="stretch",
                on_click=notify, args=(f"delete {run.name}", run.delete))
    right.button("Cancel", width="stretch")


def manage(run: engine.Run) -> None:
    """Rename, delete or share one run (hidden in read-only mode)."""
    name_col, rename_col, delete_col = st.columns([3, 1, 1], vertical_alignment="bottom")
    key = f"rename:{run.name}"
    new_name = name_col.text_input("Name", value=run.name, key=key).strip()
    rename_col.button("Rename", icon=":material/edit:", disabled=new_name == run.name, width="stretch",
                      key=f"rename-button:{run.name}", on_click=notify,
                      args=(f"rename {run.name}", lambda: run.rename(st.session_state[key].strip())))
    if delete_col.button("Delete…", icon=":material/delete:", width="stretch", disabled=run.is_live(),
                         help="Stop the run first." if run.is_live() else None, key=f"delete-button:{run.name}"):
        confirm_delete(run)
    if run.latest_checkpoint() is not None and st.button(
            "Share on the Hugging Face Hub…", icon=":material/share:", key=f"share-button:{run.name}"):
        st.session_state["hub:run"] = run.name
        st.switch_page("studio/pages/share.py")


def compare(runs: list[engine.Run]) -> None:
    """Overlay the chosen curve of several runs."""
    records = {r.name: r.metrics() for r in runs}
    metric_series = {charts.metric_label(key): (key, "eval") for recs in records.values()
                     for key in charts.metric_names(recs)}
    series = {**SERIES, **metric_series}
    choice = st.segmented_control("Curve", list(series), default="G loss", required=True, key="runs:curve")
    key, kind = series[choice]
    st.plotly_chart(charts.overlay_figure(records, key, choice, kind), key="runs-overlay")


def runs_page() -> None:
    all_runs = engine.list_runs(engine.runs_root())
    if not all_runs:
        st.info("No runs yet." + ("" if settings.read_only() else " Start one on the **Train** page."))
        return
    table = pd.DataFrame([summary(r) for r in all_runs], columns=COLUMNS)
    picked = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="multi-row", key="runs-table",
                          column_config={"Images seen": st.column_config.NumberColumn(format="localized"),
                                         "Steps": st.column_config.NumberColumn(format="localized"),
                                         "Size (MB)": st.column_config.NumberColumn(format="%.1f")})
    chosen = [all_runs[i] for i in picked.selection.rows if i < len(all_runs)]
    if not chosen:
        st.caption("Tick runs in the table to compare their curves"
                   + ("." if settings.read_only() else ", rename, delete or share them."))
        return
    compare(chosen)
    if not settings.read_only():
        for run in chosen:
            with st.expander(f"Manage {run.name}", icon=":material/settings:"):
                manage(run)


st.title("Runs")
st.caption(f"Runs are stored in `{engine.runs_root()}`.")
notice = st.session_state.pop("runs:notice", None)
if notice:
    (st.error if notice[0] == "error" else st.success)(notice[1])
with shown_in_page("list the runs"):
    runs_page()
