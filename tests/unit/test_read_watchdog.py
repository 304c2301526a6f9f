"""The read-deadline watchdog on its own: which reads it fails, when it wakes, how it ends.

tests/integration/test_read_deadline.py has the same over real sockets.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp.client_proto import ResponseHandler

from aioretell._read_watchdog import ReadWatchdog, WatchedHandler


def test_aiohttp_still_calls_the_timer_hooks_the_handler_replaces() -> None:
    # Renamed hooks would not break reads (aiohttp would arm its own timer again, as before),
    # but every request would pay for that timer once more.
    for name in ("_reschedule_timeout", "_drop_timeout", "_on_read_timeout", "start_timeout"):
        assert callable(getattr(ResponseHandler, name, None)), name
    handler = ResponseHandler(asyncio.new_event_loop())
    assert hasattr(handler, "_read_timeout")
    handler._loop.close()


async def _until(done: Callable[[], bool]) -> None:
    """Wait for ``done``, giving up after a generous 10 s (a broken watchdog never does it)."""
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("still not done after 10 s")


class _Handler(WatchedHandler):
    """A handler without a connection, recording the reads failed for their deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop, watchdog: ReadWatchdog) -> None:
        super().__init__(loop, watchdog)
        self.timed_out = 0
        self.failed: list[BaseException] = []
        watchdog.handlers.add(self)

    def arm(self, seconds: float) -> None:
        self._read_timeout = seconds
        self.start_timeout()

    def read_timed_out(self) -> None:
        self.timed_out += 1
        self._drop_timeout()

    def set_exception(self, exc: BaseException, *args: object) -> None:
        self.failed.append(exc)
        self._drop_timeout()


async def test_check_fails_only_reads_past_their_deadline_and_names_the_next() -> None:
    loop = asyncio.get_running_loop()
    watchdog = ReadWatchdog()
    late, soon, idle = _Handler(loop, watchdog), _Handler(loop, watchdog), _Handler(loop, watchdog)
    late.read_deadline, soon.read_deadline = 10.0, 20.0
    assert idle.read_deadline is None
    assert watchdog.check(15.0) == 20.0
    assert (late.timed_out, soon.timed_out, idle.timed_out) == (1, 0, 0)
    assert late.read_deadline is None  # failed once, not again
    assert watchdog.check(15.0) == 20.0 and late.timed_out == 1
    assert watchdog.check(25.0) == math.inf and soon.timed_out == 1


async def test_a_read_deadline_starts_the_task_lazily_and_a_sooner_one_wakes_it() -> None:
    loop = asyncio.get_running_loop()
    watchdog = ReadWatchdog()
    handler = _Handler(loop, watchdog)
    assert watchdog._task is None  # nothing runs before a read is awaited
    handler.arm(3600.0)
    task = watchdog._task
    assert task is not None and task.get_name() == "aioretell-read-watchdog"
    await asyncio.sleep(0)
    assert watchdog.wake_at == handler.read_deadline  # asleep until that far deadline
    other = _Handler(loop, watchdog)
    other.arm(0.01)  # sooner: the task must not sleep past it
    await _until(lambda: other.timed_out > 0)
    assert handler.timed_out == 0
    assert watchdog._task is task  # one task throughout
    await watchdog.stop()
    assert task.done()


async def test_a_stopped_watchdog_starts_no_task() -> None:
    loop = asyncio.get_running_loop()
    watchdog = ReadWatchdog()
    await watchdog.stop()
    _Handler(loop, watchdog).arm(0.01)
    assert watchdog._task is None


async def test_a_watchdog_that_dies_fails_the_reads_it_guarded_and_is_restarted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    watchdog = ReadWatchdog()
    guarded = _Handler(loop, watchdog)
    broken = True
    real_check = ReadWatchdog.check

    def check(self: ReadWatchdog, now: float) -> float:
        if broken:
            raise RuntimeError("scan broke")
        return real_check(self, now)

    monkeypatch.setattr(ReadWatchdog, "check", check)
    with caplog.at_level(logging.ERROR, logger="aioretell"):
        guarded.arm(3600.0)
        first = watchdog._task
        assert first is not None
        await asyncio.wait([first])
        await asyncio.sleep(0)  # its done-callback
    assert "scan broke" in caplog.text
    [failure] = guarded.failed
    assert isinstance(failure, aiohttp.ClientConnectionError) and "scan broke" in str(failure)
    assert watchdog._task is None
    broken = False
    fresh = _Handler(loop, watchdog)
    fresh.arm(0.01)  # the next deadline starts a new task, which works
    assert watchdog._task is not None and watchdog._task is not first
    await _until(lambda: fresh.timed_out > 0)
    await watchdog.stop()
