"""The Hub client as the engine uses it: endpoint, offline mode and a fast reachability check."""

from __future__ import annotations

import re

from huggingface_hub import HfApi, constants
from huggingface_hub.utils import get_session

from engine.base import environment
from engine.hf.errors import HubError, offline_error, unreachable

PROBE_SECONDS = 5.0
LIBRARY = "gan-studio"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


def offline() -> str | None:
    """The variable that switches the Hub off ($GAN_STUDIO_OFFLINE or $HF_HUB_OFFLINE, now or when
    huggingface_hub was imported), or None."""
    return environment.offline() or ("HF_HUB_OFFLINE" if constants.is_offline_mode() else None)


def reachable() -> str | None:
    """None when the Hub answers within a few seconds, else why not (so callers fail fast, not after retries)."""
    switch = offline()
    if switch:
        return f"offline mode ({switch}=1)"
    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure to get an answer means unreachable
        return type(exc).__name__
    return None


def ensure_online(action: str) -> None:
    """Raise HubError right away when ``action`` needs the Hub and it is off or unreachable."""
    switch = offline()
    if switch:
        raise offline_error(action, switch)
    reason = reachable()
    if reason:
        raise unreachable(action, reason)


def api(token: str | None) -> HfApi:
    """An HfApi on the current endpoint that sends exactly this token (or none)."""
    return HfApi(endpoint=constants.ENDPOINT, token=token or False, library_name=LIBRARY)


def check_repo_id(repo_id: str, kind: str = "model") -> str:
    """``repo_id`` without a leading 'hf:', or HubError when it is not owner/name."""
    repo_id = repo_id.strip().removeprefix("hf:")
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise HubError(f"{repo_id!r} is not a {kind} repo id: use owner/name (your user or organisation, a slash, "
                       "then letters, digits, '-', '_' or '.')")
    return repo_id
