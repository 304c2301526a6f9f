"""A clock for tests: time moves only when told to."""

from __future__ import annotations


class ManualClock:
    """Wall-clock seconds that change only through :meth:`advance` (pass as ``config.clock``)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.now += seconds
