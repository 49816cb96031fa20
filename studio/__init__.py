"""GAN Studio's Streamlit front end: pages (``studio.pages``) and small reusable components."""
