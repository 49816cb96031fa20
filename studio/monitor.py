"""The live view of one run: progress, curves, progress grids and errors, refreshed while it trains."""

from __future__ import annotations

from typing import Any

import streamlit as st

import engine
from studio import charts
from studio.errors import guarded
from studio.imaging import animation, read_image
from studio.settings import LIVE_REFRESH_SECONDS

LIVE_STATES = ("starting", "running")
MAX_FRAMES = 60  # of a progress animation
STATE_BADGES = {"starting": ("Starting", "blue"), "running": ("Training", "green"), "stopped": ("Stopped", "gray"),
                "finished": ("Finished", "violet"), "failed": ("Failed", "red"), "unknown": ("Unknown", "gray")}


def duration(seconds: float | None) -> str:
    """'1 h 05 min', '3 min 20 s' or '45 s'."""
    if seconds is None:
        return "–"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def state_badge(state: str) -> None:
    label, color = STATE_BADGES.get(state, (state, "gray"))
    st.badge(label, color=color)


def watch(run: engine.Run) -> None:
    """Show the run; while it is live, refresh every few seconds without reloading the page."""
    live = run.is_live()
    st.fragment(_panel, run_every=LIVE_REFRESH_SECONDS if live else None)(run, live)


@guarded("show this run")
def _panel(run: engine.Run, was_live: bool) -> None:
    status = run.status()
    if was_live and status["state"] not in LIVE_STATES:
        st.rerun()  # the whole page: buttons change and polling stops
    live = status["state"] in LIVE_STATES
    state_badge(status["state"])
    records = run.metrics()
    _progress(status)
    _growth(charts.train_records(records))
    if status["state"] == "failed":
        st.error(f"Training failed: {status.get('error') or 'the worker stopped without saying why.'}",
                 icon=":material/error:")
        if run.log_path.is_file():
            st.download_button("Download the worker's log", run.log_path.read_bytes(), file_name=f"{run.name}.log",
                               mime="text/plain", on_click="ignore", icon=":material/description:")
    left, right = st.columns([5, 6])
    with left:
        _grids(run, live)
    with right:
        if charts.train_records(records):
            st.plotly_chart(charts.loss_figure(records, run.name), key="monitor-losses")
        elif live:
            st.info("Loss curves appear after the first few steps.")
        if charts.metric_names(records):
            st.plotly_chart(charts.metric_figure(records, run.name), key="monitor-metrics")


def _progress(status: dict[str, Any]) -> None:
    step, images = status.get("step") or 0, status.get("images") or 0
    parts = [f"step {step:,}", f"{images:,} images"]
    progress = status.get("progress")
    if status["state"] in LIVE_STATES:
        if status.get("img_per_sec"):
            parts.append(f"{status['img_per_sec']:.0f} img/s")
        if progress is None:
            parts.append("runs until you press Stop")
        elif status.get("eta_seconds") is not None:
            parts.append(f"ETA {duration(status['eta_seconds'])}")
    if status["state"] == "starting" and not step:
        parts = ["preparing the dataset and the model…"]
    if status["state"] in LIVE_STATES and progress is not None:
        st.progress(min(max(progress, 0.0), 1.0), text=" · ".join(parts))
    else:
        st.markdown(" · ".join(parts))


def growth_text(record: dict[str, Any]) -> str | None:
    """'Growing: 16×16 px, fading in (α = 0.43)' for a progressive GAN's latest log line."""
    if "stage_resolution" not in record:
        return None
    size, alpha = int(record["stage_resolution"]), float(record.get("alpha", 1.0))
    phase = f"fading in (α = {alpha:.2f})" if alpha < 1.0 else "stable"
    return f"Growing: {size}×{size} px, {phase}"


def _growth(train: list[dict[str, Any]]) -> None:
    text = growth_text(train[-1]) if train else None
    if text:
        st.caption(text)


def _grids(run: engine.Run, live: bool) -> None:
    """The latest progress grid, with a slider to scrub back (it follows new grids unless moved)."""
    grids = dict(run.grids())
    if not grids:
        if live:
            st.info("The first grid of generated faces appears after a few steps.")
        return
    steps = list(grids)
    key, last_key = f"grid-step:{run.name}", f"grid-last:{run.name}"
    if st.session_state.get(key) in (None, st.session_state.get(last_key)) or st.session_state[key] not in grids:
        st.session_state[key] = steps[-1]
    st.session_state[last_key] = steps[-1]
    if len(steps) > 1:
        step = st.select_slider("Progress grid at step", steps, key=key)
    else:
        step = steps[0]
    st.image(read_image(grids[step]), caption=f"Fixed latents at step {step:,} (EMA generator)",
             width="stretch")


def export_progress(run: engine.Run) -> None:
    """Download the progress grids as an animation (encoded when the button is pressed)."""
    grids = run.grids()
    if len(grids) < 2:
        st.caption("Export needs at least two progress grids.")
        return
    fmt = st.segmented_control("Format", ["gif", "mp4"], default="gif", required=True, key=f"export:{run.name}",
                               format_func=str.upper)
    paths = [p for _, p in grids]
    stride = -(-len(paths) // MAX_FRAMES)
    frames = paths[::stride] + ([paths[-1]] if (len(paths) - 1) % stride else [])
    size = 512 if fmt == "mp4" else 0  # GIFs stay at the grids' own size: smaller and quicker to encode
    st.download_button(f"Download {len(frames)} frames as {fmt.upper()}",
                       data=lambda: animation([read_image(p) for p in frames], fmt, fps=6, size=size),
                       file_name=f"{run.name}-progress.{fmt}", mime="image/gif" if fmt == "gif" else "video/mp4",
                       on_click="ignore", icon=":material/movie:")
