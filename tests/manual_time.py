"""Time that moves only when a test says so, for pacing tests (``client._set_time``)."""

from __future__ import annotations

import asyncio
import heapq
import itertools


async def settle() -> None:
    """Let every task that can run, run (no time passes)."""
    for _ in range(50):
        await asyncio.sleep(0)


class ManualTime:
    """A clock that moves only through :meth:`run_until`; sleepers wake at their deadlines."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        deadline = self.now + max(0.0, seconds)
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        await future

    async def run_until(self, until: float) -> None:
        """Move time to ``until``, waking each sleeper at its own deadline, in order."""
        while True:
            await settle()
            while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
                heapq.heappop(self._sleepers)
            if not self._sleepers or self._sleepers[0][0] > until:
                break
            deadline, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, deadline)
            future.set_result(None)
        self.now = max(self.now, until)
        await settle()
