"""Train: pick images and a recipe, start a worker with one click, and watch faces emerge."""

from __future__ import annotations

import streamlit as st

import engine
from studio import monitor, settings
from studio.config_form import config_form
from studio.dataset_picker import choose_dataset, show_preview
from studio.errors import shown_in_page


def start(config: engine.Config, processes: int) -> None:
    """Launch a new run; on success make it the watched run."""
    run_dir = engine.new_run_dir(config)
    engine.start_training(config, run_dir, processes=processes)
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


def new_run_section(live: list[engine.Run]) -> None:
    if st.session_state.pop("new-run:collapse", False):
        st.session_state["new-run"] = False  # make room for the run just started
    with st.expander("New training run", expanded=not live, icon=":material/add_circle:", key="new-run",
                     on_change="rerun"):
        data_col, model_col = st.columns([5, 4], gap="large")
        with data_col:
            st.subheader("Dataset")
            spec = choose_dataset(settings.uploads_dir(engine.runs_root()))
        with model_col:
            st.subheader("Model and training")
            with shown_in_page("build the configuration"):
                config = config_form(spec or "")
                processes = gpu_count(config)
                if st.button("Start training", type="primary", icon=":material/play_arrow:",
                             disabled=spec is None, width="stretch"):
                    with shown_in_page("start training"):
                        start(config, processes)
        if spec is not None:
            with data_col:
                st.fragment(show_preview, parallel=True)(spec, st.session_state["cfg:data.resolution"])


def run_controls(run: engine.Run) -> None:
    """Stop a live run, or resume a stopped or failed one that has a checkpoint."""
    if run.is_live():
        stopping = run.stop_requested()
        if st.button("Stopping…" if stopping else "Stop", icon=":material/stop:", disabled=stopping,
                     help="Finishes the current step, saves a checkpoint and exits."):
            run.request_stop()
            st.rerun()
    elif run.latest_checkpoint() is not None and run.status()["state"] in ("stopped", "failed"):
        if st.button("Resume", icon=":material/resume:", help="Continue from the last checkpoint."):
            with shown_in_page("resume training"):
                engine.start_training(run.config(), run.path, resume=True)
                st.rerun()


def watched_run(runs: list[engine.Run], live: list[engine.Run]) -> engine.Run | None:
    if not runs:
        st.info("No runs yet: press **Start training** below. On a CPU the first faces show up within "
                "a few minutes.")
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
        with st.expander("Export progress as an animation", icon=":material/movie:"):
            monitor.export_progress(watched)
