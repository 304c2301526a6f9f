"""Pacing shared by every request a client sends: rate buckets, a concurrency cap, 429 pauses.

Two buckets: one for all requests (``rate_limit``) and one for the creates that place a call or
start a conversation (``create_rate_limit``; Retell limits outbound calls per second). A bucket
with an explicit rate spaces requests evenly (GCRA, no burst). A bucket without one is
*adaptive*: unlimited until the server answers 429, then it halves the rate it was sending at
(never below 90% of what the server accepted in the last second) and grows back additively:
fast up to 90% of the rate that drew the 429, then slowly past it.

A 429 pauses every sender of the bucket concerned until ``Retry-After`` (or 1 s when the server
gives none), instead of each task retrying on its own and hammering a limited account harder.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping

from ._operation import Operation
from ._sansio import parse_retry_after

#: The creates paced by ``create_rate_limit``: the ones that dial or open a conversation.
PACED_CREATES = frozenset(
    {
        "createPhoneCall",
        "createWebCall",
        "registerPhoneCall",
        "createBatchCall",
        "createChat",
        "createSmsChat",
    }
)

#: Pause after a 429 that carried no Retry-After.
DEFAULT_PAUSE_S = 1.0
#: The adaptive rate never drops below this (requests per second).
MIN_ADAPTIVE_RATE = 1.0


class _RecentCount:
    """Events per second over roughly the last second, from two one-second counters."""

    __slots__ = ("_current", "_previous", "_second")

    def __init__(self) -> None:
        self._second = 0
        self._current = 0
        self._previous = 0

    def add(self, now: float) -> None:
        second = int(now)
        if second != self._second:
            self._previous = self._current if second == self._second + 1 else 0
            self._current = 0
            self._second = second
        self._current += 1

    def per_second(self, now: float) -> float:
        second = int(now)
        if second == self._second:
            return self._previous * (1.0 - (now - second)) + self._current
        if second == self._second + 1:
            return self._current * (1.0 - (now - second))
        return 0.0


class RateBucket:
    """One shared budget of requests per second, with a pause that every sender honours."""

    def __init__(self, rate: float | None, *, clock: Callable[[], float]) -> None:
        if rate is not None and (isinstance(rate, bool) or not rate > 0 or math.isinf(rate)):
            raise ValueError(f"a rate limit must be a positive number of requests/s, got {rate}")
        self.adaptive = rate is None
        #: requests per second now; ``None`` means unlimited
        self.rate: float | None = rate
        #: the rate that drew the last 429 (adaptive buckets)
        self.ceiling: float | None = None
        self.paused_until = -math.inf
        self.clock = clock
        self._tat = -math.inf  # GCRA theoretical arrival time of the next request
        self._grown_at = clock()
        self._last_decrease = -math.inf
        self._ok = _RecentCount()

    def reserve(self, now: float) -> float:
        """Claim the next slot; the seconds to wait before sending (0 to send now)."""
        if self.adaptive and self.rate is not None:
            self._grow(now)
        start = max(now, self.paused_until)
        if self.rate is not None:
            start = max(start, self._tat)
            self._tat = start + 1.0 / self.rate
        return start - now

    def pause(self, now: float, seconds: float) -> None:
        self.paused_until = max(self.paused_until, now + seconds)

    def on_success(self, now: float) -> None:
        if self.adaptive:
            self._ok.add(now)

    def on_rate_limited(self, now: float, sent_at: float, retry_after: float | None) -> None:
        self.pause(now, DEFAULT_PAUSE_S if retry_after is None else retry_after)
        # One decrease per congestion event: 429s for requests sent before the last decrease
        # belong to the event that already caused it.
        if not self.adaptive or sent_at < self._last_decrease:
            return
        # Halve the rate that drew the 429 (unpaced: what got through in the last second), but
        # not below 90% of what the server accepted in the last second: a drained server
        # bucket answers 429 a few times in a row, and halving on each would collapse the rate.
        accepted = self._ok.per_second(now)
        current = self.rate if self.rate is not None else accepted
        self.ceiling = current if current > 0 else None
        self.rate = max(MIN_ADAPTIVE_RATE, current / 2.0, 0.9 * accepted)
        self._last_decrease = now
        self._grown_at = now

    def _grow(self, now: float) -> None:
        assert self.rate is not None
        elapsed = now - self._grown_at
        if elapsed <= 0:
            return
        self._grown_at = now
        ceiling = self.ceiling
        if ceiling is None:
            self.rate *= 1.0 + elapsed  # no reference yet: roughly double each second
        elif self.rate < 0.9 * ceiling:
            self.rate += 0.5 * ceiling * elapsed  # back to 90% within a second
        else:
            # Past 90%, probe additively, a little faster the longer no 429 has come, so a
            # ceiling measured too low is left behind within seconds.
            calm = max(1.0, now - self._last_decrease)
            self.rate += max(0.5, 0.01 * ceiling) * calm * elapsed


class Pacer:
    """The pacing state of one client, shared by all its views and all its requests."""

    def __init__(
        self,
        *,
        rate_limit: float | None,
        create_rate_limit: float | None,
        max_concurrency: int | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise ValueError(f"max_concurrency must be a positive int, got {max_concurrency!r}")
        self.clock = clock
        self.sleep = sleep
        self.requests = RateBucket(rate_limit, clock=clock)
        self.creates = RateBucket(create_rate_limit, clock=clock)
        self.max_concurrency = max_concurrency
        #: caps requests in flight; ``None`` when ``max_concurrency`` is not set
        self.slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        #: Nothing to pace: no rate, no concurrency cap, and no 429 yet. The client then sends
        #: without :meth:`reserve` and reports with :meth:`on_unpaced_response`.
        self.idle = rate_limit is None and create_rate_limit is None and not max_concurrency

    def set_time(
        self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        """Use another clock and sleep (tests drive time instead of waiting)."""
        self.clock = self.requests.clock = self.creates.clock = clock
        self.sleep = sleep

    def _buckets(self, op: Operation) -> tuple[RateBucket, ...]:
        if op.operation_id in PACED_CREATES:
            return (self.requests, self.creates)
        return (self.requests,)

    def reserve(self, op: Operation) -> tuple[float, float]:
        """Claim ``op``'s rate slots now: (now, seconds to wait before sending).

        Synchronous, so the common case (no wait) costs no coroutine; only a request that must
        wait awaits :meth:`wait_turn`. The concurrency cap is :attr:`slots`, held by the client
        around the send.
        """
        now = self.clock()
        wait = self.requests.reserve(now)
        if op.operation_id in PACED_CREATES:
            wait = max(wait, self.creates.reserve(now))
        return now, wait

    async def wait_turn(self, op: Operation, wait: float) -> float:
        """Sleep until the reserved slot; queue again if a 429 paused the bucket meanwhile."""
        buckets = self._buckets(op)
        while True:
            await self.sleep(wait)
            now = self.clock()
            if all(bucket.paused_until <= now for bucket in buckets):
                return now
            now, wait = self.reserve(op)
            if wait <= 0:
                return now

    def on_response(
        self, op: Operation, status: int, headers: Mapping[str, str], sent_at: float
    ) -> None:
        if status == 429:
            self.idle = False
            bucket = self.creates if op.operation_id in PACED_CREATES else self.requests
            retry_after = parse_retry_after(headers, now=time.time)
            bucket.on_rate_limited(self.clock(), sent_at, retry_after)
        elif status < 400:
            if self.requests.adaptive:
                self.requests.on_success(sent_at)
            if self.creates.adaptive and op.operation_id in PACED_CREATES:
                self.creates.on_success(sent_at)

    def on_unpaced_response(self, op: Operation, status: int, headers: Mapping[str, str]) -> None:
        """:meth:`on_response` for a request sent while :attr:`idle`, without a reservation.

        It went out before any 429 was handled, so a 429 it draws belongs to the first
        congestion event; what got through is counted for the adaptive rate's first decrease.
        """
        if status < 400:  # both buckets are adaptive while idle
            now = self.clock()
            self.requests._ok.add(now)
            if op.operation_id in PACED_CREATES:
                self.creates._ok.add(now)
        elif status == 429:
            self.on_response(op, status, headers, -math.inf)
