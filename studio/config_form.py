"""The model and hyper-parameter form of the Train page: widgets in, a validated engine Config out.

Widget values live in ``st.session_state`` under ``cfg:<dotted key>`` (and ``opt:<model>:<name>`` for
model options), so a recipe, sized for this device, can fill the whole form at once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import streamlit as st

import engine
from engine import metrics
from engine.base import records
from engine.config import RAMP_SHAPES, SCHEDULED, dotted_value
from studio import monitor

LONGER_UNITS = ("minutes", "steps")
SIZE_LABELS = {"auto": "Auto", "cpu": "CPU", "small-gpu": "Small GPU", "large-gpu": "Large GPU",
               "source": "Source"}


def loss_help() -> str:
    """Each of the engine's losses in a sentence, for the Loss field's help."""
    return "\n\n".join(f"**{loss.name}** ({loss.label}): {loss.description}" for loss in engine.list_losses())


def metric_choices() -> tuple[str, ...]:
    """The engine's metrics, those that need no download first."""
    return tuple(m.name for m in sorted(metrics.list_metrics(), key=lambda m: m.feature_net != "none"))


def ranking_choices() -> tuple[str, ...]:
    """The metric outputs that can rank checkpoints (better is lower or higher), in the order of
    ``metric_choices``."""
    return tuple(name for metric in map(metrics.get_metric, metric_choices())
                 for name, output in metric.outputs.items() if output.lower_is_better is not None)


@dataclass(frozen=True)
class Field:
    """One config value and how it is edited."""

    key: str  # dotted config key, e.g. "optim.lr_g"
    label: str
    help: str = ""
    options: tuple[Any, ...] = ()  # a selectbox when given
    min_value: float | None = 0
    step: float | None = None
    fmt: str | None = None
    to_widget: Callable[[Any], Any] = field(default=lambda v: v)
    from_widget: Callable[[Any], Any] = field(default=lambda v: v)


BASIC = (
    Field("train.batch_size", "Batch size", "Images per step.", min_value=None),
    Field("train.max_steps", "Stop after steps", "0 trains until you press Stop (or another limit).",
          min_value=0),
    Field("train.max_seconds", "Stop after minutes", "0 = no time limit.", min_value=0.0, step=1.0,
          fmt="%.0f", to_widget=lambda s: float(s) / 60, from_widget=lambda m: float(m) * 60),
)
ADVANCED = (
    Field("loss.kind", "Loss", loss_help(), options=tuple(loss.name for loss in engine.list_losses())),
    Field("loss.label_smoothing", "Label smoothing", "One-sided: real targets become 1 − this.",
          step=0.05, fmt="%.2f"),
    Field("loss.gamma", "R1 + R2 weight γ", "Zero-centred gradient penalties on real and fake images "
          "(R3GAN's rpgan loss only).", step=0.01, fmt="%.3f"),
    Field("loss.penalty_every", "Penalty every (D updates)", "Lazy R1 + R2: computed on every k-th D update only, "
          "weighted k; 4 is about twice as fast on a CPU (rpgan loss only).", min_value=1),
    Field("optim.lr_g", "Learning rate G", step=1e-5, fmt="%.1e"),
    Field("optim.lr_d", "Learning rate D", step=1e-5, fmt="%.1e"),
    Field("optim.beta1", "Adam β1", step=0.05, fmt="%.2f"),
    Field("optim.beta2", "Adam β2", step=0.001, fmt="%.3f"),
    Field("optim.n_critic", "D steps per G step", min_value=1),
    Field("optim.ema_halflife_images", "EMA half-life (images)", "Smooths the generator you see and export.",
          step=1000.0, fmt="%.0f"),
    Field("data.flip", "Random horizontal flips"),
    Field("data.rotate_degrees", "Random rotation (degrees)", step=1.0, fmt="%.0f"),
    Field("data.diffaugment", "DiffAugment", "Differentiable augmentation of real and fake images "
          "(helps small datasets).", options=engine.DIFFAUGMENT_POLICIES,
          to_widget=lambda s: [a for a in s.split(",") if a], from_widget=",".join),
    Field("data.augment_p", "DiffAugment probability", "The share of images DiffAugment transforms, drawn per image "
          "(1 = every image; below 1 needs DiffAugment transforms).", step=0.05, fmt="%.2f"),
    Field("train.seed", "Seed"),
    Field("train.log_every", "Log curves every (steps)", min_value=1),
    Field("train.grid_every", "Progress grid every (steps)", min_value=1),
    Field("train.checkpoint_every", "Checkpoint every (steps)", min_value=1),
    Field("metrics.every_images", "Evaluate every (images)", "0 = no metrics during training.",
          step=1000),
    Field("metrics.names", "Metrics", "SWD needs no download; FID, KID, IS and precision/recall use "
          "the Inception-v3 weights.", options=metric_choices()),
    Field("metrics.num_samples", "Generated images per evaluation", min_value=10, step=500),
    Field("metrics.live_samples", "Live metric samples", "Generated images of the live SWD plotted on this page "
          "(0 = off); it is measured as often as keeps it within 5 % of the training time.", step=64),
    Field("metrics.best_metric", "Keep the best checkpoint by",
          options=ranking_choices()),
    Field("metrics.inception_weights", "Inception weights file (offline machines)",
          "Path to weights-inception-2015-12-05-6726825d.pth; empty = download on first use "
          "(or $GAN_STUDIO_INCEPTION_WEIGHTS)."),
    Field("train.precision", "Precision", "auto: bf16 on CUDA, fp32 elsewhere.",
          options=engine.PRECISIONS),
    Field("train.memory_format", "Memory format", "auto: channels_last on CUDA; on a CPU whichever "
          "layout trains this model faster, timed when the run starts.",
          options=engine.MEMORY_FORMATS),
    Field("train.on_divergence", "If training diverges", "stop: the run fails, naming the step and what to "
          "change; rollback: back to the last finite checkpoint with halved learning rates, then on "
          "(at most 3 times). Either way no non-finite checkpoint is ever written.",
          options=engine.DIVERGENCE_ACTIONS),
    Field("doctor.enabled", "Training doctor", "Diagnoses the run while it trains (D overpowering, mode collapse, "
          "divergence, memorisation, a leaking augmentation, a metric gone wrong) and shows its findings beside "
          "the curves."),
    Field("doctor.window", "Doctor: log lines per finding", "A finding on the losses must hold over this many "
          "training lines to open, and be gone over as many to close.", min_value=2),
    Field("doctor.probes", "Doctor: progress grids per finding", "A finding on the generated images must hold "
          "over this many progress grids.", min_value=1),
    Field("doctor.nearest_max_images", "Doctor: copy check up to (images)", "Compare the grid with every "
          "training image (memorisation) on datasets up to this size; 0 = never.", step=1000),
)


# How each ramp's final value is entered (step, format), by ramp name; labels are the records' own.
RAMP_INPUTS: dict[str, tuple[float, str]] = {
    "lr_g": (1e-5, "%.1e"), "lr_d": (1e-5, "%.1e"), "beta2": (0.001, "%.3f"), "gamma": (0.01, "%.3f"),
    "gp_weight": (1.0, "%.1f"), "ema_halflife_images": (1000.0, "%.0f"), "augment_p": (0.05, "%.2f")}
RAMP_NOTES = {"gamma": " (R3GAN)", "gp_weight": " (WGAN-GP)"}
HORIZON = Field("schedule.images", "Ramp over (images)", "The images each value takes to reach its final value, "
                "then it stays there. 0 = the run's limit (Stop after steps × batch size).", step=1000)
RAMPS = tuple(
    (Field(f"schedule.{name}.shape", records.stat_label(name) + RAMP_NOTES.get(name, ""),
           f"From {SCHEDULED[name]} (under Hyper-parameters) at the first image to the final value.",
           options=RAMP_SHAPES),
     Field(f"schedule.{name}.final", "Final value", f"{records.stat_label(name)} at the horizon and after.",
           step=step, fmt=fmt))
    for name, (step, fmt) in RAMP_INPUTS.items())
SCHEDULE = (HORIZON, *(f for pair in RAMPS for f in pair))


def fill(config: engine.Config) -> None:
    """Put every value of ``config`` into the form (used for the device default and for presets)."""
    st.session_state["cfg:model.name"] = config.model.name
    st.session_state["cfg:data.resolution"] = config.data.resolution
    for f in BASIC + ADVANCED + SCHEDULE:
        st.session_state[f"cfg:{f.key}"] = f.to_widget(dotted_value(config, f.key))
    info = {m.name: m for m in engine.list_models()}[config.model.name]
    for name, default in info.options.items():
        st.session_state[f"opt:{info.name}:{name}"] = config.model.options.get(name, default)
    st.session_state["cfg:base"] = config


def _apply_recipe() -> None:
    """Fill the form with the chosen recipe at the chosen size, and remember the sentence saying which."""
    size = st.session_state.get("cfg:size") or "auto"
    config, note = engine.recipe(st.session_state["cfg:preset"], engine.detect_device(), size)
    fill(config)
    st.session_state["cfg:size-note"] = note


def _choose_recipe() -> None:
    """A recipe picked by hand: fill the form with it, and keep it when other images are chosen."""
    st.session_state["cfg:follow-recommended"] = False
    _apply_recipe()


def device_word(device_class: str) -> str:
    """'CPU' or 'GPU': what the user calls the device of this class."""
    return "CPU" if device_class == "cpu" else "GPU"


def recipe_choice(spec: str) -> None:
    """The Recipe (the one recommended on this device for these images first) and its Size; changing
    either refills the form."""
    device = engine.detect_device()
    recommended, word = engine.recommended(device, spec), device_word(engine.device_class(device))
    if "cfg:base" not in st.session_state:  # first visit: the recommended recipe at this device's size
        st.session_state["cfg:preset"], st.session_state["cfg:size"] = recommended, "auto"
        st.session_state["cfg:follow-recommended"] = True
        _apply_recipe()
    elif st.session_state.get("cfg:follow-recommended") and st.session_state["cfg:preset"] != recommended:
        st.session_state["cfg:preset"] = recommended  # other images, and no recipe picked by hand yet
        _apply_recipe()
        st.session_state["cfg:size-note"] += f" Switched to {recommended}, the recipe recommended for these images."
    names = [recommended, *(n for n in engine.PRESETS if n != recommended)]
    st.selectbox("Recipe", names, key="cfg:preset", on_change=_choose_recipe, persist_state="session",
                 format_func=lambda n: f"{n} · Recommended for this {word}" if n == recommended else n,
                 help=f"Recommended: the recipe that shows the best images per minute on this {word} for the "
                      "chosen images (the built-in faces, or photographs). Every recipe is sized for this "
                      "device unless you choose another size.")
    st.segmented_control("Size", list(SIZE_LABELS), key="cfg:size", required=True, on_change=_apply_recipe,
                         format_func=lambda s: f"Auto ({word})" if s == "auto" else SIZE_LABELS[s],
                         persist_state="session",
                         help="Widths, batch and resolution of the recipe: Auto fits this device; Source is the "
                              "recipe as published (made for a large GPU).")
    st.caption(st.session_state.get("cfg:size-note", ""))


def batch_problem(batch_size: int, dataset_size: int | None) -> tuple[str | None, str | None]:
    """(error, warning) about the batch size: an error when it is not positive, a warning when it is
    larger than the dataset (``dataset_size`` None when unknown)."""
    if batch_size < 1:
        return (f"The batch size must be at least 1 image per step (it is {batch_size:,}): enter a positive "
                "number."), None
    if dataset_size is not None and batch_size > dataset_size:
        return None, (f"The batch size ({batch_size:,}) is larger than the dataset ({monitor.plural(dataset_size, 'image')}): "
                      "every step shows some images twice. A batch of at most the dataset's size is usual.")
    return None, None


def config_problem(config: engine.Config, classes: int) -> str | None:
    """Why ``config`` cannot train here (a value out of range, or a model too big for this device's
    memory), in the words the engine would fail with; None when it can."""
    try:
        config.validate()
        engine.check_model_size(config.model.name, config.model.options, config.data.resolution, classes,
                                config.train.batch_size, device=engine.detect_device(config.train.device))
    except engine.ConfigError as exc:
        return f"This configuration cannot train: {exc}."
    return None


def _widget(f: Field, disabled: bool = False) -> Any:
    key = f"cfg:{f.key}"
    value = st.session_state[key]
    if f.options and isinstance(value, list):
        return st.multiselect(f.label, f.options, key=key, help=f.help or None, persist_state="session")
    if f.options:
        return st.selectbox(f.label, f.options, key=key, help=f.help or None, persist_state="session")
    if isinstance(value, bool):
        return st.checkbox(f.label, key=key, help=f.help or None, persist_state="session")
    if isinstance(value, str):
        return st.text_input(f.label, key=key, help=f.help or None, persist_state="session")
    kind = type(value)
    return st.number_input(f.label, min_value=kind(f.min_value) if f.min_value is not None else None,
                           step=kind(f.step or 1), format=f.fmt, key=key, help=f.help or None, disabled=disabled,
                           persist_state="session")


def schedules() -> dict[str, Any]:
    """The Schedules expander: the horizon, then each ramp's shape and final value (greyed while constant)."""
    with st.expander("Schedules"):
        st.caption("Ramp a value from its setting under Hyper-parameters at the first image to a final value, "
                   "linearly or along a cosine. A resumed run continues each exactly where it was.")
        values = {HORIZON.key: _widget(HORIZON)}
        for shape, final in RAMPS:
            left, right = st.columns(2)
            values[shape.key] = _widget_in(left, shape)
            with right:
                values[final.key] = _widget(final, disabled=values[shape.key] == "constant")
    return values


def _option_widget(info: engine.ModelInfo, name: str, default: Any) -> Any:
    key = f"opt:{info.name}:{name}"
    if key not in st.session_state:
        st.session_state[key] = default
    label = name.replace("_", " ")
    if name in info.choices:
        return st.selectbox(label, info.choices[name], key=key, persist_state="session")
    if isinstance(default, bool):
        return st.checkbox(label, key=key, persist_state="session")
    if isinstance(default, int):
        return st.number_input(label, min_value=0, step=1, key=key, persist_state="session")
    if isinstance(default, float):
        return st.number_input(label, min_value=0.0, step=0.05, format="%.2f", key=key,
                               persist_state="session")
    return st.text_input(label, key=key, persist_state="session")


def config_form(spec: str) -> engine.Config:
    """Render the form and return the Config it describes, training on dataset ``spec``."""
    recipe_choice(spec)
    models = {m.name: m for m in engine.list_models()}
    name = st.selectbox("Model", list(models), key="cfg:model.name", persist_state="session")
    info = models[name]
    st.caption(info.description)
    if info.loss and st.session_state.get("cfg:loss.kind") != info.loss:
        st.session_state["cfg:loss.kind"] = info.loss  # the model is defined with this loss
    if st.session_state["cfg:data.resolution"] not in info.resolutions:
        st.session_state["cfg:data.resolution"] = info.resolutions[0]
    first, second = st.columns(2), st.columns(2)
    resolution = first[0].selectbox("Resolution (px)", info.resolutions, key="cfg:data.resolution",
                                    persist_state="session")
    values = {f.key: _widget_in(col, f) for col, f in zip((first[1], *second), BASIC)}
    with st.expander("Model options"):
        options = {n: _option_widget(info, n, d) for n, d in info.options.items()}
    with st.expander("Hyper-parameters"):
        cols = st.columns(2)
        values |= {f.key: _widget_in(cols[i % 2], f) for i, f in enumerate(ADVANCED)}
    values |= schedules()

    config = copy.deepcopy(st.session_state["cfg:base"])
    config.data.spec = spec
    config.data.resolution = int(resolution)
    config.model = engine.ModelConfig(name, options)
    for f in BASIC + ADVANCED + SCHEDULE:
        engine.update_from_dotted(config, f.key, f.from_widget(values[f.key]))
    return config


def trained_seconds(run: engine.Run, status: dict[str, Any]) -> float:
    """Training time so far: the status's, else the last curve line's."""
    if status.get("train_seconds") is not None:
        return float(status["train_seconds"])
    trained = records.train_records(run.metrics())
    return trained[-1].time if trained else 0.0


def longer(config: engine.Config, step: int, train_seconds: float, unit: str, amount: int) -> engine.Config:
    """``config`` with its limit raised ``amount`` minutes or steps past where the run finished (the
    other limits lifted, so the one chosen is the one that ends it); scheduled values keep the horizon
    they had, so the run goes on at their final values."""
    raised = copy.deepcopy(config)
    if raised.scheduled() and not raised.schedule.images:
        raised.schedule.images = config.schedule_horizon() or 0  # the ramps keep their course; then final values
    raised.train.max_images = 0
    if unit == "steps":
        raised.train.max_steps, raised.train.max_seconds = step + amount, 0.0
    elif unit == "minutes":
        raised.train.max_steps, raised.train.max_seconds = 0, train_seconds + amount * 60.0
    else:
        raise ValueError(f"unit must be one of {', '.join(LONGER_UNITS)}, not {unit!r}")
    return raised


def _widget_in(column: Any, f: Field) -> Any:
    with column:
        return _widget(f)
