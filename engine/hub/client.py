"""The Hub client as the engine uses it: endpoint, offline mode and a fast reachability check."""

from __future__ import annotations

import os
import re

from huggingface_hub import HfApi, constants
from huggingface_hub.utils import get_session

from engine.hub.errors import HubError, offline_error, unreachable

PROBE_SECONDS = 5.0
LIBRARY = "gan-studio"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


def offline() -> bool:
    """Whether the Hub is switched off (HF_HUB_OFFLINE=1, at import of huggingface_hub or now)."""
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return flag or constants.is_offline_mode()


def reachable() -> str | None:
    """None when the Hub answers within a few seconds, else why not (so callers fail fast, not after retries)."""
    if offline():
        return "offline mode (HF_HUB_OFFLINE=1)"
    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure to get an answer means unreachable
        return type(exc).__name__
    return None


def ensure_online(action: str) -> None:
    """Raise HubError right away when ``action`` needs the Hub and it is off or unreachable."""
    if offline():
        raise offline_error(action)
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
