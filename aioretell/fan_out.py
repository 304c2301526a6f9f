"""``fan_out``: run an async function over many inputs with bounded concurrency.

Inputs are pulled lazily (any iterable or async iterable) only as workers free up, so a million
leads never become a million tasks. Every input yields exactly one :class:`Outcome`, or the
iteration raises: a failure of ``func`` is captured in its outcome, never raised out of the loop;
a failure outside it (the input iterable, the ``progress`` callback) takes no more inputs and,
after the outcomes of the calls already started, ends the iteration with that error. Pacing and
retries are the client's: ``fan_out`` only bounds how many coroutines run at once.

::

    async with fan_out(place_call, leads, concurrency=50) as outcomes:
        async for outcome in outcomes:
            if outcome.error: ...

Leaving the ``async with`` (or breaking out of a bare ``async for``, or cancelling the consumer)
cancels the calls in flight and leaves nothing running; leaving ``async with`` or a cancelled
loop waits until they have stopped, and a cancellation of the consumer always propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["FanOut", "Outcome", "Progress", "fan_out"]


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T, R]):
    """What became of one input: its position, the input itself, and a value or an error."""

    index: int
    item: T
    value: R | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Progress:
    """Counts passed to the progress callback after each completion."""

    done: int
    failed: int
    in_flight: int


class _Inputs(Generic[T]):
    """Hands out (index, item) pairs to workers, pulling from the source only on demand."""

    def __init__(self, items: Iterable[T] | AsyncIterable[T]) -> None:
        self._sync: Iterator[T] | None = None
        self._async: AsyncIterator[T] | None = None
        if isinstance(items, AsyncIterable):
            self._async = aiter(items)
        elif isinstance(items, Iterable):
            self._sync = iter(items)
        else:
            raise TypeError(f"items must be an iterable or async iterable, not {type(items)!r}")
        self._lock = anyio.Lock()
        self._index = 0
        self._exhausted = False

    async def take(self) -> tuple[int, T] | None:
        if self._exhausted:
            return None
        if self._sync is not None:
            try:
                item = next(self._sync)
            except StopIteration:
                self._exhausted = True
                return None
        else:
            assert self._async is not None
            async with self._lock:  # one pull at a time from an async source
                if self._exhausted:
                    return None
                try:
                    item = await anext(self._async)
                except StopAsyncIteration:
                    self._exhausted = True
                    return None
        index = self._index
        self._index += 1
        return index, item

    def stop(self) -> None:
        self._exhausted = True


class _Run(Generic[T, R]):
    """The workers' side. It never refers to the :class:`FanOut`, so dropping that object
    (a ``break`` out of a bare ``async for``) lets its finalizer cancel the run."""

    def __init__(
        self,
        func: Callable[[T], Awaitable[R]],
        inputs: _Inputs[T],
        concurrency: int,
        window: anyio.Semaphore | None,
        progress: Callable[[Progress], None] | None,
    ) -> None:
        self.func = func
        self.inputs = inputs
        self.concurrency = concurrency
        self.window = window
        self.progress = progress
        self.done = 0
        self.failed = 0
        self.in_flight = 0
        #: the first failure outside ``func``; the consumer raises it after the outcomes made
        self.error: Exception | None = None
        self._group: anyio.abc.TaskGroup | None = None

    def fail(self, error: Exception) -> None:
        """Take no more inputs; the iteration ends with ``error`` (the first one wins)."""
        if self.error is None:
            self.error = error
        self.inputs.stop()

    async def drive(self, send: MemoryObjectSendStream[Outcome[T, R]]) -> None:
        async with send, anyio.create_task_group() as group:
            self._group = group
            for _ in range(self.concurrency):
                group.start_soon(self.work, send.clone())

    async def work(self, send: MemoryObjectSendStream[Outcome[T, R]]) -> None:
        try:
            async with send:
                await self._work(send)
        except Exception as exc:  # noqa: BLE001 - a bug outside func: stop all, tell the consumer
            self.fail(exc)
            assert self._group is not None
            self._group.cancel_scope.cancel()

    async def _work(self, send: MemoryObjectSendStream[Outcome[T, R]]) -> None:
        while True:
            if self.window is not None:
                await self.window.acquire()
            try:
                taken = await self.inputs.take()
            except Exception as exc:  # noqa: BLE001 - the input source failed: see fail()
                self.fail(exc)
                taken = None
            if taken is None:
                if self.window is not None:
                    self.window.release()
                return
            index, item = taken
            self.in_flight += 1
            try:
                value = await self.func(item)
            except Exception as exc:  # noqa: BLE001 - kept in the outcome, never dropped
                outcome: Outcome[T, R] = Outcome(index, item, error=exc)
                self.failed += 1
            else:
                outcome = Outcome(index, item, value=value)
            finally:
                self.in_flight -= 1
            self.done += 1
            if self.progress is not None:
                try:
                    self.progress(Progress(self.done, self.failed, self.in_flight))
                except Exception as exc:  # noqa: BLE001 - raised to the consumer: see fail()
                    self.progress = None
                    self.fail(exc)
            try:
                await send.send(outcome)
            except anyio.BrokenResourceError:
                return  # the consumer stopped reading


class FanOut(Generic[T, R]):
    """The async iterator returned by :func:`fan_out`; also an async context manager.

    It owns the task that runs the calls: leaving ``async with`` and every end of the iteration
    (exhausted, an error, a cancellation) cancel what still runs and wait until it has stopped.
    Only a ``break`` out of a bare ``async for`` cannot wait; the finalizer then cancels.
    """

    _driver: asyncio.Task[None] | None = None
    _receive: MemoryObjectReceiveStream[Outcome[T, R]] | None = None

    def __init__(
        self,
        func: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        concurrency: int,
        ordered: bool,
        reorder_window: int | None,
        progress: Callable[[Progress], None] | None,
    ) -> None:
        if not callable(func):
            raise TypeError("func must be an async callable")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
        window = reorder_window if reorder_window is not None else 2 * concurrency
        if ordered and window < concurrency:
            raise ValueError(f"reorder_window must be at least concurrency ({concurrency})")
        # Ordered mode: at most `window` inputs taken but not yet yielded, bounding the buffer.
        slots = anyio.Semaphore(window) if ordered else None
        self._run: _Run[T, R] = _Run(func, _Inputs(items), concurrency, slots, progress)
        self._ordered = ordered
        self._pending: dict[int, Outcome[T, R]] = {}
        self._next_index = 0
        #: the iteration has ended (exhausted, or it raised)
        self._finished = False

    def __aiter__(self) -> FanOut[T, R]:
        return self

    def _start(self) -> MemoryObjectReceiveStream[Outcome[T, R]]:
        send, receive = anyio.create_memory_object_stream[Outcome[T, R]](self._run.concurrency)
        self._receive = receive
        driver = asyncio.get_running_loop().create_task(self._run.drive(send))
        # Closes the stream even when the driver is cancelled before it first runs.
        driver.add_done_callback(lambda _task: send.close())
        self._driver = driver
        return receive

    async def __anext__(self) -> Outcome[T, R]:
        if self._finished:
            raise StopAsyncIteration
        receive = self._receive or self._start()
        try:
            if not self._ordered:
                return await self._receive_one(receive)
            while self._next_index not in self._pending:
                outcome = await self._receive_one(receive)
                self._pending[outcome.index] = outcome
            outcome = self._pending.pop(self._next_index)
            self._next_index += 1
            assert self._run.window is not None
            self._run.window.release()
            return outcome
        except BaseException:
            self._finished = True
            await self._stop()
            raise

    async def _receive_one(
        self, receive: MemoryObjectReceiveStream[Outcome[T, R]]
    ) -> Outcome[T, R]:
        try:
            return await receive.receive()
        except anyio.EndOfStream:
            failure = self._failure()
            if failure is not None:
                raise failure from None
            raise StopAsyncIteration from None

    def _failure(self) -> BaseException | None:
        """Why the calls stopped before every input had its outcome, if they did."""
        if self._run.error is not None:
            return self._run.error
        driver = self._driver
        if driver is not None and driver.done() and not driver.cancelled():
            return driver.exception()
        return None

    def _cancel(self) -> None:
        if self._driver is not None and not self._driver.done():
            self._driver.cancel()
        if self._receive is not None:
            self._receive.close()

    async def _stop(self) -> None:
        """Cancel whatever still runs and wait until it has stopped.

        A cancellation of the caller meanwhile does not cut the wait short (that would leave
        the calls running unowned); it is raised once they have stopped.
        """
        self._cancel()
        driver = self._driver
        if driver is None:
            return
        interrupted: asyncio.CancelledError | None = None
        while not driver.done():
            try:
                await asyncio.wait((driver,))
            except asyncio.CancelledError as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted

    async def aclose(self) -> None:
        """Cancel whatever is still running and wait until it has stopped.

        Raises a failure outside ``func`` that the iteration has not raised yet.
        """
        await self._stop()
        if not self._finished:
            self._finished = True
            failure = self._failure()
            if failure is not None:
                raise failure

    async def __aenter__(self) -> FanOut[T, R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.aclose()
        else:
            await self._stop()  # the exception on its way out is the one to see

    def __del__(self) -> None:
        # A bare `async for` that breaks drops the last reference here: stop the workers.
        self._cancel()


def fan_out(
    func: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    concurrency: int,
    ordered: bool = False,
    reorder_window: int | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> FanOut[T, R]:
    """Call ``func`` on every item, at most ``concurrency`` at a time; iterate the outcomes.

    ``ordered=True`` yields outcomes in input order, holding at most ``reorder_window``
    (default ``2 * concurrency``) finished outcomes back. ``progress`` is called with the
    counts after each completion.
    """
    return FanOut(
        func,
        items,
        concurrency=concurrency,
        ordered=ordered,
        reorder_window=reorder_window,
        progress=progress,
    )
