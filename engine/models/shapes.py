"""Shape arithmetic the architectures share."""

from __future__ import annotations

import math


def doublings(first: int, last: int) -> list[int]:
    """first, 2·first, …, last: the feature resolutions of a network that doubles (empty when last < first)."""
    return [first * 2 ** i for i in range(int(math.log2(last // first)) + 1)] if last >= first else []
