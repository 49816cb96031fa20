"""GAN Studio: `streamlit run app.py`. Sets up navigation only; the pages live in studio/pages/."""

import streamlit as st

from studio.settings import FAVICON, read_only

st.set_page_config(page_title="GAN Studio", page_icon=str(FAVICON), layout="wide")
st.set_option("client.showErrorDetails", "none")  # last resort: pages explain problems themselves
train = st.Page("studio/pages/train.py", title="Train", icon=":material/model_training:", default=not read_only())
explore = st.Page("studio/pages/explore.py", title="Explore", icon=":material/explore:", default=read_only())
runs = st.Page("studio/pages/runs.py", title="Runs", icon=":material/table_rows:")
share = st.Page("studio/pages/share.py", title="Share", icon=":material/share:")
st.navigation([explore, runs] if read_only() else [train, explore, runs, share], position="top").run()
