"""The Hugging Face Hub client as every engine layer uses it: endpoint, offline mode, reachability, tokens and
errors in plain words. Above the base layer, below data (Hub datasets) and hub (sharing generators)."""
