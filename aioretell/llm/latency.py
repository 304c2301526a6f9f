"""Latency summaries in the shape of Retell's ``CallLatency`` (get-call ``latency.*``)."""

from __future__ import annotations

from typing import Any

__all__ = ["latency_stats"]


def latency_stats(values: list[float]) -> dict[str, Any]:
    """p50, p90, p95, p99, min, max, num and the values themselves; ``values`` not empty.

    A percentile is the value at index ``int(p * n)`` of the sorted values (capped at the
    last), the same rule for the emulator's synthesised calls and for measured ones.
    """
    if not values:
        raise ValueError("latency_stats needs at least one value")
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": ordered[-1],
        "min": ordered[0],
        "num": len(ordered),
        "values": values,
    }
