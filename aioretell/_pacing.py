"""Pacing shared by every request a client sends: rate buckets, a concurrency cap, 429 pauses.

The client talks to a pacer through :class:`Pacing`: take a turn before sending, then end it
once, with the response or without one. :class:`Pacer` keeps the state in this process.

Two buckets: one for all requests (``rate_limit``) and one for the operations the generated
table marks ``starts_conversation`` (``create_rate_limit``; Retell limits calls per second). A
bucket with an explicit rate spaces requests evenly (GCRA, no burst). A bucket without one is
*adaptive*: unlimited until the server answers 429, then it halves the rate it was sending at
(never below 90% of the successes that arrived in the last second) and grows back additively:
fast up to 90% of the rate that drew the 429, then slowly past it.

A turn is claimed only when it is granted. Senders that must wait queue in order and the first
of them sleeps until the bucket is ready, so a sender cancelled while it waits holds nothing and
the ones behind it move up. A turn granted to a request that then never reached the server is
given back, unless a later turn was granted meanwhile (then its time has passed: reusing it
would be a burst).

A 429 pauses every sender of the bucket concerned until ``Retry-After`` (or 1 s when the server
gives none), instead of each task retrying on its own and hammering a limited account harder.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

import anyio

from ._operation import Operation
from ._sansio import parse_retry_after

#: Pause after a 429 that carried no Retry-After.
DEFAULT_PAUSE_S = 1.0
#: The adaptive rate never drops below this (requests per second).
MIN_ADAPTIVE_RATE = 1.0

TurnT = TypeVar("TurnT")


class Pacing(Protocol[TurnT]):
    """What the client asks of a pacer, wherever its state lives (this process, a shared store).

    Every request takes a turn before it is sent and ends it exactly once: with its response
    (:meth:`on_response`) or without one (:meth:`release`). A turn is whatever the pacer needs
    to end it; the client only hands it back.

    While :attr:`idle` is true there is nothing to pace (no rate, no cap, no 429 yet): the client
    then sends without a turn and reports the answer with :meth:`on_unpaced_response`.
    """

    idle: bool

    def on_unpaced_response(self, op: Operation, status: int, headers: Mapping[str, str]) -> None:
        """The answer to a request sent without a turn while :attr:`idle`."""
        ...

    def try_reserve(self, op: Operation) -> TurnT | None:
        """A turn for ``op`` now, or ``None`` when the caller must await :meth:`reserve`.

        Synchronous, so a request that need not wait costs no coroutine.
        """
        ...

    async def reserve(self, op: Operation) -> TurnT:
        """Wait for a turn for ``op``. Cancelled while waiting, it holds nothing."""
        ...

    def on_response(
        self, op: Operation, turn: TurnT, status: int, headers: Mapping[str, str]
    ) -> None:
        """The response to the request sent on ``turn`` arrived; the turn ends."""
        ...

    def release(self, op: Operation, turn: TurnT, *, sent: bool) -> None:
        """The turn ends without a response. ``sent=False`` (the request certainly never
        reached the server) gives the turn back."""
        ...

    def set_time(
        self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        """Use another clock and sleep (tests drive time instead of waiting)."""
        ...


class _RecentCount:
    """Events per second over roughly the last second, from two one-second counters.

    Events may be reported out of order: one from the previous second still counts there, an
    older one no longer counts; neither disturbs the newer counts.
    """

    __slots__ = ("_current", "_previous", "_second")

    def __init__(self) -> None:
        self._second = 0
        self._current = 0
        self._previous = 0

    def add(self, now: float) -> None:
        second = int(now)
        if second == self._second:
            self._current += 1
        elif second > self._second:
            self._previous = self._current if second == self._second + 1 else 0
            self._current = 1
            self._second = second
        elif second == self._second - 1:
            self._previous += 1

    def per_second(self, now: float) -> float:
        second = int(now)
        if second <= self._second:
            elapsed = max(0.0, now - self._second)
            return self._previous * (1.0 - elapsed) + self._current
        if second == self._second + 1:
            return self._current * (1.0 - (now - second))
        return 0.0


class RateBucket:
    """One shared budget of requests per second, with a pause that every sender honours.

    Senders that cannot go at once wait their turn on :attr:`queue` (first come, first served);
    :meth:`take` claims a turn when it is granted.
    """

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
        #: held by the first waiting sender while it sleeps; the others queue on it
        self.queue = asyncio.Lock()
        self._tat = -math.inf  # GCRA theoretical arrival time of the next request
        # The last turn granted, and the TAT before it: what giving that turn back restores.
        self._granted_at = math.nan
        self._tat_before = -math.inf
        self._grown_at = clock()
        self._last_decrease = -math.inf
        self._ok = _RecentCount()

    def ready_at(self) -> float:
        """The earliest time the next turn may be granted."""
        return self._tat if self._tat > self.paused_until else self.paused_until

    def take(self, now: float, due: float | None = None) -> None:
        """Grant a turn at ``now``; ``due`` is the time a sender that slept was woken for."""
        if self.rate is None:
            return
        if self.adaptive:
            self._grow(now)
        interval = 1.0 / self.rate
        # A sender that slept is charged at the time it slept until, not at the moment the
        # event loop got round to it (up to one interval late): the delay is not idle demand,
        # and charging it would slow every paced stream below its rate.
        at = now if due is None else max(due, now - interval)
        self._tat_before = self._tat
        self._granted_at = now
        self._tat = max(self._tat, at) + interval

    def give_back(self, granted_at: float) -> None:
        """Undo the turn granted at ``granted_at`` if no turn was granted after it."""
        if granted_at == self._granted_at:
            self._tat = self._tat_before
            self._granted_at = math.nan

    def pause(self, now: float, seconds: float) -> None:
        self.paused_until = max(self.paused_until, now + seconds)

    def on_success(self, now: float) -> None:
        """A success arrived at ``now`` (the adaptive floor counts arrivals, in any order)."""
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
    """The in-process :class:`Pacing`: one client's state, shared by its views and requests.

    A turn is the clock time it was granted at (the request's send time).
    """

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
        #: caps requests in flight; ``None`` when ``max_concurrency`` is not set. anyio's, for
        #: its synchronous acquire: a request that need not wait costs no coroutine.
        self.slots = anyio.Semaphore(max_concurrency) if max_concurrency else None
        #: Nothing to pace: no rate, no concurrency cap, and no 429 yet. The client then sends
        #: without a turn and reports with :meth:`on_unpaced_response`.
        self.idle = rate_limit is None and create_rate_limit is None and not max_concurrency

    def set_time(
        self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        self.clock = self.requests.clock = self.creates.clock = clock
        self.sleep = sleep

    def buckets(self, op: Operation) -> tuple[RateBucket, ...]:
        """The buckets ``op`` takes a turn from, in the order a waiting sender queues on them.

        Creates queue on their own bucket first, so a create waiting for its (usually slower)
        bucket never holds up the reads queued on the shared one.
        """
        if op.starts_conversation:
            return (self.creates, self.requests)
        return (self.requests,)

    def try_reserve(self, op: Operation) -> float | None:
        slots = self.slots
        if slots is None:
            return self._take_now(op)
        if not slots.value:
            return None
        turn = self._take_now(op)
        if turn is not None:
            slots.acquire_nowait()
        return turn

    async def reserve(self, op: Operation) -> float:
        slots = self.slots
        if slots is not None:
            await slots.acquire()
        try:
            now = self._take_now(op)
            return now if now is not None else await self._wait_turn(self.buckets(op))
        except BaseException:
            if slots is not None:
                slots.release()
            raise

    def on_response(
        self, op: Operation, turn: float, status: int, headers: Mapping[str, str]
    ) -> None:
        if self.slots is not None:
            self.slots.release()
        if status == 429:
            self.idle = False
            bucket = self.creates if op.starts_conversation else self.requests
            retry_after = parse_retry_after(headers, now=time.time)
            bucket.on_rate_limited(self.clock(), turn, retry_after)
        elif status < 400:
            requests, creates = self.requests, self.creates
            counts_create = creates.adaptive and op.starts_conversation
            if requests.adaptive or counts_create:
                now = self.clock()
                requests.on_success(now)
                if counts_create:
                    creates.on_success(now)

    def release(self, op: Operation, turn: float, *, sent: bool) -> None:
        if self.slots is not None:
            self.slots.release()
        if not sent:
            self.requests.give_back(turn)
            if op.starts_conversation:
                self.creates.give_back(turn)

    def _take_now(self, op: Operation) -> float | None:
        """Grant a turn without waiting if nobody queues before ``op`` and its buckets are ready."""
        now = self.clock()
        requests = self.requests
        if requests.queue.locked() or requests.ready_at() > now:
            return None
        if op.starts_conversation:
            creates = self.creates
            if creates.queue.locked() or creates.ready_at() > now:
                return None
            creates.take(now)
        requests.take(now)
        return now

    async def _wait_turn(self, buckets: tuple[RateBucket, ...]) -> float:
        """Queue on the buckets in order, sleep until they are ready, and take the turns."""
        first = buckets[0]
        async with first.queue:
            if len(buckets) == 1:
                now, due = await self._sleep_until_ready(buckets)
                first.take(now, due)
                return now
            # Ready on its own bucket first, then queue on the shared one: a create holds the
            # shared queue only for the moment the shared bucket needs.
            _, first_due = await self._sleep_until_ready((first,))
            second = buckets[1]
            async with second.queue:
                now, due = await self._sleep_until_ready(buckets)
                first.take(now, first_due if due is None else due)
                second.take(now, due)
                return now

    async def _sleep_until_ready(
        self, buckets: tuple[RateBucket, ...]
    ) -> tuple[float, float | None]:
        """Sleep until every bucket is ready: (now, the time last slept until or ``None``)."""
        due: float | None = None
        while True:
            now = self.clock()
            ready = max(bucket.ready_at() for bucket in buckets)
            if ready <= now:
                return now, due
            # A 429 while asleep pauses a bucket further: the loop then sleeps again.
            due = ready
            await self.sleep(ready - now)

    def on_unpaced_response(self, op: Operation, status: int, headers: Mapping[str, str]) -> None:
        """:meth:`on_response` for a request sent while :attr:`idle`, without a turn.

        It went out before any 429 was handled, so a 429 it draws belongs to the first
        congestion event; what got through is counted for the adaptive rate's first decrease.
        """
        if status < 400:
            # A pacer that is ever idle has no set rate: both buckets are adaptive for good,
            # so their counts are added to directly, a call less on every unpaced success.
            now = self.clock()
            self.requests._ok.add(now)
            if op.starts_conversation:
                self.creates._ok.add(now)
        elif status == 429:
            self.on_response(op, -math.inf, status, headers)
