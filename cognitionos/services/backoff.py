"""Exponential backoff with jitter, one rule for every retry loop (steps, LLM calls,
notification deliveries): half of the delay fixed, half random, so retries that failed
together do not come back together while none comes back much sooner than planned."""

from __future__ import annotations

import math
import random

__all__ = ["backoff"]


def backoff(first: float, retry: int, *, factor: float = 2.0, most: float = math.inf) -> float:
    """Seconds to wait before retry ``retry`` (0 for the first): ``first * factor**retry``,
    at most ``most``, of which a random half."""
    base = min(most, first * factor ** max(0, retry))
    return float(base / 2 + random.uniform(0, base / 2))
