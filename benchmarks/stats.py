"""The two statistics the report uses: a (median, min, max) summary and paired ratios."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max) of ``values``."""
    return statistics.median(values), min(values), max(values)


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Element-wise ratios of two series taken side by side (round by round, run by run)."""
    return [a / b for a, b in zip(numerators, denominators, strict=True)]
