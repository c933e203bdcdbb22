"""When each arrival is due: Artillery's phases as a list of times (open loop).

Arrivals are evenly spaced, as Artillery's uniform arrivals are: a constant phase of rate r has
its k-th arrival at k / r; a ramp from r0 to r1 over D seconds has rate r0 + (r1 - r0) t / D,
so n(t) = r0 t + (r1 - r0) t^2 / 2D arrivals by t, and the k-th arrival is where n(t) = k.
"""

from __future__ import annotations

import math

from .script import Phase

__all__ = ["arrivals", "phase_arrivals"]


def phase_arrivals(phase: Phase) -> list[float]:
    """Arrival times (seconds from the phase's start) of one phase.

    Example: phase_arrivals(Phase("p", 2, rate=3)) -> [0.0, 0.333, 0.667, 1.0, 1.333, 1.667]
    """
    d = phase.duration_s
    if phase.pause or d <= 0:
        return []
    if phase.count is not None:
        return [k * d / phase.count for k in range(phase.count)]
    r0 = phase.rate
    r1 = phase.rate if phase.ramp_to is None else phase.ramp_to
    total = (r0 + r1) / 2 * d
    n = math.floor(total + 1e-9)
    if r0 == r1:
        return [k / r0 for k in range(n)]
    a = (r1 - r0) / (2 * d)  # n(t) = a t^2 + r0 t
    times = []
    for k in range(n):
        # the root of a t^2 + r0 t - k = 0 in [0, d]
        t = (-r0 + math.sqrt(r0 * r0 + 4 * a * k)) / (2 * a)
        times.append(min(max(t, 0.0), d))
    return times


def arrivals(phases: list[Phase]) -> list[tuple[float, int]]:
    """(seconds from the start, phase index) of every arrival of the test, in order."""
    out: list[tuple[float, int]] = []
    start = 0.0
    for i, phase in enumerate(phases):
        out += [(start + t, i) for t in phase_arrivals(phase)]
        start += phase.duration_s
    return out
