"""The dispatch loop: every pending lead dialled once, within the capacity allowed.

A lead is claimed from the journal (durably moved to ``dispatching``) only once a capacity slot
is free, then its create runs in :func:`~aioretell.fan_out.fan_out`, at most ``concurrency`` at a
time. The pace of the creates is the client's alone (``create_rate_limit``, adaptive on 429s).
A create whose outcome is unknown (ambiguous failure, unreadable 2xx, or a row an earlier run
left ``dispatching``) is looked up by its metadata until found, or until ``lookup_grace_s``
after its dispatch (list-calls can lag behind a create); only then is it sent again, with the
same idempotency key. Call ends come back from the :class:`~aioretell.dial.watch.Watcher` (or
webhooks) and decide between done, requeue and redial.

A refusal that is about the account, not the lead (401, 402, 403, 404, or every create refused
before any succeeded), stops the run with :class:`~aioretell.dial.errors.AccountError` and
leaves the leads pending.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
from msgspec import UNSET

from .._client import AsyncRetell
from .._exceptions import (
    AmbiguousOutcomeError,
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ..fan_out import fan_out
from ..redis_pacer import PacerUnavailableError
from . import journal as j
from .capacity import CapacityGate
from .errors import AccountError, CampaignError
from .journal import Journal, Row
from .reconcile import call_id_from_body, call_metadata, find_call, idempotency_key
from .watch import CallEnd, call_end

#: Ends that mean the call never got a line: tried again after a backoff, a bounded number of
#: times.
REQUEUE_REASONS = frozenset({"concurrency_limit_reached", "no_concurrency_fallback"})
#: Ends tried again only when ``--redial N`` asks for it.
REDIAL_REASONS = frozenset({"dial_busy", "dial_no_answer"})
#: Statuses of a create that are about the account (key, payment, permission, unknown number
#: or agent), never about one lead.
ACCOUNT_STATUSES = frozenset({401, 402, 403, 404})
#: Seconds a create that may have placed a call is looked for before it is taken not to exist.
LOOKUP_GRACE_S = 60.0
#: Leads refused (400/422) before any create of the campaign succeeded, after which the
#: refusal is taken to be about the account (its number or agent) and the run stops.
REFUSED_BEFORE_PROOF = 5


@dataclass(frozen=True, slots=True)
class DialOptions:
    from_number: str
    agent_id: str | None = None
    #: jobs in flight: creates and lookups
    concurrency: int = 20
    redial: int = 0
    redial_delay_s: float = 60.0
    #: new calls after a capacity end (``concurrency_limit_reached`` ...), kept per row
    max_requeues: int = 5
    #: creates sent again after a failure that placed nothing, kept per row
    max_retries: int = 5
    #: first wait after a capacity end or a failed create, doubled each time, capped
    backoff_s: float = 2.0
    backoff_cap_s: float = 60.0
    #: how long after its dispatch a create that may have been placed is looked for before it
    #: is concluded not to exist (list-calls indexes new calls with a delay)
    lookup_grace_s: float = LOOKUP_GRACE_S
    #: wait between two lookups of one such create
    lookup_every_s: float = 5.0


@dataclass
class Stats:
    total: int = 0
    placed: int = 0
    ended: int = 0
    failed: int = 0
    requeued: int = 0
    redialled: int = 0
    #: creates released to be sent again, this run
    retries: int = 0
    reconciled_found: int = 0
    reconciled_missing: int = 0
    create_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    #: call ends applied, by where they were learnt: ``"create"`` (the create or lookup
    #: answer), ``"poll"`` (list-calls) or ``"webhook"``
    ends_via: dict[str, int] = field(default_factory=dict)
    #: failed requests this run (creates, lookups, polls), and the latest one
    errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None

    def note_error(self, where: str, error: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{where}: {error}"
        self.last_error_at = time.monotonic()


class Runner:
    def __init__(
        self,
        client: AsyncRetell,
        journal: Journal,
        campaign_id: str,
        options: DialOptions,
        gate: CapacityGate,
        *,
        stats: Stats | None = None,
    ) -> None:
        self._client = client
        self._journal = journal
        self._campaign_id = campaign_id
        self._options = options
        self.gate = gate
        #: rows of created calls not seen ended yet, by call id
        self._open: dict[str, Row] = {}
        #: rows an earlier run left ``dispatching``, to look up first
        self._unknown: list[Row] = []
        #: creates in flight plus rows being looked up
        self._in_flight = 0
        self._changed = asyncio.Event()
        #: the run's task group, which owns the lookups (they must not hold a create slot
        #: through a grace period)
        self._group: anyio.abc.TaskGroup | None = None
        self._lookups = anyio.Semaphore(options.concurrency)
        #: rows whose create may have placed a call, being looked up
        self.looking_up = 0
        self._failure: Exception | None = None
        self._stop = asyncio.Event()
        self._halt: CampaignError | None = None
        #: a create of this campaign succeeded: the number and agent are good
        self._proven = False
        self._refused: set[str] = set()
        #: creates not sent (connection failures) in a row, and the pause they impose
        self._outage = 0
        self._paused_until = 0.0
        self.stats = stats if stats is not None else Stats()
        #: the Watcher (or webhook follower) told about each created call
        self.follow: list[Callable[[str], Awaitable[None]]] = []
        #: told about each followed call once its end has been applied
        self.unfollow: list[Callable[[str], None]] = []

    # -- setup -------------------------------------------------------------------------

    async def load(self) -> int:
        """Read the journal; returns how many rows need looking up (left ``dispatching``)."""
        rows = await self._journal.rows()
        for row in rows:
            if row.state == j.CREATED and row.call_id is not None:
                self._open[row.call_id] = row
                self.gate.adopt(1)
            elif row.state == j.DISPATCHING:
                self._unknown.append(row)
                self.gate.hold()
        self.stats.total = sum(1 for r in rows if r.state != j.REJECTED)
        self.stats.placed = sum(1 for r in rows if r.call_id is not None or r.state == j.ENDED)
        self.stats.ended = sum(1 for r in rows if r.state == j.ENDED)
        self.stats.failed = sum(1 for r in rows if r.state == j.FAILED)
        self._proven = self.stats.placed > 0
        return len(self._unknown)

    def created_calls(self) -> list[str]:
        return list(self._open)

    def open_row(self, call_id: str) -> Row | None:
        return self._open.get(call_id)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def only_open_calls(self) -> bool:
        """Nothing is being created or looked up: the run waits for created calls to end
        (or for requeued rows to come due)."""
        return not self._in_flight and bool(self._open)

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Dial until every row is terminal, or ``stop`` is set and the jobs in flight end.

        Raises :class:`AccountError` (after the jobs in flight end) when Retell refused the
        account; the rows not dialled stay pending.
        """
        self._stop = stop
        async with anyio.create_task_group() as group:
            self._group = group
            for row in self._unknown:
                self._settle_later(row)
            self._unknown.clear()
            try:
                async with fan_out(
                    self._place_job, self._claims(stop), concurrency=self._options.concurrency
                ) as outcomes:
                    async for outcome in outcomes:
                        if outcome.error is not None:
                            raise outcome.error
            except Exception as exc:  # noqa: BLE001 - raised below, outside the task group
                self._fail_run(exc)
            # The lookups still running end on their own (or at the stop).
        self._group = None
        if self._failure is not None:
            raise self._failure
        if self._halt is not None:
            raise self._halt

    @property
    def _stopping(self) -> bool:
        """Stop asked for, or the account refused: lookups leave their rows to the next run."""
        return self._stop.is_set() or self._halt is not None

    def _fail_run(self, error: Exception) -> None:
        """A job raised: the run ends with the first such error, its other jobs cancelled."""
        if self._failure is None:
            self._failure = error
        if self._group is not None:
            self._group.cancel_scope.cancel()

    async def _claims(self, stop: asyncio.Event) -> AsyncIterator[Row]:
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set() and self._halt is None:
                pause = self._paused_until - time.monotonic()
                if pause > 0:
                    await self._wait(stopping, pause)
                    continue
                due = await self._journal.next_due()
                if due is None:
                    if not self._open and not self._in_flight:
                        return  # every row is terminal
                    await self._wait(stopping, None)
                    continue
                if due > time.time():
                    await self._wait(stopping, due - time.time())
                    continue
                if not await self._first(self.gate.acquire(), stopping):
                    return
                if self._halt is not None:
                    self.gate.release(confirmed=False)
                    return
                row = await self._journal.claim(time.time())
                if row is None:
                    self.gate.release(confirmed=False)
                    continue
                self._in_flight += 1
                yield row
        finally:
            stopping.cancel()

    async def _wait(self, stopping: asyncio.Future[Any], at_most: float | None) -> None:
        """Until something changed, ``stopping`` resolved, or ``at_most`` seconds."""
        self._changed.clear()
        waiting: asyncio.Future[Any] = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait(
                [waiting, stopping], timeout=at_most, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiting.cancel()

    async def _first(self, acquire: Awaitable[None], stopping: asyncio.Future[Any]) -> bool:
        """Wait for a gate slot unless a stop comes first; ``True`` when the slot is held."""
        task: asyncio.Future[None] = asyncio.ensure_future(acquire)
        try:
            await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            if stopping.done():
                self.gate.release(confirmed=False)
                return False
            return True
        return False

    async def _place_job(self, row: Row) -> None:
        try:
            await self._place(row)
        finally:
            self._in_flight -= 1
            self._changed.set()

    def _settle_later(self, row: Row) -> None:
        """Look ``row`` up in a task of its own (its gate slot held), freeing the create slot."""
        assert self._group is not None
        self._in_flight += 1
        self.looking_up += 1

        async def settle() -> None:
            try:
                await self._settle(row)
            except Exception as exc:  # noqa: BLE001 - ends the run, see run()
                self._fail_run(exc)
            finally:
                self._in_flight -= 1
                self.looking_up -= 1
                self._changed.set()

        self._group.start_soon(settle, name=f"dial: look up {row.ref}")

    async def _place(self, row: Row) -> None:
        options = self._options
        started = time.perf_counter()
        try:
            assert row.to_number is not None
            call = await self._client.call.create_phone_call(
                from_number=options.from_number,
                to_number=row.to_number,
                override_agent_id=options.agent_id or UNSET,
                metadata=call_metadata(self._campaign_id, row.ref, row.attempt),
                retell_llm_dynamic_variables=row.variables or UNSET,
                idempotency_key=idempotency_key(self._campaign_id, row.ref, row.attempt),
            )
        except AmbiguousOutcomeError as exc:
            self.stats.note_error("create", exc.cause)
            self._settle_later(row)
        except APIResponseValidationError as exc:
            # A 2xx: the call was placed, only its answer could not be read.
            self.stats.note_error("create answered unreadably", exc)
            call_id = call_id_from_body(exc.body)
            if call_id is not None:
                await self._created(row, call_id, None)
            else:
                await self._journal.mark_placed(row)
                self._settle_later(row)
        except APIStatusError as exc:
            self.stats.note_error("create", exc)
            await self._refused_create(row, exc)
        except (APIConnectionError, PacerUnavailableError) as exc:
            # Never sent (a create that may have been sent is ambiguous), or held back by a
            # shared pacer that cannot be reached (--redis): the client already retried; pause
            # every create for a while rather than hammer a dead endpoint.
            self.stats.note_error("create", exc)
            self._outage += 1
            self._paused_until = time.monotonic() + self._backoff(self._outage)
            await self._give_back(row, f"create not sent: {exc}", retry=False)
        except APIError as exc:
            self.stats.note_error("create", exc)
            await self._give_back(row, f"create failed: {exc}", retry=True)
        except (ValueError, TypeError) as exc:
            await self._refused_lead(row, f"refused before sending: {exc}")
        else:
            self._proven = True
            self._outage = 0
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.stats.create_ms.append(elapsed_ms)
            await self._created(row, call.call_id, elapsed_ms)
            end = call_end(call)
            if end is not None:
                await self.on_end(end, via="create")

    async def _refused_create(self, row: Row, exc: APIStatusError) -> None:
        status, what = exc.status_code, f"{exc.status_code} {exc.message}"
        if isinstance(exc, RateLimitError):
            await self._give_back(row, f"create rate-limited: {what}", retry=False)
        elif isinstance(exc, (AuthenticationError, PermissionDeniedError)):
            await self._give_back(row, f"create refused: {what}", retry=False)
            self._stop_run(AccountError(f"Retell refused the API key ({what})"))
        elif status in ACCOUNT_STATUSES or isinstance(exc, NotFoundError):
            await self._give_back(row, f"create refused: {what}", retry=False)
            self._stop_run(
                AccountError(
                    f"Retell refused to place calls for this account ({what}); check "
                    f"{self._check_hint()}"
                )
            )
        elif 400 <= status < 500:
            await self._refused_lead(row, what)
        else:
            # The client turns 5xx on a create into AmbiguousOutcomeError; any other status
            # (a redirect) may have been acted on as well: look it up.
            self._settle_later(row)

    async def _refused_lead(self, row: Row, what: str) -> None:
        """A create refused in a way that may be about the lead (400, 422, a value the client
        would not send). Before any create of the campaign succeeded it may as well be about
        the number or agent, so the lead is not blamed yet: it goes back, to be tried once the
        account is proven, and enough such refusals stop the run."""
        if self._proven:
            await self._fail(row, f"create refused: {what}")
            return
        self._refused.add(row.ref)
        await self._give_back(row, f"create refused: {what}", retry=False)
        left = self.stats.total - self.stats.ended - self.stats.failed
        if len(self._refused) >= min(REFUSED_BEFORE_PROOF, max(1, left)):
            self._stop_run(
                AccountError(
                    f"every create was refused ({len(self._refused)} leads, none placed; "
                    f"last: {what}); check {self._check_hint()}"
                )
            )

    def _check_hint(self) -> str:
        hint = f"--from-number {self._options.from_number} (a number of this account)"
        if self._options.agent_id:
            hint += f" and --agent-id {self._options.agent_id}"
        return hint

    def _stop_run(self, error: CampaignError) -> None:
        if self._halt is None:
            self._halt = error
        self._changed.set()

    async def _settle(self, row: Row) -> None:
        """A create that may have placed a call (its gate slot held): created if a lookup by
        metadata finds it; sent again (same key) once ``lookup_grace_s`` has passed since its
        dispatch without it being found; never sent again if it was answered 2xx."""
        options = self._options
        while True:
            try:
                async with self._lookups:
                    call = await find_call(self._client, self._campaign_id, row.ref, row.attempt)
            except (AuthenticationError, PermissionDeniedError) as exc:
                self._stop_run(AccountError(f"Retell refused the API key ({exc})"))
                return  # left dispatching: the next run looks it up
            except (APIError, PacerUnavailableError) as exc:
                self.stats.note_error("lookup", exc)
                if self._stopping:
                    return
                await asyncio.sleep(options.lookup_every_s)
                continue
            if call is not None:
                self.stats.reconciled_found += 1
                await self._created(row, call.call_id, None)
                end = call_end(call)
                if end is not None:
                    await self.on_end(end, via="create")
                return
            waited = time.time() - (row.dispatched_at or 0.0)
            if waited >= options.lookup_grace_s:
                break
            if self._stopping:
                return  # left dispatching: the next run looks it up
            await asyncio.sleep(min(options.lookup_every_s, options.lookup_grace_s - waited))
        self.stats.reconciled_missing += 1
        if row.placed:
            await self._fail(
                row,
                "the create answered 2xx but unreadably and list-calls never showed the call; "
                "not dialled again",
            )
            return
        # Same attempt, same idempotency key: a create that lands late is not repeated.
        await self._give_back(row, "no call found for a create that may have failed", retry=True)

    # -- transitions -------------------------------------------------------------------

    async def _created(self, row: Row, call_id: str, create_ms: float | None) -> None:
        await self._journal.mark_created(row, call_id, create_ms=create_ms)
        self.stats.placed += 1
        self.gate.confirm()
        self._open[call_id] = row
        for hook in self.follow:
            await hook(call_id)

    async def _give_back(self, row: Row, reason: str, *, retry: bool) -> None:
        """Back to pending with the same attempt after a backoff (``retry``: counted, and
        failed once ``max_retries`` are spent)."""
        self.gate.release(confirmed=False)
        if retry and row.retries >= self._options.max_retries:
            await self._fail(
                row, f"create failed {row.retries + 1} times; last: {reason}", release=False
            )
            return
        tries = row.retries + 1
        await self._journal.release(
            row, not_before=time.time() + self._backoff(tries), reason=reason, retry=retry
        )
        self.stats.retries += 1
        self._changed.set()

    async def _fail(self, row: Row, reason: str, *, release: bool = True) -> None:
        if release:
            self.gate.release(confirmed=False)
        self.stats.failed += 1
        await self._journal.mark_failed(row, reason)

    def _backoff(self, tries: int) -> float:
        base = min(self._options.backoff_cap_s, self._options.backoff_s * 2 ** (tries - 1))
        jitter: float = 0.5 + random.random() / 2
        return float(base) * jitter

    async def on_end(self, end: CallEnd, via: str = "poll") -> bool:
        """A followed call ended: done, requeued, or redialled.

        ``True`` when the end was applied; ``False`` (nothing changed) for a call this run does
        not follow, or one whose end was already applied (a webhook and a poll both saw it, or
        a webhook was delivered twice).
        """
        row = self._open.pop(end.call_id, None)
        if row is None:
            return False
        for hook in self.unfollow:
            hook(end.call_id)
        self.gate.release(confirmed=True)
        await self._apply_end(row, end, via)
        return True

    async def _apply_end(self, row: Row, end: CallEnd, via: str) -> None:
        """Record the end of ``row``'s call: done, or pending again (requeue, redial)."""
        reason = end.disconnection_reason
        options = self._options
        now = time.time()
        if reason in REQUEUE_REASONS and row.requeues < options.max_requeues:
            self.stats.requeued += 1
            await self._journal.requeue(
                row,
                not_before=now + self._backoff(row.requeues + 1),
                call_status=end.call_status,
                disconnection_reason=reason,
                redial=False,
            )
        elif reason in REDIAL_REASONS and row.redials < options.redial:
            self.stats.redialled += 1
            await self._journal.requeue(
                row,
                not_before=now + options.redial_delay_s,
                call_status=end.call_status,
                disconnection_reason=reason,
                redial=True,
            )
        else:
            self.stats.ended += 1
            await self._journal.mark_ended(
                row, call_status=end.call_status, disconnection_reason=reason
            )
        self.stats.ends_via[via] = self.stats.ends_via.get(via, 0) + 1
        self._changed.set()
