"""Which Hugging Face token to use, and keeping it out of every message."""

from __future__ import annotations

import os
import re

from huggingface_hub import get_token

_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{8,}")


def resolve_token(explicit: str | None = None) -> str | None:
    """The token to send: one given here (the studio's password field), else $HF_TOKEN, else the saved login."""
    if explicit and explicit.strip():
        return explicit.strip()
    return get_token()


def token_source(explicit: str | None = None) -> str | None:
    """Where ``resolve_token`` finds a token, in words ('this session', 'HF_TOKEN', 'saved login'), or None."""
    if explicit and explicit.strip():
        return "this session"
    if (os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or "").strip():
        return "HF_TOKEN"
    return "saved login" if get_token() else None


def redact(text: str, token: str | None = None) -> str:
    """``text`` with the token (and anything shaped like a Hugging Face token) replaced by '***'."""
    if token:
        text = text.replace(token, "***")
    return _TOKEN_LIKE.sub("hf_***", text)
