"""Share: push a run to the Hugging Face Hub, pull a model back, publish a demo Space."""

from __future__ import annotations

import streamlit as st

from studio import hub_panel

st.title("Share on the Hugging Face Hub")
token = hub_panel.token_field()
push_tab, pull_tab, space_tab = st.tabs(["Push a run", "Pull a model", "Demo Space"])
with push_tab:
    hub_panel.push_form(token)
with pull_tab:
    hub_panel.pull_form(token)
with space_tab:
    hub_panel.space_form(token)
