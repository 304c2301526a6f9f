"""The dispatch loop: every pending lead dialled once, within the pace and capacity allowed.

Leads become eligible in file order (a requeued or redialled one after its ``not_before``);
a lead is taken only once a capacity slot is free, marked ``dispatching`` in the journal, and
handed to :func:`~aioretell.fan_out.fan_out`, which runs at most ``concurrency`` creates at a
time. The client paces the creates (``create_rate_limit``). Call ends come back from the
:class:`~aioretell.dial.watch.Watcher` (or webhooks) and decide between done, requeue and
redial.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET

from .._client import AsyncRetell
from .._exceptions import AmbiguousOutcomeError, APIError, APIStatusError, RateLimitError
from ..fan_out import fan_out
from . import journal as j
from .capacity import CapacityGate
from .journal import Journal, Row
from .reconcile import call_metadata, find_call, idempotency_key
from .watch import CallEnd, call_end

logger = logging.getLogger("aioretell.dial")

#: Ends that mean the call never got a line: tried again after a backoff, a bounded number of
#: times.
REQUEUE_REASONS = frozenset({"concurrency_limit_reached", "no_concurrency_fallback"})
#: Ends tried again only when ``--redial N`` asks for it.
REDIAL_REASONS = frozenset({"dial_busy", "dial_no_answer"})


@dataclass(frozen=True, slots=True)
class DialOptions:
    from_number: str
    agent_id: str | None = None
    concurrency: int = 20
    redial: int = 0
    #: creates per second (also the client's ``create_rate_limit``); ``None``: unpaced here
    cps: float | None = None
    redial_delay_s: float = 60.0
    #: attempts after a capacity end before the row ends as it is
    max_requeues: int = 5
    #: first wait after a capacity end or a transient failure, doubled each time, capped
    backoff_s: float = 2.0
    backoff_cap_s: float = 60.0
    #: ambiguous creates looked up and not found, before the row fails
    max_ambiguous: int = 3


@dataclass
class Stats:
    total: int = 0
    placed: int = 0
    ended: int = 0
    failed: int = 0
    requeued: int = 0
    redialled: int = 0
    reconciled_found: int = 0
    reconciled_missing: int = 0
    create_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    #: call ends applied, by where they were learnt: ``"create"`` (the create or lookup
    #: answer), ``"poll"`` (list-calls) or ``"webhook"``
    ends_via: dict[str, int] = field(default_factory=dict)


class Runner:
    def __init__(
        self,
        client: AsyncRetell,
        journal: Journal,
        campaign_id: str,
        options: DialOptions,
        gate: CapacityGate,
    ) -> None:
        self._client = client
        self._journal = journal
        self._campaign_id = campaign_id
        self._options = options
        self.gate = gate
        self.rows: dict[str, Row] = {}
        self._by_call: dict[str, str] = {}
        self._queue: list[tuple[float, int, str]] = []
        self._tries: dict[str, int] = {}
        self._in_flight = 0
        self._next_slot = 0.0
        self._changed = asyncio.Event()
        self.stats = Stats()
        #: the Watcher (or webhook follower) told about each created call
        self.follow: list[Callable[[str], None]] = []
        #: told about each followed call once its end has been applied
        self.unfollow: list[Callable[[str], None]] = []

    # -- setup -------------------------------------------------------------------------

    def load(self) -> list[Row]:
        """Read the journal; returns the ``dispatching`` rows, which need reconciling."""
        unknown: list[Row] = []
        for row in self._journal.rows():
            self.rows[row.ref] = row
            if row.state == j.PENDING:
                self._push(row)
            elif row.state == j.CREATED and row.call_id is not None:
                self._by_call[row.call_id] = row.ref
                self.gate.adopt(1)
            elif row.state == j.DISPATCHING:
                unknown.append(row)
        self.stats.total = sum(1 for r in self.rows.values() if r.state != j.REJECTED)
        self.stats.placed = sum(
            1 for r in self.rows.values() if r.call_id is not None or r.state == j.ENDED
        )
        self.stats.ended = sum(1 for r in self.rows.values() if r.state == j.ENDED)
        self.stats.failed = sum(1 for r in self.rows.values() if r.state == j.FAILED)
        return unknown

    def created_calls(self) -> list[str]:
        return list(self._by_call)

    async def reconcile(self, rows: list[Row]) -> None:
        """Settle rows left ``dispatching`` by an earlier run: created if found, else pending."""

        async def look(row: Row) -> None:
            call = await find_call(self._client, self._campaign_id, row.ref, row.attempt)
            if call is None:
                self.stats.reconciled_missing += 1
                self._journal.transition(row, j.PENDING)
                self._push(row)
                return
            self.stats.reconciled_found += 1
            self.stats.placed += 1
            self._journal.transition(row, j.CREATED, call_id=call.call_id)
            self._by_call[call.call_id] = row.ref
            self.gate.adopt(1)
            self._tell_followers(call.call_id)
            end = call_end(call)
            if end is not None:
                self.on_end(end, via="create")

        async with fan_out(look, rows, concurrency=self._options.concurrency) as outcomes:
            async for outcome in outcomes:
                if outcome.error is not None:
                    raise outcome.error

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Dial until every row is terminal, or ``stop`` is set and the creates in flight end."""
        async with fan_out(
            self._place, self._eligible(stop), concurrency=self._options.concurrency
        ) as outcomes:
            async for outcome in outcomes:
                if outcome.error is not None:
                    raise outcome.error

    def _push(self, row: Row) -> None:
        heapq.heappush(self._queue, (row.not_before, row.line, row.ref))
        self._changed.set()

    @property
    def done(self) -> bool:
        return not self._queue and not self._by_call and not self._in_flight

    @property
    def only_open_calls(self) -> bool:
        """Nothing left to dial or create: the run waits only for created calls to end."""
        return not self._queue and not self._in_flight and bool(self._by_call)

    async def _eligible(self, stop: asyncio.Event) -> AsyncIterator[Row]:
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set() and not self.done:
                now = time.time()
                if self._queue and self._queue[0][0] <= now:
                    if not await self._first(self.gate.acquire(), stopping):
                        return
                    if not self._queue or self._queue[0][0] > time.time():
                        self.gate.release(confirmed=False)
                        continue
                    await self._space()
                    _, _, ref = heapq.heappop(self._queue)
                    row = self.rows[ref]
                    self._journal.transition(row, j.DISPATCHING)
                    self._in_flight += 1
                    yield row
                    continue
                self._changed.clear()
                timeout = self._queue[0][0] - now if self._queue else None
                waiting: asyncio.Future[Any] = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait(
                    [waiting, stopping], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                waiting.cancel()
        finally:
            stopping.cancel()

    async def _space(self) -> None:
        """Hand creates out at ``cps``, so a lead is claimed just before its create can go.

        The client's ``create_rate_limit`` paces them too (and pauses on a 429); spacing them
        here as well keeps rows from waiting in ``dispatching`` and keeps the measured create
        latency free of queueing.
        """
        if self._options.cps is None:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / self._options.cps
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _first(self, acquire: Awaitable[None], stopping: asyncio.Future[Any]) -> bool:
        """Wait for a gate slot unless a stop comes first; ``True`` when the slot is held."""
        task: asyncio.Future[None] = asyncio.ensure_future(acquire)
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
        if task.done() and not task.cancelled():
            if stopping.done():
                self.gate.release(confirmed=False)
                return False
            return True
        task.cancel()
        return False

    async def _place(self, row: Row) -> None:
        options = self._options
        key = idempotency_key(self._campaign_id, row.ref, row.attempt)
        started = time.perf_counter()
        try:
            assert row.to_number is not None
            call = await self._client.call.create_phone_call(
                from_number=options.from_number,
                to_number=row.to_number,
                override_agent_id=options.agent_id or UNSET,
                metadata=call_metadata(self._campaign_id, row.ref, row.attempt),
                retell_llm_dynamic_variables=row.variables or UNSET,
                idempotency_key=key,
            )
        except AmbiguousOutcomeError as exc:
            await self._settle_ambiguous(row, exc)
        except (RateLimitError, APIStatusError) as exc:
            status = getattr(exc, "status_code", 0)
            if isinstance(exc, RateLimitError) or status >= 500:
                self._retry_later(row, f"{status} {exc.message}")
            else:
                self._fail(row, f"create refused: {status} {exc.message}")
        except APIError as exc:
            self._retry_later(row, f"create failed before reaching Retell: {exc}")
        except ValueError as exc:
            self._fail(row, f"create refused: {exc}")
        else:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.stats.create_ms.append(elapsed_ms)
            self._created(row, call.call_id, elapsed_ms)
            end = call_end(call)
            if end is not None:
                self.on_end(end, via="create")
        finally:
            self._in_flight -= 1
            self._changed.set()

    # -- transitions -------------------------------------------------------------------

    def _created(self, row: Row, call_id: str, create_ms: float | None) -> None:
        self._journal.transition(row, j.CREATED, call_id=call_id, create_ms=create_ms)
        self.stats.placed += 1
        self.gate.confirm()
        self._by_call[call_id] = row.ref
        self._tell_followers(call_id)

    def _tell_followers(self, call_id: str) -> None:
        for hook in self.follow:
            hook(call_id)

    async def _settle_ambiguous(self, row: Row, exc: AmbiguousOutcomeError) -> None:
        try:
            call = await find_call(self._client, self._campaign_id, row.ref, row.attempt)
        except APIError as lookup_error:
            # Unknown either way: leave it dispatching; the next run looks it up again.
            logger.warning("%s: could not look up an ambiguous create: %s", row.ref, lookup_error)
            self.gate.release(confirmed=False)
            return
        if call is not None:
            self.stats.reconciled_found += 1
            self._created(row, call.call_id, None)
            end = call_end(call)
            if end is not None:
                self.on_end(end, via="create")
            return
        self.stats.reconciled_missing += 1
        # Same attempt, same idempotency key: a create that lands late is not repeated.
        self._retry_later(
            row,
            None,
            limit=self._options.max_ambiguous - 1,
            failure=f"no call was made: {exc.cause}",
        )

    def _retry_later(
        self, row: Row, reason: str | None, *, limit: int | None = None, failure: str | None = None
    ) -> None:
        """Back to pending after a backoff, or failed once ``limit`` retries were spent."""
        tries = self._tries.get(row.ref, 0) + 1
        self._tries[row.ref] = tries
        if tries > (self._options.max_requeues if limit is None else limit):
            self._fail(row, f"create failed {tries} times; {failure or reason}")
            return
        self.gate.release(confirmed=False)
        self._journal.transition(
            row, j.PENDING, reason=reason, not_before=time.time() + self._backoff(tries)
        )
        self._push(row)

    def _fail(self, row: Row, reason: str) -> None:
        self.gate.release(confirmed=False)
        self.stats.failed += 1
        self._journal.transition(row, j.FAILED, reason=reason)

    def _backoff(self, tries: int) -> float:
        base = min(self._options.backoff_cap_s, self._options.backoff_s * 2 ** (tries - 1))
        jitter: float = 0.5 + random.random() / 2
        return float(base) * jitter

    def on_end(self, end: CallEnd, via: str = "poll") -> bool:
        """A followed call ended: done, requeued, or redialled.

        ``True`` when the end was applied; ``False`` (nothing changed) for a call this run does
        not follow, or one whose end was already applied (a webhook and a poll both saw it, or
        a webhook was delivered twice).
        """
        ref = self._by_call.pop(end.call_id, None)
        if ref is None:
            return False
        self.stats.ends_via[via] = self.stats.ends_via.get(via, 0) + 1
        for hook in self.unfollow:
            hook(end.call_id)
        row = self.rows[ref]
        self.gate.release(confirmed=True)
        reason = end.disconnection_reason
        fields = {"call_status": end.call_status, "disconnection_reason": reason}
        options = self._options
        now = time.time()
        if reason in REQUEUE_REASONS and row.attempt <= options.max_requeues:
            self.stats.requeued += 1
            wait = self._backoff(row.attempt)
            self._journal.transition(
                row, j.PENDING, attempt=row.attempt + 1, not_before=now + wait, **fields
            )
            self._push(row)
        elif reason in REDIAL_REASONS and row.redials < options.redial:
            self.stats.redialled += 1
            self._journal.transition(
                row,
                j.PENDING,
                attempt=row.attempt + 1,
                redials=row.redials + 1,
                not_before=now + options.redial_delay_s,
                **fields,
            )
            self._push(row)
        else:
            self.stats.ended += 1
            self._journal.transition(row, j.ENDED, **fields)
        self._changed.set()
        return True
