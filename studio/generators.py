"""Which generators the Explore page can open, and cached computations on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

import engine
import engine.hub
from engine.base.formats import MODEL_FILE, GeneratorInfo
from studio import cache, settings
from studio.errors import explain

DEMO = "demo"


@dataclass(frozen=True)
class Source:
    """A loadable generator: the shipped demo, a run with at least one checkpoint, or a Hub model."""

    key: str
    label: str
    path: str
    dataset: str | None  # the training images' spec, for real-vs-generated


def _hub_source(pulled: engine.hub.PulledModel) -> Source:
    info = pulled.info()
    step = f" · step {info.step:,}" if info.step is not None else ""
    return Source(f"{engine.HUB_PREFIX}{pulled.repo_id}", f"{pulled.repo_id} · Hugging Face Hub{step}", str(pulled.path),
                  info.dataset)


@st.cache_resource(ttl=3600, show_spinner="Fetching the model from the Hugging Face Hub…")
def _pull(repo_id: str) -> engine.hub.PulledModel:
    return engine.hub.pull_model(repo_id)


def bound_source() -> Source | None:
    """The model repo named by GAN_STUDIO_MODEL (pulled once an hour at most), or None (with a message)."""
    repo_id = settings.bound_model()
    if repo_id is None:
        return None
    try:
        return _hub_source(_pull(repo_id))
    except engine.hub.HubError as exc:
        st.error(explain(exc, f"open the model {repo_id}"), icon=":material/cloud_off:")
        return None


def sources() -> list[Source]:
    """The bound Hub model, the demo, runs with a checkpoint, then models pulled from the Hub."""
    bound = bound_source()
    found = [bound] if bound else []
    if (settings.DEMO_CHECKPOINT / MODEL_FILE).is_file():
        demo = GeneratorInfo.read(settings.DEMO_CHECKPOINT)
        found.append(Source(DEMO, "Demo generator: faces, 64 px (shipped)", str(settings.DEMO_CHECKPOINT),
                            demo.dataset))
    for run in engine.list_runs(engine.runs_root()):
        step = run.latest_checkpoint_step()
        if step is None:
            continue
        state = run.status()["state"]
        try:
            spec = run.config().data.spec
        except engine.ConfigError:
            spec = None
        found.append(Source(run.name, f"{run.name} · {state} · step {step:,}", str(run.path), spec))
    found += [_hub_source(pulled) for pulled in engine.hub.cached_models()
              if bound is None or f"{engine.HUB_PREFIX}{pulled.repo_id}" != bound.key]
    return found


def load(source: Source) -> tuple[engine.Generator, str]:
    """The generator and the version string that keys caches derived from it."""
    version = cache.version(source.path)
    return cache.generator(source.path, version), version


@st.cache_data(max_entries=32, show_spinner=False)
def interpolation(path: str, version: str, seeds: tuple[int, int], steps: int, truncation: float,
                  label: int) -> np.ndarray:
    gen = cache.generator(path, version)
    z = gen.latents(list(seeds))
    return gen.interpolate(z[0], z[1], steps, truncation=truncation, label=label)


@st.cache_data(max_entries=256, show_spinner=False)
def between(path: str, version: str, seeds: tuple[int, int], t: float, truncation: float, label: int) -> np.ndarray:
    """The single image at ``t`` on the slerp path between two seeds' latents."""
    gen = cache.generator(path, version)
    z = gen.latents(list(seeds))
    return gen.sample(latents=engine.slerp(z[0], z[1], t)[None], truncation=truncation, labels=[label])[0]


@st.cache_data(max_entries=8, show_spinner=False)
def directions(path: str, version: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Top latent directions (unit rows) and their strengths (SeFa on the first layer)."""
    vectors, strengths = cache.generator(path, version).directions(count)
    return vectors.numpy(), strengths.numpy()


@st.cache_data(max_entries=64, show_spinner=False)
def edited(path: str, version: str, seed: int, offsets: tuple[float, ...], truncation: float, label: int,
           count: int) -> np.ndarray:
    """The seed's image after moving its latent by ``offsets[i]`` along direction i."""
    gen = cache.generator(path, version)
    vectors, _ = directions(path, version, count)
    z = gen.latents([seed])[0] + torch.from_numpy(np.asarray(offsets, np.float32) @ vectors)
    return gen.sample(latents=z[None], truncation=truncation, labels=[label])[0]


@st.cache_data(max_entries=16, show_spinner=False)
def direction_strip(path: str, version: str, seed: int, index: int, span: float, steps: int, truncation: float,
                    label: int, count: int) -> np.ndarray:
    """The seed's image moved from −span to +span along one direction."""
    gen = cache.generator(path, version)
    vectors, _ = directions(path, version, count)
    z = gen.latents([seed])[0]
    d = torch.from_numpy(vectors[index])
    path_z = torch.stack([z + a * d for a in np.linspace(-span, span, steps)])
    return gen.sample(latents=path_z, truncation=truncation, labels=[label] * steps)

