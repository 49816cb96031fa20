"""GAN Studio: `streamlit run app.py`. Sets up navigation only; the pages live in studio/pages/."""

import streamlit as st

from studio.settings import read_only

st.set_page_config(page_title="GAN Studio", page_icon=":material/face:", layout="wide")
st.set_option("client.showErrorDetails", "none")  # last resort: pages explain problems themselves
pages = [
    st.Page("studio/pages/train.py", title="Train", icon=":material/model_training:", default=not read_only()),
    st.Page("studio/pages/explore.py", title="Explore", icon=":material/explore:", default=read_only()),
    st.Page("studio/pages/runs.py", title="Runs", icon=":material/table_rows:"),
]
st.navigation(pages[1:] if read_only() else pages, position="top").run()
