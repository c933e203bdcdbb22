"""Averages and choices as AWS Lambda Power Tuning makes them, and the percentiles it lacks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["STRATEGIES", "choose", "percentile", "trimmed_mean"]

STRATEGIES = ("cost", "speed", "balanced")


def trimmed_mean(values: Sequence[float], discard: float = 0.2) -> float:
    """The mean without the lowest and highest `discard` share of the values (each side).

    Example: trimmed_mean([1, 2, 3, 4, 100], 0.2) -> 3.0
    """
    if not values:
        raise ValueError("no values")
    if not 0 <= discard < 0.5:
        raise ValueError("discard is a share below 0.5")
    s = sorted(values)
    cut = math.floor(len(s) * discard)
    kept = s[cut : len(s) - cut] or s
    return sum(kept) / len(kept)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), nearest rank.

    Example: percentile([5, 1, 3], 50) -> 3
    """
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(s)))
    return s[min(rank, len(s)) - 1]


def choose(stats: Sequence[dict[str, Any]], strategy: str, weight: float = 0.5) -> dict[str, Any]:
    """The memory size a strategy picks from `[{value, averagePrice, averageDuration}]`.

    cost: the cheapest (then the fastest); speed: the fastest (then the cheapest); balanced: the
    lowest `weight * price / max price + (1 - weight) * duration / max duration`.

    Example: choose([{"value": 128, "averagePrice": 2, "averageDuration": 9}, ...], "cost")
    """
    if not stats:
        raise ValueError("no memory size succeeded")
    if strategy == "cost":
        return min(stats, key=lambda s: (s["averagePrice"], s["averageDuration"]))
    if strategy == "speed":
        return min(stats, key=lambda s: (s["averageDuration"], s["averagePrice"]))
    if strategy == "balanced":
        if not 0 <= weight <= 1:
            raise ValueError("the balanced weight is between 0 and 1")
        max_price = max(s["averagePrice"] for s in stats) or 1.0
        max_duration = max(s["averageDuration"] for s in stats) or 1.0
        return min(
            stats,
            key=lambda s: (
                weight * s["averagePrice"] / max_price
                + (1 - weight) * s["averageDuration"] / max_duration
            ),
        )
    raise ValueError(f"strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
