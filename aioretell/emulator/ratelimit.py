"""Per-key token bucket, read against the emulator's injectable clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests per second per key, with a burst of one second's worth (at least 1)."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str) -> float:
        """Take a token for ``key``: 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


class WindowLimiter:
    """At most ``limit`` events in any window of ``window_s`` seconds (a sliding log).

    Stricter than a token bucket: no burst on top of the limit, which is what a
    calls-per-second cap promises.
    """

    def __init__(self, limit: int, clock: Callable[[], float], window_s: float = 1.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    def acquire(self) -> float:
        """Record an event: 0.0 if allowed, else the seconds until one would be."""
        now = self._clock()
        times = self._times
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) >= self.limit:
            return times[0] + self.window_s - now
        times.append(now)
        return 0.0
