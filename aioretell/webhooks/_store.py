"""Where the receiver remembers deliveries it has already accepted."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["DedupStore", "MemoryDedupStore"]


@runtime_checkable
class DedupStore(Protocol):
    """Claims on delivery keys that expire after a TTL.

    Implement it over a shared store (for example Redis ``SET key 1 NX EX ttl`` and ``DEL``) when
    several processes receive the same webhooks.
    """

    async def claim(self, key: str, ttl_s: float) -> bool:
        """Atomically record ``key`` for ``ttl_s`` seconds; ``False`` if it is already held."""
        ...

    async def release(self, key: str) -> None:
        """Forget ``key`` so a later delivery with it is handled again."""
        ...


class MemoryDedupStore:
    """The default store: a dict in this process, expired lazily on each claim.

    ``clock`` returns seconds (default :func:`time.monotonic`); inject one to test expiry.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._expiry)

    def __repr__(self) -> str:
        return f"MemoryDedupStore(keys={len(self._expiry)})"

    def _expire(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            if self._expiry.get(key) == expires:
                del self._expiry[key]

    async def claim(self, key: str, ttl_s: float) -> bool:
        now = self._clock()
        self._expire(now)
        if key in self._expiry:
            return False
        expires = now + ttl_s
        self._expiry[key] = expires
        heapq.heappush(self._heap, (expires, key))
        return True

    async def release(self, key: str) -> None:
        # The heap entry goes stale and is skipped by _expire.
        self._expiry.pop(key, None)
