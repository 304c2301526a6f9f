"""``fan_out``: run an async function over many inputs with bounded concurrency.

Inputs are pulled lazily (any iterable or async iterable) only as workers free up, so a million
leads never become a million tasks. Every input yields exactly one :class:`Outcome`; a failure is
captured in its outcome, never raised out of the loop. Pacing and retries are the client's:
``fan_out`` only bounds how many coroutines run at once.

::

    async with fan_out(place_call, leads, concurrency=50) as outcomes:
        async for outcome in outcomes:
            if outcome.error: ...

Leaving the ``async with`` (or breaking out of a bare ``async for``, or cancelling the consumer)
cancels the calls in flight and leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

import anyio
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
        #: what the input iterable itself raised; the consumer re-raises it at the end
        self.input_error: Exception | None = None

    async def drive(self, send: MemoryObjectSendStream[Outcome[T, R]]) -> None:
        async with send, anyio.create_task_group() as group:
            for _ in range(self.concurrency):
                group.start_soon(self.work, send.clone())

    async def work(self, send: MemoryObjectSendStream[Outcome[T, R]]) -> None:
        async with send:
            while True:
                if self.window is not None:
                    await self.window.acquire()
                try:
                    taken = await self.inputs.take()
                except Exception as exc:  # noqa: BLE001 - handed to the consumer, see input_error
                    self.input_error = exc
                    self.inputs.stop()
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
                    self.progress(Progress(self.done, self.failed, self.in_flight))
                await send.send(outcome)


class FanOut(Generic[T, R]):
    """The async iterator returned by :func:`fan_out`; also an async context manager."""

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
        except StopAsyncIteration:
            raise
        except BaseException:
            self._cancel()
            raise

    async def _receive_one(
        self, receive: MemoryObjectReceiveStream[Outcome[T, R]]
    ) -> Outcome[T, R]:
        try:
            return await receive.receive()
        except anyio.EndOfStream:
            if self._run.input_error is not None:
                raise self._run.input_error from None
            raise StopAsyncIteration from None

    def _cancel(self) -> None:
        if self._driver is not None and not self._driver.done():
            self._driver.cancel()
        if self._receive is not None:
            self._receive.close()

    async def aclose(self) -> None:
        """Cancel whatever is still running and wait until it has stopped."""
        self._cancel()
        if self._driver is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver

    async def __aenter__(self) -> FanOut[T, R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

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
