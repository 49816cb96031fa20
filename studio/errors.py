"""Turn any exception a user can cause into one plain sentence shown in the page, never a traceback."""

from __future__ import annotations

import functools
import logging
import zipfile
from contextlib import contextmanager
from typing import Callable, Iterator, ParamSpec, TypeVar

import streamlit as st
import torch

from engine import (OUT_OF_MEMORY_ADVICE, CheckpointError, ConfigError, DatasetError, DeviceError, HubError,
                    RunConflictError)

log = logging.getLogger("gan_studio")
P = ParamSpec("P")
R = TypeVar("R")

_USER_ERRORS = (CheckpointError, ConfigError, DatasetError, DeviceError, FileExistsError, HubError, RunConflictError,
                ValueError)


def explain(exc: BaseException, action: str) -> str:
    """One sentence saying what went wrong while trying to ``action`` and what to do about it."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return f"Not enough memory to {action}: {OUT_OF_MEMORY_ADVICE}."
    if isinstance(exc, zipfile.BadZipFile):
        return f"Could not {action}: the file is not a valid .zip archive."
    if isinstance(exc, HubError):  # already says what it tried, on which repo, and the fix
        text = str(exc)
        return text[:1].upper() + text[1:].rstrip(".") + "."
    if _offline(exc):
        return f"Could not {action}: this needs the internet, and the machine seems to be offline."
    if isinstance(exc, PermissionError):
        return f"Could not {action}: permission denied for {exc.filename or 'a file'}."
    if isinstance(exc, FileNotFoundError):
        return f"Could not {action}: {exc.filename or 'a file'} does not exist."
    if isinstance(exc, OSError) and exc.strerror:
        return f"Could not {action}: {exc.strerror} ({exc.filename or 'file system'})."
    if not isinstance(exc, _USER_ERRORS):
        log.error("unexpected error while trying to %s", action, exc_info=exc)
    return f"Could not {action}: {exc or type(exc).__name__}"


def _offline(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"OfflineModeIsEnabled", "ConnectionError", "ConnectError", "LocalEntryNotFoundError"})


@contextmanager
def shown_in_page(action: str) -> Iterator[None]:
    """Run a block; if it raises, show ``explain(...)`` with st.error and carry on."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - st.rerun/st.stop are BaseException and pass through
        st.error(explain(exc, action), icon=":material/error:")


def guarded(action: str) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Decorator form of ``shown_in_page`` for page bodies and fragments."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
            with shown_in_page(action):
                return fn(*args, **kwargs)
            return None

        return run

    return wrap
