"""fan_out: laziness, one outcome per input, order, cancellation, nothing left running."""

from __future__ import annotations

import asyncio
import gc
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import anyio
import pytest

from aioretell import Outcome, Progress, fan_out

fan_out_module = importlib.import_module("aioretell.fan_out")
T = TypeVar("T")
R = TypeVar("R")


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def flaky(x: int) -> int:
    await asyncio.sleep(0)
    if x % 7 == 3:
        raise ValueError(f"bad {x}")
    return x


def other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def settle() -> None:
    await settle_for(lambda: not other_tasks())


async def settle_for(condition: Callable[[], bool]) -> None:
    for _ in range(20):
        if condition():
            return
        await asyncio.sleep(0)


async def test_every_input_gives_one_outcome_and_failures_are_kept() -> None:
    outcomes = [o async for o in fan_out(flaky, range(100), concurrency=8)]
    assert sorted(o.index for o in outcomes) == list(range(100))
    failed = [o for o in outcomes if not o.ok]
    assert {o.item for o in failed} == {x for x in range(100) if x % 7 == 3}
    assert all(isinstance(o.error, ValueError) and o.value is None for o in failed)
    assert all(o.value == o.item for o in outcomes if o.ok)


async def test_input_is_pulled_lazily() -> None:
    pulled = 0

    def source() -> Iterator[int]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield i

    async with fan_out(double, source(), concurrency=4) as outcomes:
        async for _ in outcomes:
            break
        # only the items the workers took, plus what fits in the outcome buffer
        assert pulled <= 4 + 4 + 1
    await settle()
    assert not other_tasks()


async def test_async_iterable_input() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(50):
            await asyncio.sleep(0)
            yield i

    values = sorted([o.value or 0 async for o in fan_out(double, source(), concurrency=5)])
    assert values == [2 * i for i in range(50)]


async def test_ordered_yields_in_input_order_with_bounded_buffer() -> None:
    async def jitter(x: int) -> int:
        for _ in range((x * 7919) % 5):
            await asyncio.sleep(0)
        return x

    seen_pending: list[int] = []
    it = fan_out(jitter, range(200), concurrency=6, ordered=True)
    async with it:
        indexes = []
        async for o in it:
            indexes.append(o.index)
            seen_pending.append(len(it._pending))  # the reorder buffer
    assert indexes == list(range(200))
    assert max(seen_pending) <= 12


async def test_never_more_workers_than_concurrency() -> None:
    running = peak = 0

    async def track(x: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        return x

    outcomes = [o async for o in fan_out(track, range(500), concurrency=7)]
    assert len(outcomes) == 500
    assert peak == 7


async def test_breaking_out_of_a_bare_loop_stops_everything() -> None:
    started = 0

    async def slow(x: int) -> int:
        nonlocal started
        started += 1
        await asyncio.sleep(3600)
        return x

    async def quick_then_slow(x: int) -> int:
        return x if x == 0 else await slow(x)

    async for outcome in fan_out(quick_then_slow, range(1000), concurrency=10):
        assert outcome.index == 0
        break
    await settle()
    assert not other_tasks()
    assert started <= 10


async def test_cancelling_the_consumer_cancels_calls_in_flight() -> None:
    cancelled = 0

    async def hang(x: int) -> int:
        nonlocal cancelled
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return x

    async def consume() -> None:
        async with fan_out(hang, range(100), concurrency=5) as outcomes:
            async for _ in outcomes:
                pass

    task = asyncio.create_task(consume())
    for _ in range(10):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == 5
    assert not other_tasks()


async def test_progress_counts() -> None:
    seen: list[Progress] = []
    outcomes = [o async for o in fan_out(flaky, range(21), concurrency=3, progress=seen.append)]
    assert len(outcomes) == 21
    assert seen[-1].done == 21
    assert seen[-1].failed == 3
    assert all(p.in_flight <= 3 for p in seen)


async def test_failure_of_the_input_itself_is_raised() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("source broke")

    seen = []
    with pytest.raises(RuntimeError, match="source broke"):
        async with fan_out(double, broken(), concurrency=2) as outcomes:
            async for outcome in outcomes:
                seen.append(outcome.value)
    assert seen == [2]  # the inputs before the failure still got their outcomes


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"concurrency": 0}, ValueError),
        ({"concurrency": "4"}, ValueError),
        ({"concurrency": 4, "ordered": True, "reorder_window": 2}, ValueError),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        fan_out(double, range(3), **kwargs)  # type: ignore[arg-type]


def test_items_must_be_iterable() -> None:
    with pytest.raises(TypeError, match="items"):
        fan_out(double, 5, concurrency=2)  # type: ignore[arg-type]


def test_outcome_is_small() -> None:
    assert not hasattr(Outcome(0, 1), "__dict__")


# -- cancellation and failures outside func ---------------------------------------------------


def slow_to_stop(release: asyncio.Event, stopped: list[int]) -> Callable[[int], Awaitable[int]]:
    """A func that answers 0 at once and hangs on the rest; cancelled, it takes until
    ``release`` is set to clean up (shielded, as cleanup that must finish is)."""

    async def call(x: int) -> int:
        if x == 0:
            return x
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                await release.wait()
            stopped.append(x)
            raise
        return x

    return call


async def test_a_cancel_while_leaving_async_with_propagates() -> None:
    release = asyncio.Event()
    stopped: list[int] = []
    went_on: list[bool] = []
    left: list[bool] = []

    async def consume() -> None:
        async with fan_out(slow_to_stop(release, stopped), range(4), concurrency=4) as outcomes:
            async for _ in outcomes:
                left.append(True)
                break
        went_on.append(True)  # must not run: the task was cancelled on its way out

    task = asyncio.create_task(consume())
    await settle_for(lambda: bool(left))
    for _ in range(5):  # the consumer now waits in __aexit__ for the calls to stop
        await asyncio.sleep(0)
    task.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()  # still waiting for the calls to finish stopping
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not went_on
    assert sorted(stopped) == [1, 2, 3]
    assert not other_tasks()


async def test_a_cancelled_bare_loop_waits_for_the_calls_to_stop() -> None:
    release = asyncio.Event()
    stopped: list[int] = []

    async def consume() -> None:
        async for _ in fan_out(slow_to_stop(release, stopped), range(1, 4), concurrency=3):
            pass

    task = asyncio.create_task(consume())
    for _ in range(10):
        await asyncio.sleep(0)
    task.cancel()
    for _ in range(10):
        await asyncio.sleep(0)
    assert not task.done()  # the cancelled consumer owns the calls until they have stopped
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(stopped) == [1, 2, 3]
    assert not other_tasks()


class LoopErrors:
    """Collects what the event loop reports about tasks nobody awaited."""

    def __init__(self) -> None:
        self.reports: list[str] = []

    def __enter__(self) -> LoopErrors:
        self.loop = asyncio.get_running_loop()
        self.previous = self.loop.get_exception_handler()
        self.loop.set_exception_handler(lambda _, context: self.reports.append(context["message"]))
        return self

    def __exit__(self, *exc: object) -> None:
        gc.collect()
        self.loop.set_exception_handler(self.previous)


async def test_a_failing_progress_callback_ends_the_iteration_with_its_error() -> None:
    def progress(counts: Progress) -> None:
        if counts.done == 2:
            raise ValueError("progress broke")

    seen: list[int] = []
    with LoopErrors() as loop_errors:
        with pytest.raises(ValueError, match="progress broke"):
            async for outcome in fan_out(double, range(10), concurrency=3, progress=progress):
                seen.append(outcome.index)
        await settle()
    # the outcomes already made (the one whose callback failed among them) came first
    assert len(seen) == len(set(seen)) >= 2
    assert not other_tasks()
    assert not loop_errors.reports


async def test_a_failing_progress_callback_is_raised_in_ordered_mode_too() -> None:
    def progress(counts: Progress) -> None:
        raise ValueError("progress broke")

    seen: list[int] = []
    with pytest.raises(ValueError, match="progress broke"):
        async with fan_out(
            double, range(10), concurrency=3, ordered=True, progress=progress
        ) as outcomes:
            async for outcome in outcomes:
                seen.append(outcome.index)
    assert seen == list(range(len(seen)))
    assert not other_tasks()


async def test_a_driver_that_dies_outside_func_ends_the_iteration_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Breaking(Outcome[T, R]):
        """Recording the outcome of input 3 fails: a bug in the driver, not in func."""

        __slots__ = ()

        def __new__(cls, index: int, *args: object, **kwargs: object) -> Breaking[T, R]:
            if index == 3:
                raise RuntimeError("driver broke")
            return super().__new__(cls)

    monkeypatch.setattr(fan_out_module, "Outcome", Breaking)
    seen: list[int] = []
    with LoopErrors() as loop_errors:
        with pytest.raises(RuntimeError, match="driver broke"):
            async for o in fan_out(double, range(10), concurrency=2):
                seen.append(o.index)
        await settle()
    assert 3 not in seen
    assert not other_tasks()
    assert not loop_errors.reports


async def test_a_failure_the_consumer_left_before_seeing_is_raised_on_leaving() -> None:
    def progress(counts: Progress) -> None:
        if counts.done == 2:
            raise ValueError("progress broke")

    gate = asyncio.Event()

    async def gated(x: int) -> int:
        if x:
            await gate.wait()
        return x

    with pytest.raises(ValueError, match="progress broke"):
        async with fan_out(gated, range(4), concurrency=4, progress=progress) as outcomes:
            async for _ in outcomes:
                gate.set()  # the second completion's callback fails while the body runs
                await settle()
                break
    assert not other_tasks()


async def test_a_cancel_is_not_replaced_by_a_failure_seen_on_leaving() -> None:
    def progress(counts: Progress) -> None:
        raise ValueError("progress broke")

    async def consume() -> None:
        async with fan_out(double, range(4), concurrency=2, progress=progress):
            await asyncio.sleep(3600)

    task = asyncio.create_task(consume())
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
