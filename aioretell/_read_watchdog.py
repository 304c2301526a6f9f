"""Read deadlines for every connection of a pool, kept by one task instead of a timer per read.

aiohttp enforces ``sock_read`` by re-arming a ``call_later`` timer each time data arrives: a
timer created and cancelled several times per request. :class:`WatchedHandler` keeps aiohttp's
rule (the deadline starts when the request is written, moves on with every read, stops while
reading is paused and once the response is complete) but only records the deadline as a number;
one :class:`ReadWatchdog` task per pool sleeps until the earliest deadline and fails each
response that passed its own exactly as aiohttp's timer would (``ServerTimeoutError``).

The task starts with the first deadline (so in the running loop) and is stopped with the pool.
If it dies, the responses it was guarding fail with its error instead of waiting unbounded, and
the next deadline starts a new one.
"""

from __future__ import annotations

import asyncio
import logging
import math

import aiohttp
from aiohttp.client_proto import ResponseHandler

log = logging.getLogger("aioretell")


class WatchedHandler(ResponseHandler):
    """aiohttp's connection protocol, its read timer replaced by :attr:`read_deadline`.

    Overrides aiohttp's two private timer hooks, ``_reschedule_timeout`` and ``_drop_timeout``
    (tests/unit/test_read_watchdog.py checks that aiohttp still calls them); were they renamed,
    aiohttp would arm its own timer again: slower, never wrong.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, watchdog: ReadWatchdog) -> None:
        #: loop time by which the next read must come; ``None`` while no read is awaited
        self.read_deadline: float | None = None
        self._watchdog = watchdog
        super().__init__(loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._watchdog.handlers.add(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._watchdog.handlers.discard(self)
        super().connection_lost(exc)

    def _reschedule_timeout(self) -> None:
        timeout = self._read_timeout
        if not timeout:
            self.read_deadline = None
            return
        deadline = self.read_deadline = self._loop.time() + timeout
        watchdog = self._watchdog
        if deadline < watchdog.wake_at:
            watchdog.wake(deadline, self._loop)

    def _drop_timeout(self) -> None:
        self.read_deadline = None

    def read_timed_out(self) -> None:
        """What aiohttp's timer does when it fires: fail the response being read."""
        self._on_read_timeout()


class ReadWatchdog:
    """Fails the reads of its pool's connections that passed their deadline."""

    def __init__(self) -> None:
        #: the pool's open connections
        self.handlers: set[WatchedHandler] = set()
        #: when the task wakes next; a deadline before it wakes it sooner (or starts it: inf
        #: while no task runs, as while one sleeps with no deadline ahead)
        self.wake_at = math.inf
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._stopped = False

    def wake(self, deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        """A read deadline earlier than the task's next wake-up: look again by then."""
        if self._stopped:
            return
        self.wake_at = deadline
        if self._task is None:
            self._task = loop.create_task(self._run(), name="aioretell-read-watchdog")
            self._task.add_done_callback(self._ended)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            earliest = self.check(loop.time())
            self.wake_at = earliest
            waiter = self._waiter = loop.create_future()
            timer = None if earliest == math.inf else loop.call_at(earliest, _wake_up, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()

    def check(self, now: float) -> float:
        """Fail the reads whose deadline is past; the earliest deadline still ahead."""
        earliest = math.inf
        for handler in tuple(self.handlers):  # a timed-out read may close its connection
            deadline = handler.read_deadline
            if deadline is None:
                continue
            if deadline <= now:
                handler.read_timed_out()
            elif deadline < earliest:
                earliest = deadline
        return earliest

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._task = None
        self.wake_at = math.inf  # the next deadline starts a new task
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        log.error("aioretell: the read-deadline watchdog failed: %r", error)
        failure = aiohttp.ClientConnectionError(f"the read-deadline watchdog failed: {error!r}")
        for handler in tuple(self.handlers):
            if handler.read_deadline is not None:
                handler.set_exception(failure)

    async def stop(self) -> None:
        """Stop the task (from its own loop); no deadline starts another."""
        self._stopped = True
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.wait([task])


def _wake_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
