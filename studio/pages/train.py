"""Train: pick images and a recipe sized for this device, start a worker with one click, and watch
faces emerge next to real ones."""

from __future__ import annotations

import contextlib
from typing import Any

import streamlit as st

import engine
from engine.base import records
from engine.train.schedule import halve_learning_rate_curves
from studio import monitor, settings
from studio.config_form import batch_problem, config_form, config_problem, longer, trained_seconds
from studio.dataset_picker import SOURCES, choose_dataset, read_preview, show_preview
from studio.errors import shown_in_page

LONGER_INPUTS = {"minutes": (10, 5), "steps": (1000, 100)}  # default amount and step of the "more" input


def start(config: engine.Config, processes: int, name: str) -> None:
    """Launch a new run (named ``name``, or after its time, model and size); make it the watched run."""
    run_dir = engine.new_run_dir(config, name=name or None)
    try:
        engine.start_training(config, run_dir, processes=processes)
    except Exception:
        with contextlib.suppress(OSError):  # the name stays free for the next try
            run_dir.rmdir()
        raise
    st.session_state["run"] = run_dir.name
    st.session_state["new-run:collapse"] = True
    st.rerun()


def gpu_count(config: engine.Config) -> int:
    """How many GPUs the run trains on: a choice when several are visible (torchrun + DDP)."""
    gpus = engine.visible_gpus()
    if gpus < 2 or config.train.device not in ("auto", "cuda"):
        return 1
    st.session_state.setdefault("gpus", gpus)
    count = st.number_input("GPUs", min_value=1, max_value=gpus, step=1, key="gpus",
                            help="More than one trains with torchrun and DistributedDataParallel; the batch "
                                 "size is the global batch, split evenly over the GPUs.")
    if config.train.batch_size % count:
        st.warning(f"The batch size {config.train.batch_size} does not split evenly over {count} GPUs.")
    return int(count)


def missing_data_reason() -> str:
    """Why there is no dataset yet, in the words of the chosen source."""
    kind = st.session_state.get("data:kind", "")
    if kind == "zip":
        return "upload a .zip of images, or pick one uploaded before"
    if kind == "folder":
        return "enter a folder of images on this machine"
    return f"choose the images ({SOURCES.get(kind, 'a source')})"


def expectation(config: engine.Config) -> str | None:
    """Show the expected speed (and where it comes from) and checkpoint size; return the sentence
    saying the configuration is too slow here, if it is."""
    device = engine.detect_device(config.train.device)
    expected = engine.expectation(config, device)
    if expected.img_per_sec:
        speed = f"**~{monitor.rate(expected.img_per_sec)}** ({expected.source})"
    else:
        speed = f"speed {expected.source}"
    st.caption(f"Expected: {speed} · one checkpoint **{monitor.file_size(expected.checkpoint_bytes)}**")
    return expected.too_slow


def start_area(config: engine.Config, processes: int, spec: str | None, preview: Any, problem: str | None) -> None:
    """Run name, expectations, checks and the Start button (disabled, with the reason, when it cannot start)."""
    name = st.text_input("Run name (optional)", key="new-run:name", persist_state="session",
                         placeholder="e.g. cats-fastgan-first-try",
                         help="Letters, digits, '.', '_' and '-'. Empty: the date, time, model and size.").strip()
    error, warning = batch_problem(config.train.batch_size, preview.count if preview else None)
    invalid = config_problem(config, len(preview.class_counts)) if preview is not None and not error else None
    reason = None
    if spec is None:
        reason = missing_data_reason()
    elif problem:
        reason = "the chosen dataset cannot be read (see the message under Dataset)"
    elif error:
        reason = "the batch size is not valid"
    elif invalid:
        reason = "the configuration is not valid (see the message above)"
    error = error or invalid
    if error:
        st.error(error, icon=":material/error:")
    if warning:
        st.warning(warning, icon=":material/warning:")
    if not error:
        with shown_in_page("estimate the speed of this configuration"):
            too_slow = expectation(config)
            if too_slow:
                st.warning(too_slow, icon=":material/hourglass_bottom:")
    if st.button("Start training", type="primary", icon=":material/play_arrow:", disabled=reason is not None,
                 width="stretch"):
        with shown_in_page("start training"):
            start(config, processes, name)
    if reason:
        st.caption(f":material/block: Start is disabled: {reason}.")


def new_run_section(live: list[engine.Run]) -> None:
    """Dataset, recipe and form, then Start (open at first; folded while a run trains)."""
    collapse = st.session_state.pop("new-run:collapse", False)  # make room for the run just started
    if collapse or "new-run" not in st.session_state:  # else the user's choice stands
        st.session_state["new-run"] = not live and not collapse
    with st.expander("New training run", icon=":material/add_circle:", key="new-run", on_change="rerun"):
        data_col, model_col = st.columns([5, 4], gap="large")
        with data_col:
            st.subheader("Dataset")
            spec = choose_dataset(settings.uploads_dir(engine.runs_root()))
        with model_col:
            st.subheader("Model and training")
            with shown_in_page("build the configuration"):
                config = config_form(spec or "")
                processes = gpu_count(config)
                with data_col:  # read before Start is drawn: Start waits for a dataset that can be read
                    preview, problem = read_preview(spec, config.data.resolution) if spec else (None, None)
                    if preview is not None:
                        show_preview(preview, config.data.resolution)
                    elif problem:
                        st.error(problem, icon=":material/error:")
                start_area(config, processes, spec, preview, problem)


def train_longer(run: engine.Run) -> None:
    """Continue a finished run from its last checkpoint for more minutes or steps."""
    with st.popover("Train longer", icon=":material/more_time:"):
        unit = st.segmented_control("By", list(LONGER_INPUTS), default="minutes", required=True,
                                    key=f"longer-unit:{run.name}")
        default, step = LONGER_INPUTS[unit]
        amount = st.number_input(f"More {unit}", min_value=1, value=default, step=step,
                                 key=f"longer:{run.name}:{unit}")
        if st.button("Continue training", type="primary", icon=":material/play_arrow:", key=f"longer-go:{run.name}"):
            with shown_in_page("train longer"):
                status = run.status()
                config = longer(run.config(), status.get("step") or 0, trained_seconds(run, status), unit,
                                int(amount))
                engine.start_training(config, run.path, resume=True)
                st.rerun()


def run_controls(run: engine.Run) -> None:
    """Stop a live run; resume a stopped or failed one, or train a finished one longer."""
    if run.is_live():
        stopping = run.stop_requested()
        st.button("Stopping…" if stopping else "Stop", icon=":material/stop:", disabled=stopping,
                  help="Finishes the current step, saves a checkpoint and exits.", on_click=run.request_stop)
        return
    if run.latest_checkpoint() is None:
        return
    state = run.status()["state"]
    if state in ("stopped", "failed"):
        if st.button("Resume", icon=":material/resume:", help="Continue from the last checkpoint."):
            with shown_in_page("resume training"):
                engine.start_training(run.config(), run.path, resume=True)
                st.rerun()
        if state == "failed" and records.events(run.metrics(), records.DIVERGENCE):
            calmer_resume(run)
    elif state == "finished":
        train_longer(run)


def calmer_resume(run: engine.Run) -> None:
    """After a divergence: resume from the last finite checkpoint with both learning rates halved (and their
    ramps' final values)."""
    config = run.config()
    halve_learning_rate_curves(config)
    if st.button("Resume at half the LR", icon=":material/speed:",
                 help=f"Continue from the last finite checkpoint with learning rates G {config.optim.lr_g:.1e} "
                      f"and D {config.optim.lr_d:.1e} (the run diverged with twice these)."):
        with shown_in_page("resume training"):
            engine.start_training(config, run.path, resume=True)
            st.rerun()


def watched_run(runs: list[engine.Run], live: list[engine.Run]) -> engine.Run | None:
    """The run chosen to watch (a live one first) and its Stop/Resume/Train longer controls."""
    if not runs:
        st.info("No runs yet: press **Start training** below. The recommended recipe shows its first faces "
                "within minutes on this device.")
        return None
    names = [r.name for r in runs]
    if st.session_state.get("run") not in names and st.query_params.get("run") not in names:
        st.session_state["run"] = live[0].name if live else names[0]
    head, controls = st.columns([4, 1], vertical_alignment="bottom")
    with head:
        name = st.selectbox("Run", names, key="run", bind="query-params", persist_state="session")
    run = runs[names.index(name)]
    with controls:
        run_controls(run)
    return run


def run_config(run: engine.Run) -> None:
    """The watched run's whole configuration."""
    with st.expander("Configuration of this run", icon=":material/tune:"):
        with shown_in_page("read this run's configuration"):
            st.json(run.config().to_dict(), expanded=2)


st.title("Train")
st.caption(f"Device: {engine.device_summary()}")
watch_area = st.container()  # drawn after the form below, so that a run started there shows up here at once
runs_now = engine.list_runs(engine.runs_root())
new_run_section([r for r in runs_now if r.is_live()])
runs_now = engine.list_runs(engine.runs_root())
with watch_area, shown_in_page("show the runs"):
    watched = watched_run(runs_now, [r for r in runs_now if r.is_live()])
    if watched is not None:
        monitor.watch(watched)
        run_config(watched)
        with st.expander("Export progress as an animation", icon=":material/movie:"):
            monitor.export_progress(watched)
