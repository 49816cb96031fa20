"""The one error a metric raises when it cannot run on this machine."""

from __future__ import annotations


class MetricUnavailable(RuntimeError):
    """A metric cannot run here, e.g. the Inception weights are missing on an offline machine.

    The message is written for the user: it names the missing file and how to provide it.
    """
