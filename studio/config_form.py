"""The model and hyper-parameter form of the Train page: widgets in, a validated engine Config out.

Widget values live in ``st.session_state`` under ``cfg:<dotted key>`` (and ``opt:<model>:<name>`` for
model options), so a preset or the device's suggested config can fill the whole form at once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import streamlit as st

import engine
from engine.config import update_from_dotted

AUGMENTS = ("color", "translation", "cutout")


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
    Field("train.batch_size", "Batch size", "Images per step.", min_value=1),
    Field("train.max_steps", "Stop after steps", "0 trains until you press Stop (or another limit).",
          min_value=0),
    Field("train.max_seconds", "Stop after minutes", "0 = no time limit.", min_value=0.0, step=1.0,
          fmt="%.0f", to_widget=lambda s: float(s) / 60, from_widget=lambda m: float(m) * 60),
)
ADVANCED = (
    Field("loss.kind", "Loss", "bce: non-saturating GAN loss; hinge: SNGAN-style hinge loss; wgan-gp: "
          "Wasserstein loss with gradient penalty (the wgan-gp model needs it).",
          options=("bce", "hinge", "wgan-gp")),
    Field("loss.label_smoothing", "Label smoothing", "One-sided: real targets become 1 − this.",
          step=0.05, fmt="%.2f"),
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
          "(helps small datasets).", options=AUGMENTS,
          to_widget=lambda s: [a for a in s.split(",") if a], from_widget=",".join),
    Field("train.seed", "Seed"),
    Field("train.log_every", "Log curves every (steps)", min_value=1),
    Field("train.grid_every", "Progress grid every (steps)", min_value=1),
    Field("train.checkpoint_every", "Checkpoint every (steps)", min_value=1),
    Field("metrics.every_images", "Evaluate every (images)", "0 = no metrics during training.",
          step=1000),
    Field("metrics.names", "Metrics", "SWD needs no download; FID, KID, IS and precision/recall use "
          "the Inception-v3 weights.", options=("swd", "fid", "kid", "is", "pr", "nn")),
    Field("metrics.num_samples", "Generated images per evaluation", min_value=10, step=500),
    Field("metrics.best_metric", "Keep the best checkpoint by",
          options=("swd", "fid", "kid", "is", "precision", "recall")),
    Field("metrics.inception_weights", "Inception weights file (offline machines)",
          "Path to weights-inception-2015-12-05-6726825d.pth; empty = download on first use "
          "(or $GAN_STUDIO_INCEPTION_WEIGHTS)."),
    Field("train.precision", "Precision", "auto: bf16 on CUDA, fp32 elsewhere.",
          options=("auto", "fp32", "bf16")),
    Field("train.memory_format", "Memory format", "auto: channels_last on CUDA; on a CPU whichever "
          "layout trains this model faster, timed when the run starts.",
          options=("auto", "channels_last", "contiguous")),
)


def _get(config: engine.Config, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def fill(config: engine.Config) -> None:
    """Put every value of ``config`` into the form (used for the device default and for presets)."""
    st.session_state["cfg:model.name"] = config.model.name
    st.session_state["cfg:data.resolution"] = config.data.resolution
    for f in BASIC + ADVANCED:
        st.session_state[f"cfg:{f.key}"] = f.to_widget(_get(config, f.key))
    info = {m.name: m for m in engine.list_models()}[config.model.name]
    for name, default in info.options.items():
        st.session_state[f"opt:{info.name}:{name}"] = config.model.options.get(name, default)
    st.session_state["cfg:base"] = config


def _apply_preset() -> None:
    name = st.session_state["cfg:preset"]
    fill(engine.preset(name) if name in engine.PRESETS else engine.suggested_config(engine.detect_device()))


def _widget(f: Field) -> Any:
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
                           step=kind(f.step or 1), format=f.fmt, key=key, help=f.help or None,
                           persist_state="session")


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
    if "cfg:base" not in st.session_state:
        fill(engine.suggested_config(engine.detect_device()))
    presets = ["Suggested for this device", *engine.PRESETS]
    st.selectbox("Recipe", presets, key="cfg:preset", on_change=_apply_preset, persist_state="session",
                 help="Suggested: small and quick on this device. The others reproduce the source "
                      "projects' recipes (slow without a GPU).")
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

    config = copy.deepcopy(st.session_state["cfg:base"])
    config.data.spec = spec
    config.data.resolution = int(resolution)
    config.model = engine.ModelConfig(name, options)
    for f in BASIC + ADVANCED:
        update_from_dotted(config, f.key, f.from_widget(values[f.key]))
    return config


def _widget_in(column: Any, f: Field) -> Any:
    with column:
        return _widget(f)
