"""The Share page's parts: the token field and the push, pull and demo-Space forms over engine.hub."""

from __future__ import annotations

import streamlit as st

import engine
import engine.hub
from studio.errors import shown_in_page

EXPLORE, TRAIN = "studio/pages/explore.py", "studio/pages/train.py"


def token_field() -> str | None:
    """A password field; None means 'use HF_TOKEN or the saved login'. The token lives in this session only."""
    token = st.text_input("Hugging Face token", type="password", key="hub:token",
                          help="Needs write access to push or publish. It stays in this browser session and is "
                               "never written to disk; leave it empty to use HF_TOKEN or `hf auth login`.").strip()
    if not token:
        source = engine.hub.token_source()
        st.caption(f"Using the token from {source}." if source else
                   "No token found: paste one from your Hugging Face settings (Access Tokens) to push, publish "
                   "or pull private repos.")
    return token or None


def push_form(token: str | None) -> None:
    runs = {r.name: r for r in engine.list_runs(engine.runs_root()) if r.latest_checkpoint() is not None}
    if not runs:
        st.info("No run has a checkpoint yet: train one on the **Train** page.")
        return
    if st.session_state.get("hub:run") not in runs:
        st.session_state["hub:run"] = next(iter(runs))
    name = st.selectbox("Run", list(runs), key="hub:run", help="Its latest checkpoint's EMA generator is pushed.")
    repo = st.text_input("Model repo", key="hub:repo", placeholder="owner/name").strip()
    private = st.checkbox("Private repo", key="hub:private")
    state = st.checkbox("Include the training state (discriminator, EMA, optimisers, step) to resume elsewhere",
                        key="hub:with-state")
    if st.button("Push to the Hub", type="primary", icon=":material/cloud_upload:", disabled=not repo,
                 key="hub:push"):
        with shown_in_page(f"push {name}"), st.spinner(f"Rendering the model card and pushing {name}…"):
            result = engine.hub.push_run(runs[name].path, repo, token=token, private=private,
                                         with_training_state=state)
            st.session_state["hub:space-model"] = result.repo_id
            st.success(f"Pushed {len(result.files)} files to [{result.repo_id}]({result.url}): weights, model "
                       "card, sample grid, interpolation and loss curve.", icon=":material/check_circle:")


def pull_form(token: str | None) -> None:
    repo = st.text_input("Model repo", key="hub:pull-repo", placeholder="owner/name").strip()
    revision = st.text_input("Revision", key="hub:revision", placeholder="main").strip()
    state = st.checkbox("Also download the training state, to resume the run here", key="hub:pull-state")
    if st.button("Pull", icon=":material/cloud_download:", disabled=not repo, key="hub:pull"):
        with shown_in_page(f"pull {repo}"), st.spinner(f"Downloading {repo}…"):
            st.session_state["hub:pulled"] = engine.hub.pull_model(repo, revision or None, token=token,
                                                                   with_training_state=state)
    pulled: engine.hub.PulledModel | None = st.session_state.get("hub:pulled")
    if pulled is None:
        return
    st.success(f"{pulled.repo_id} (commit {pulled.revision[:10]}) is in the local cache; it works offline now.",
               icon=":material/check_circle:")
    st.caption("To fine-tune it on other images, start a run with this as `train.init_from`:")
    st.code(str(pulled.path), language=None)
    explore_col, resume_col = st.columns(2)
    if explore_col.button("Open in Explore", icon=":material/explore:", key="hub:open", width="stretch"):
        st.session_state["gen"] = f"{engine.HUB_PREFIX}{pulled.repo_id}"
        st.switch_page(EXPLORE)
    if pulled.training_dir is not None and resume_col.button(
            "Make a resumable run", icon=":material/resume:", key="hub:materialise", width="stretch",
            help="Copies the training state into a new run; resume it on the Train page."):
        with shown_in_page(f"create a run from {pulled.repo_id}"):
            run_dir = engine.hub.materialise_run(pulled)
            st.session_state["run"] = run_dir.name
            st.switch_page(TRAIN)


def space_form(token: str | None) -> None:
    st.session_state.setdefault("hub:space-model", "")
    model = st.text_input("Model repo", key="hub:space-model", placeholder="owner/name").strip()
    space = st.text_input("Space", key="hub:space", placeholder="owner/name (default: the model's name + -demo)")
    private = st.checkbox("Private Space", key="hub:space-private")
    st.caption("The Space runs this studio read-only on its Explore page, opened on the model, and the model card "
               "links to it. The Hub builds it in a few minutes (it may ask for a plan that includes Spaces).")
    if st.button("Publish the demo Space", type="primary", icon=":material/rocket_launch:", disabled=not model,
                 key="hub:publish"):
        with shown_in_page("publish the demo Space"), st.spinner("Uploading the studio to the Space…"):
            result = engine.hub.publish_space(model, space.strip() or None, token=token, private=private)
            st.success(f"Published [{result.space_id}]({result.url}), showing [{model}]({result.model_url}).",
                       icon=":material/check_circle:")
