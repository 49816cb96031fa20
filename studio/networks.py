"""A generator's discriminator for the Explore tabs that need it, cached, or why there is none."""

from __future__ import annotations

import streamlit as st

from engine.discriminator import Discriminator, NoDiscriminatorError, load_discriminator


@st.cache_resource(max_entries=2, show_spinner="Loading the discriminator…")
def _discriminator(path: str, version: str) -> Discriminator:
    return load_discriminator(path)


def discriminator(path: str, version: str) -> tuple[Discriminator | None, str | None]:
    """(D of the run at ``path``, None), or (None, the reason it has none: exported, Hub, autoencoder)."""
    try:
        return _discriminator(path, version), None
    except NoDiscriminatorError as exc:
        return None, str(exc)
