"""Runs: every run at a glance (refreshed while one trains); compare curves, see a run's config, download its
weights, continue it on Train, rename, delete and share it on the Hub."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import engine
from engine.base import records
from studio import cache, charts, settings
from studio.errors import explain, guarded, shown_in_page
from studio.onnx_download import onnx_download
from studio.run_table import generator_zip, summary

COLUMNS = ("Run", "Status", "Dataset", "Model", "Resolution", "Steps", "Images seen", "Best metric", "Size (MB)")
SERIES = {records.stat_label(key): (key, records.TRAIN) for key in records.ADVERSARIAL_STATS}
TABLE = "runs-table"
SHOWN = "runs:shown"  # run names in the order the table last showed them: what ticked row numbers refer to
PICKED = "runs:picked"  # names of the ticked runs the panels below the table were drawn for
NOTICE = "runs:notice"
DELETING = "runs:deleting"  # the run whose Delete dialog is open
TRAIN_PAGE = "studio/pages/train.py"
CONTINUE = {**dict.fromkeys(engine.LIVE_STATES, "Watch on the Train page"), "stopped": "Resume on the Train page",
            "failed": "Resume on the Train page", "finished": "Train longer on the Train page"}


def ticked_rows() -> list[int]:
    return list(st.session_state[TABLE]["selection"]["rows"]) if TABLE in st.session_state else []


def ticked(names: list[str]) -> list[str]:
    """Names of the ticked runs, reading the table's row numbers against ``names``."""
    return [names[i] for i in ticked_rows() if i < len(names)]


def keep_ticks(names: list[str]) -> None:
    """Tick the same runs again when the table's rows moved (a run was added, renamed or deleted) or the
    table comes back after a visit to another page."""
    if TABLE in st.session_state:
        picked = ticked(st.session_state.get(SHOWN, names))
    else:
        picked = st.session_state.get(PICKED, [])
    rows = [names.index(name) for name in picked if name in names]
    if rows != ticked_rows():
        st.session_state[TABLE] = {"selection": {"rows": rows, "columns": []}}
    st.session_state[SHOWN] = names


@guarded("list the runs")
def table(was_live: bool) -> None:
    """The runs table (a fragment: it reruns every few seconds while a run trains, and alone when rows are
    ticked); reruns the page when the ticked runs change or the last live run ends."""
    runs = engine.list_runs(engine.runs_root())
    names = [run.name for run in runs]
    keep_ticks(names)
    st.dataframe(pd.DataFrame([summary(r) for r in runs], columns=COLUMNS), hide_index=True, on_select="rerun",
                 selection_mode="multi-row", key=TABLE,
                 column_config={"Images seen": st.column_config.NumberColumn(format="localized"),
                                "Steps": st.column_config.NumberColumn(format="localized"),
                                "Size (MB)": st.column_config.NumberColumn(format="%.1f")})
    picked = ticked(names)
    if picked != st.session_state.get(PICKED, []) or (was_live and not any(r.is_live() for r in runs)):
        st.session_state[PICKED] = picked
        st.rerun()


def rename(run: engine.Run, key: str) -> None:
    """Rename button callback: the run keeps its tick and its open panel; the message names the new name."""
    try:
        renamed = run.rename(st.session_state[key].strip())
    except Exception as exc:  # noqa: BLE001 - shown to the user in plain words
        st.session_state[NOTICE] = ("error", explain(exc, f"rename {run.name}"))
        return
    st.session_state[NOTICE] = ("success", f"Renamed {run.name} to {renamed.name}.")
    st.session_state[SHOWN] = [renamed.name if n == run.name else n for n in st.session_state.get(SHOWN, [])]
    st.session_state[PICKED] = [renamed.name if n == run.name else n for n in st.session_state.get(PICKED, [])]
    st.session_state[f"panel:{renamed.name}"] = True


def ask_delete(name: str) -> None:
    """Delete… button callback: the page shows the confirmation dialog while this is set."""
    st.session_state[DELETING] = name


def cancel_delete() -> None:
    st.session_state.pop(DELETING, None)


def delete(run: engine.Run) -> None:
    """Delete button callback (in the dialog): the message names the run, which leaves the table and the ticks."""
    cancel_delete()
    try:
        run.delete()
    except Exception as exc:  # noqa: BLE001 - shown to the user in plain words
        st.session_state[NOTICE] = ("error", explain(exc, f"delete {run.name}"))
        return
    st.session_state[NOTICE] = ("success", f"Deleted {run.name}.")
    st.session_state[PICKED] = [n for n in st.session_state.get(PICKED, []) if n != run.name]


@st.dialog("Delete run", on_dismiss=cancel_delete)
def confirm_delete(run: engine.Run) -> None:
    if st.session_state.get(DELETING) != run.name:
        st.rerun()  # Delete or Cancel was pressed (the dialog reruns alone): close it and redraw the page
    st.write(f"Delete **{run.name}** and everything it saved (checkpoints, grids, curves)? This cannot be undone.")
    left, right = st.columns(2)
    left.button("Delete", type="primary", icon=":material/delete:", width="stretch", on_click=delete, args=(run,))
    right.button("Cancel", width="stretch", on_click=cancel_delete)


def manage(run: engine.Run) -> None:
    """Rename, delete, continue on Train or share one run (hidden in read-only mode)."""
    name_col, rename_col, delete_col = st.columns([3, 1, 1], vertical_alignment="bottom")
    key = f"rename:{run.name}"
    new_name = name_col.text_input("Name", value=run.name, key=key).strip()
    rename_col.button("Rename", icon=":material/edit:", disabled=new_name == run.name, width="stretch",
                      key=f"rename-button:{run.name}", on_click=rename, args=(run, key))
    live = run.is_live()
    delete_col.button("Delete…", icon=":material/delete:", width="stretch", disabled=live,
                      help="Stop the run first." if live else None, key=f"delete-button:{run.name}",
                      on_click=ask_delete, args=(run.name,))
    has_checkpoint = run.latest_checkpoint() is not None
    label = CONTINUE.get(run.status()["state"])
    continue_col, share_col = st.columns(2)
    if label and (live or has_checkpoint) and continue_col.button(
            label, icon=":material/model_training:", key=f"continue-button:{run.name}", width="stretch"):
        st.session_state["run"] = run.name
        st.switch_page(TRAIN_PAGE)
    if has_checkpoint and share_col.button("Share on the Hugging Face Hub…", icon=":material/share:",
                                           key=f"share-button:{run.name}", width="stretch"):
        st.session_state["hub:run"] = run.name
        st.switch_page("studio/pages/share.py")


def details(run: engine.Run) -> None:
    """The latest weights as a download (exported when clicked) and the run's whole config, read-only."""
    if run.latest_checkpoint() is not None:
        st.download_button("Download latest weights (.safetensors)", data=lambda: generator_zip(run),
                           file_name=f"{run.name}-generator.zip", mime="application/zip", on_click="ignore",
                           icon=":material/download:", key=f"weights:{run.name}",
                           help="The EMA generator of the latest checkpoint: model.safetensors + config.json. "
                                "Unzipped, `engine.load_generator(folder)` loads it.")
        onnx_download(str(run.path), cache.version(run.path), run.name)
    try:
        config = run.config()
    except engine.ConfigError as exc:
        st.error(explain(exc, f"read the config of {run.name}"), icon=":material/error:")
        return
    st.caption("Configuration")
    st.json(config.to_dict(), expanded=1)


def compare(runs: list[engine.Run]) -> None:
    """Overlay the chosen curve of several runs."""
    lines = {r.name: r.metrics() for r in runs}
    metric_series = {charts.metric_label(key): (key, records.EVAL) for run_lines in lines.values()
                     for key in charts.metric_names(run_lines)}
    series = {**SERIES, **metric_series}
    choice = st.segmented_control("Curve", list(series), default=records.stat_label(records.LOSS_G), required=True,
                                  key="runs:curve")
    key, kind = series[choice]
    st.plotly_chart(charts.overlay_figure(lines, key, choice, kind), key="runs-overlay")


def runs_page() -> None:
    all_runs = engine.list_runs(engine.runs_root())
    if not all_runs:
        st.info("No runs yet." + ("" if settings.read_only() else " Start one on the **Train** page."))
        return
    deleting = [run for run in all_runs if run.name == st.session_state.get(DELETING)]
    if deleting:
        confirm_delete(deleting[0])
    else:
        cancel_delete()  # the run went away meanwhile
    live = any(run.is_live() for run in all_runs)
    st.fragment(table, run_every=settings.LIVE_REFRESH_SECONDS if live else None)(live)
    picked = st.session_state.get(PICKED, [])
    chosen = [run for run in all_runs if run.name in picked]
    if not chosen:
        st.caption("Tick runs in the table to compare their curves, see their configs and download their weights"
                   + ("." if settings.read_only() else ", or to rename, delete, resume or share them."))
        return
    compare(chosen)
    for run in chosen:
        title = f"Details of {run.name}" if settings.read_only() else f"Manage {run.name}"
        with st.expander(title, icon=":material/settings:", key=f"panel:{run.name}", on_change="rerun"):
            if not settings.read_only():
                manage(run)
            details(run)


st.title("Runs")
st.caption(f"Runs are stored in `{engine.runs_root()}`.")
notice = st.session_state.pop(NOTICE, None)
if notice:
    (st.error if notice[0] == "error" else st.success)(notice[1])
with shown_in_page("list the runs"):
    runs_page()
