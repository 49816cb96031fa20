"""The live view of one run: progress, generated next to real images, quality and loss curves, the
worker's log and errors, refreshed while it trains."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Literal

import streamlit as st

import engine
from engine.base import records
from engine.base.records import EventRecord, TrainRecord
from studio import cache, charts, doctor_panel, run_table
from studio.errors import explain, guarded
from studio.imaging import animation, image_grid, read_image
from studio.settings import LIVE_REFRESH_SECONDS

MAX_FRAMES = 60  # of a progress animation
LOG_LINES = 40  # of the worker's log shown on the page
LOG_TAIL_BYTES = 64 * 1024
BadgeColor = Literal["blue", "green", "gray", "violet", "red"]
STATE_BADGES: dict[str, tuple[str, BadgeColor]] = {
    "starting": ("Starting", "blue"), "running": ("Training", "green"), "stopped": ("Stopped", "gray"),
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


def noun(count: int, singular: str, plural_form: str | None = None) -> str:
    """The noun in the number ``count`` asks for: 'class' for 1, 'classes' otherwise."""
    return singular if count == 1 else plural_form or singular + "s"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """'1 class', '2 classes', '1,000 images': the count and its noun in the right number."""
    return f"{count:,} {noun(count, singular, plural_form)}"


def rate(img_per_sec: float) -> str:
    """'45 img/s', '3.2 img/s', '0.35 img/s'."""
    return f"{img_per_sec:,.0f} img/s" if img_per_sec >= 10 else f"{img_per_sec:.2g} img/s"


def file_size(size: int) -> str:
    """'850 KB', '12.3 MB'."""
    return f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{max(1, round(size / 2**10))} KB"


def progress_text(status: dict[str, Any], now: float) -> str:
    """What the run is doing, in one line: its start-up phase and time, or time, images, speed and ETA."""
    state = status["state"]
    step, images = status.get("step") or 0, status.get("images") or 0
    started = status.get("started_at")
    elapsed = max(0.0, now - started) if started else status.get("train_seconds")
    if state == "starting":
        phase = status.get("phase") or "starting the worker"
        return f"Starting: {phase}… · {duration(elapsed)}"
    if state != "running":
        parts = [f"step {step:,}", f"{plural(images, 'image')} seen"]
        if status.get("train_seconds"):
            parts.append(f"trained for {duration(status['train_seconds'])}")
        return " · ".join(parts)
    parts = [f"running for {duration(elapsed)}", f"{plural(images, 'image')} seen", f"step {step:,}"]
    if status.get("img_per_sec"):
        parts.append(rate(status["img_per_sec"]))
    if status.get("progress") is None:
        parts.append("no limit: runs until you press Stop")
    elif status.get("eta_seconds") is not None:
        parts.append(f"ETA {duration(status['eta_seconds'])}")
    return " · ".join(parts)


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
    if was_live and status["state"] not in engine.LIVE_STATES:
        st.rerun()  # the whole page: buttons change and polling stops
    live = status["state"] in engine.LIVE_STATES
    state_badge(status["state"])
    lines = run.metrics()
    train = records.train_records(lines)
    _progress(status)
    _growth(train)
    for event in records.events(lines, records.ROLLBACK):
        st.warning(event_text(event), icon=":material/history:")
    if status["state"] == "failed":
        st.error(f"Training failed: {status.get('error') or 'the worker stopped without saying why.'}",
                 icon=":material/error:")
    generated, real, quality = st.columns([1, 1, 1.4], gap="medium")
    with generated:
        _grids(run, live)
    with real:
        _real_images(run)
    with quality:
        axis, smoothing = _chart_controls()
        _quality_curve(run, lines, live, axis, smoothing)
    found = run.findings()
    curves, doctor = st.columns([2, 1.1], gap="medium") if found else (st.container(), None)
    with curves:
        _loss_curves(run, lines, train, live, axis, smoothing)
    if doctor is not None:
        with doctor:
            doctor_panel.findings_panel(run, found)
    _log(run, expanded=status["state"] == "failed")


def _loss_curves(run: engine.Run, lines: list[dict[str, Any]], train: list[TrainRecord], live: bool, axis: str,
                 smoothing: float) -> None:
    """The losses and D's outputs, and beside them the values the run's schedules ramp."""
    if train:
        losses = charts.loss_figure(lines, run.name, axis, smoothing, run_table.model_kind(run))
        keys = scheduled_keys(run)
        if keys:
            loss_col, schedule_col = st.columns([2, 1], gap="medium")
            loss_col.plotly_chart(losses, key="monitor-losses")
            schedule_col.plotly_chart(charts.schedule_figure(lines, run.name, keys), key="monitor-schedules")
        else:
            st.plotly_chart(losses, key="monitor-losses")
    elif live:
        st.info("The loss curves appear after the first few steps.")


def scheduled_keys(run: engine.Run) -> list[str]:
    """The training-record keys of the values the run's config schedules (its ramps that are not
    constant); none when its config cannot be read."""
    try:
        return list(run.config().scheduled())
    except engine.ConfigError:
        return []


def event_text(event: EventRecord) -> str:
    """What a rollback record says in words (train.on_divergence=rollback)."""
    return (f"Training diverged at step {event.diverged_at:,} ({event.detail}): rolled back to the "
            f"checkpoint at step {event.step:,} and halved the learning rates (G {event.lr_g:.1e}, "
            f"D {event.lr_d:.1e}).")


def _progress(status: dict[str, Any]) -> None:
    text = progress_text(status, time.time())
    progress = status.get("progress")
    if status["state"] == "running" and progress is not None:
        st.progress(min(max(progress, 0.0), 1.0), text=text)
    else:
        st.markdown(text)


def growth_text(record: TrainRecord) -> str | None:
    """'Growing: 16×16 px, fading in (α = 0.43)' for a progressive GAN's latest log line."""
    if records.STAGE_RESOLUTION not in record.values:
        return None
    size, alpha = int(record.values[records.STAGE_RESOLUTION]), float(record.values.get(records.ALPHA, 1.0))
    phase = f"fading in (α = {alpha:.2f})" if alpha < 1.0 else "stable"
    return f"Growing: {size}×{size} px, {phase}"


def _growth(train: list[TrainRecord]) -> None:
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
    step = st.session_state[key]
    st.image(read_image(grids[step]), caption=f"Generated: fixed latents at step {step:,} (EMA generator)",
             width="stretch")
    if len(steps) > 1:
        st.select_slider("Progress grid at step", steps, key=key)


def _real_images(run: engine.Run) -> None:
    """As many training images as the progress grid shows, tiled the same way (so both are the same size)."""
    try:
        config = run.config()
        count = config.train.grid_size
        images = cache.preview(config.data.spec, config.data.resolution, count).images
    except Exception as exc:  # noqa: BLE001 - the run's data may be gone; the rest of the panel still shows
        st.caption(explain(exc, "show the real training images"))
        return
    columns = max(1, int(math.sqrt(count)))
    st.image(image_grid(images, columns=columns), caption=f"Real: training images at {config.data.resolution} px",
             width="stretch")


def _chart_controls() -> tuple[str, float]:
    """The curves' x axis (time, steps or images) and smoothing, kept for the session."""
    st.session_state.setdefault("chart:axis", "time")
    st.session_state.setdefault("chart:smoothing", 0.6)
    axis_col, smooth_col = st.columns(2)
    axis = axis_col.segmented_control("Plot against", list(charts.AXES), required=True, key="chart:axis",
                                      format_func={"time": "Time", "step": "Steps", "images": "Images"}.__getitem__,
                                      persist_state="session")
    smoothing = smooth_col.slider("Smoothing", 0.0, 0.99, step=0.01, key="chart:smoothing", persist_state="session",
                                  help="Exponential moving average, as in TensorBoard: 0 draws the raw values.")
    return axis or "time", smoothing


def _quality_curve(run: engine.Run, lines: list[dict[str, Any]], live: bool, axis: str, smoothing: float) -> None:
    """The live metric (and any periodic evaluation) against ``axis``."""
    if charts.metric_series(lines):
        st.plotly_chart(charts.metric_figure(lines, run.name, axis, smoothing), key="monitor-metrics")
    elif live:
        _no_curve_yet(run.config().metrics)


def _no_curve_yet(config: engine.MetricsConfig) -> None:
    """Why a training run has no quality curve yet, by what its metric settings measure."""
    if config.live_samples > 0 or config.every_images > 0:
        st.info("The quality curve (live SWD of generated against real images, lower is better) appears after "
                "its first measurement.")
    elif config.live_fid:
        st.caption("The live SWD is off (Live metric samples 0) and no periodic evaluation is set: only the live "
                   "FID-1k draws a quality curve here, where the Inception network is on this machine.")
    else:
        st.caption("No quality curve for this run: its live metric is off (Live metric samples 0) and it has no "
                   "periodic evaluation (Evaluate every 0 images). Set either for the next run.")


def log_tail(path: Path, lines: int = LOG_LINES) -> str:
    """The last ``lines`` lines of a (possibly large, still growing) text file; '' when it is missing."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _log(run: engine.Run, expanded: bool) -> None:
    """The end of the worker's log (refreshing with the panel), and the whole log as a download."""
    with st.expander(f"Worker log (last {LOG_LINES} lines)", icon=":material/description:", expanded=expanded):
        tail = log_tail(run.log_path)
        if not tail:
            st.caption("The worker has not written anything yet.")
            return
        st.code(tail, language=None)
        st.download_button("Download the whole log", run.log_path.read_bytes, file_name=f"{run.name}.log",
                           mime="text/plain", on_click="ignore", icon=":material/download:")


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
