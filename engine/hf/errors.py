"""HubError: one sentence naming the repo, what failed and the fix; never the token."""

from __future__ import annotations

import httpx2
from huggingface_hub import constants
from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled,
                                    RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)

from engine.hf.token import redact

TOKEN_HELP = "set HF_TOKEN, run `hf auth login`, or paste a token in the studio"
NETWORK_ERRORS = (OSError, httpx2.TransportError)  # what huggingface_hub raises for HTTP, network and cache problems


class HubError(RuntimeError):
    """Something on or about the Hugging Face Hub a user can fix (name, token, network, repo content)."""


class PickleRefused(HubError):
    """A repo offers only pickle files, which GAN Studio never loads (unpickling can run any code)."""


def unreachable(action: str, reason: str) -> HubError:
    """The Hub did not answer (no network, DNS, firewall)."""
    return HubError(f"cannot {action}: cannot reach the Hugging Face Hub at {constants.ENDPOINT} ({reason}); "
                    "check the internet connection (cached models and datasets still work offline)")


def offline_error(action: str, switch: str = "HF_HUB_OFFLINE") -> HubError:
    """The variable ``switch`` (=1) forbids what ``action`` needs."""
    return HubError(f"cannot {action}: the Hugging Face Hub is switched off on this machine ({switch}=1); "
                    f"unset {switch} and connect to the internet (cached models and datasets still work)")


def hub_error(exc: BaseException, action: str, repo: str, token: str | None = None, kind: str = "model") -> HubError:
    """Translate an exception raised by huggingface_hub while trying to ``action`` on ``repo``."""
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, OfflineModeIsEnabled):
        return offline_error(action)
    if isinstance(exc, GatedRepoError):
        message = (f"{kind} repo {repo} is gated: accept its conditions on its Hub page, then use a token of "
                   f"that account ({TOKEN_HELP})")
    elif isinstance(exc, RepositoryNotFoundError):
        message = (f"there is no {kind} repo {repo} on the Hub, or it is private and "
                   + ("this token cannot see it" if token else f"no token was given ({TOKEN_HELP})")
                   + "; check the name (owner/name)")
    elif isinstance(exc, RevisionNotFoundError):
        message = f"{kind} repo {repo} has no such revision (branch, tag or commit); check the revision"
    elif isinstance(exc, RemoteEntryNotFoundError):
        missing = exc.response.url.path.rsplit("/", 1)[-1] if exc.response is not None else "a file"
        message = f"{kind} repo {repo} has no file {missing}"
    elif isinstance(exc, LocalEntryNotFoundError):
        message = (f"{kind} repo {repo} is not in the local cache and the Hub cannot be reached; connect to the "
                   "internet once to download it")
    elif isinstance(exc, HfHubHTTPError):
        message = _http_message(exc, repo, token)
    elif isinstance(exc, httpx2.TransportError):
        return unreachable(action, type(exc).__name__)
    else:
        message = str(exc) or type(exc).__name__
    return HubError(redact(f"cannot {action}: {message}", token))


def _http_message(exc: HfHubHTTPError, repo: str, token: str | None) -> str:
    status = exc.response.status_code if exc.response is not None else 0
    if status == 401:
        return ("the Hub refused the token (401 Unauthorized): check it, or create a new one at "
                f"{constants.ENDPOINT}/settings/tokens" if token else f"this needs a Hugging Face token ({TOKEN_HELP})")
    if status == 403:
        return (f"the token may not write to {repo} (403 Forbidden): use a token with write access to "
                f"{repo.split('/')[0]}")
    detail = exc.server_message or str(exc).splitlines()[0]
    return f"the Hub answered {status} for {repo}: {detail}"

