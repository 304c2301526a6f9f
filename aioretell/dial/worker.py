"""One worker of a campaign shared by many dialers (a PostgreSQL journal).

Every worker claims leads through the journal's admission transaction
(:meth:`~aioretell.dial.journal_postgres.PostgresJournal.admit`: the account's 429 pause, its
calls-per-second and its live calls, shared by all), creates their calls exactly as the
single dialer does (:class:`~aioretell.dial.runner.Runner`: idempotency key, metadata, lookups
of ambiguous creates) and records each result only while its claim token still matches.

One worker at a time is also the *leader* (the campaign's session advisory lock): it reads
get-concurrency for everyone, follows every created call of the campaign to its end (one
list-calls poll for all of them; webhooks received by any worker started with ``--listen``
apply ends too), and reconciles the claims whose lease expired (a worker killed or frozen): it
takes them over with a new token, looks each call up by its metadata after the grace period,
and sends it again only with the same idempotency key. When the leader dies its session ends
and another worker takes over within a few seconds; when it freezes, the server ends its
session after ``lease_ttl_s``.

A worker runs until every lead of the campaign is final, or until it is stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio

from .._client import AsyncRetell
from .._exceptions import APIError, AuthenticationError, PermissionDeniedError
from .._operation import Operation
from .._pacing import DEFAULT_PAUSE_S, Pacing
from .._sansio import parse_retry_after
from ..redis_pacer import PacerUnavailableError
from . import journal as j
from .campaign import HEARTBEAT_S, LEASE_TTL_S, Sidecar, owned, preflight
from .capacity import CapacityGate
from .errors import AccountError
from .journal import ClaimLostError, Row, TransitionError, Wait
from .journal_postgres import LeadershipLostError, PostgresJournal
from .listen import WebhookFollower
from .runner import DialOptions, Runner, Stats
from .watch import CallEnd, Watcher

#: Longest sleep between two admissions (a refusal's wait is honoured up to this).
MAX_WAIT_S = 5.0
#: How often a worker that does not lead tries to take the lead.
LEADER_RETRY_S = 0.5
#: Seconds a frozen leader keeps the lead: until then nobody reads get-concurrency or learns
#: that calls ended, so the campaign's slots stay taken. Short, and apart from the claims'
#: lease (a leader wrongly deposed only takes the lead again).
LEADER_IDLE_S = 2.0
#: A worker refused for concurrency takes a get-concurrency reading itself when the latest
#: one is older than this many of the leader's reading intervals (the leader is frozen or
#: gone, and the calls that ended since still hold their slots); at most that often.
STAND_IN_AFTER = 3


async def take_reading(
    client: AsyncRetell,
    journal: PostgresJournal,
    stats: Stats,
    requested_at: float | None = None,
) -> bool:
    """Read get-concurrency and store it for the admission; ``False`` when the request
    failed (noted in ``stats``). A refused key raises :class:`AccountError`.

    ``requested_at``: the database clock just read (:meth:`PostgresJournal.reading_due`),
    else read here. Taken before the request, so our calls recorded created before it are in
    the answer and the admission may free their slots by it (``record_reading``).
    """
    if requested_at is None:
        requested_at = await journal.clock()
    try:
        found = await client.concurrency.retrieve()
    except (AuthenticationError, PermissionDeniedError) as exc:
        raise AccountError(f"Retell refused the API key ({exc})") from None
    except (APIError, PacerUnavailableError) as exc:
        stats.note_error("get-concurrency", exc)
        return False
    await journal.record_reading(
        concurrency_limit=found.concurrency_limit,
        reserved_inbound=found.reserved_inbound_concurrency or 0,
        current=found.current_concurrency or 0,
        requested_at=requested_at,
    )
    return True


class SharedPause:
    """The 429s this worker's client received, to be shared with every worker at its next
    admission (the journal pushes the account's pause to at least that long)."""

    def __init__(self) -> None:
        self._pending = 0.0
        #: 429s seen by this worker
        self.seen = 0
        #: told at once, so a waiting worker shares the pause without delay
        self.wake: Callable[[], None] | None = None

    def report(self, seconds: float) -> None:
        self.seen += 1
        self._pending = max(self._pending, seconds)
        if self.wake is not None:
            self.wake()

    def take(self) -> float:
        pending, self._pending = self._pending, 0.0
        return pending


class ReportingPacer:
    """A client's pacer (in-process or Redis) that also reports each 429 to a
    :class:`SharedPause`: a 429 on any request of any worker pauses the whole campaign."""

    def __init__(self, inner: Pacing[Any], pause: SharedPause) -> None:
        self.inner = inner
        self.pause = pause

    @property
    def idle(self) -> bool:
        return self.inner.idle

    def on_unpaced_response(self, op: Operation, status: int, headers: Mapping[str, str]) -> None:
        self._report(status, headers)
        self.inner.on_unpaced_response(op, status, headers)

    def _report(self, status: int, headers: Mapping[str, str]) -> None:
        if status == 429:
            wait = parse_retry_after(headers, now=time.time)
            self.pause.report(DEFAULT_PAUSE_S if wait is None else wait)

    def try_reserve(self, op: Operation) -> Any:
        return self.inner.try_reserve(op)

    async def reserve(self, op: Operation) -> Any:
        return await self.inner.reserve(op)

    def on_response(
        self, op: Operation, turn: Any, status: int, headers: Mapping[str, str]
    ) -> None:
        self._report(status, headers)
        self.inner.on_response(op, turn, status, headers)

    def release(self, op: Operation, turn: Any, *, sent: bool) -> None:
        self.inner.release(op, turn, sent=sent)

    def set_time(
        self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        self.inner.set_time(clock, sleep)


class SharedRunner(Runner):
    """The dispatch loop of one worker: :class:`Runner` with the admission, the open calls
    and the campaign's counts kept in the shared journal instead of this process."""

    def __init__(
        self,
        client: AsyncRetell,
        journal: PostgresJournal,
        campaign_id: str,
        options: DialOptions,
        *,
        cps: float | None,
        recheck_s: float,
        pause: SharedPause | None = None,
        stats: Stats | None = None,
        stand_in_after_s: float | None = None,
    ) -> None:
        # The gate only counts, for the live view: the journal decides what may be created.
        super().__init__(client, journal, campaign_id, options, CapacityGate(None), stats=stats)
        self.shared = journal
        self._cps = cps
        self._recheck_s = recheck_s
        self.pause = pause if pause is not None else SharedPause()
        self.pause.wake = self._changed.set
        #: why the latest admission said wait (``None`` after a claim)
        self.waiting: str | None = None
        #: rows another worker (or the reconciler) took while this one worked on them
        self.lost = 0
        #: leading now, and how many times this worker took the lead
        self.leading = False
        self.took_lead = 0
        #: take a reading when refused for concurrency and the latest is older than this
        #: (``None``: never); and how many this worker took so
        self._stand_in_after_s = stand_in_after_s
        self._stood_in_at = 0.0
        self.stood_in = 0

    async def load(self) -> int:
        await self.refresh()
        self._proven = self.stats.placed > 0
        return 0

    async def refresh(self) -> None:
        """The campaign's counts (every worker's), for the live view."""
        counts = await self.shared.counts()
        stats = self.stats
        stats.total = sum(n for state, n in counts.items() if state != j.REJECTED)
        stats.ended = counts.get(j.ENDED, 0)
        stats.failed = counts.get(j.FAILED, 0)
        stats.placed = counts.get(j.CREATED, 0) + counts.get(j.ENDED, 0)
        self.gate.created_live = counts.get(j.CREATED, 0)
        self.gate.live = counts.get(j.CREATED, 0) + counts.get(j.DISPATCHING, 0)

    async def _claims(self, stop: asyncio.Event) -> AsyncIterator[Row]:
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        refreshed = 0.0
        try:
            while not stop.is_set() and self._halt is None:
                pause = self._paused_until - time.monotonic()
                if pause > 0:
                    await self._wait(stopping, pause)
                    continue
                if time.monotonic() - refreshed > 1.0:
                    await self.refresh()
                    refreshed = time.monotonic()
                got = await self.shared.admit(
                    time.time(),
                    cps=self._cps,
                    cap=self._options.concurrency,
                    recheck_s=self._recheck_s,
                    pause_s=self.pause.take(),
                )
                if isinstance(got, Row):
                    self.waiting = None
                    self.gate.hold()
                    self._in_flight += 1
                    yield got
                elif isinstance(got, Wait):
                    self.waiting = got.why
                    if got.why == "concurrency" and await self._stand_in():
                        continue  # a fresh reading may have freed slots: ask again now
                    await self._wait(stopping, min(max(got.seconds, 0.001), MAX_WAIT_S))
                else:
                    if not self._in_flight and await self.shared.finished():
                        return  # every lead of the campaign is final
                    self.waiting = "calls of the campaign to end"
                    await self._wait(stopping, self._recheck_s)
        finally:
            stopping.cancel()

    async def _place(self, row: Row) -> None:
        try:
            await super()._place(row)
        except ClaimLostError:
            self.lost += 1

    async def _settle(self, row: Row) -> None:
        try:
            await super()._settle(row)
        except ClaimLostError:
            self.lost += 1

    async def _created(self, row: Row, call_id: str, create_ms: float | None) -> None:
        await self._journal.mark_created(row, call_id, create_ms=create_ms)
        self.stats.placed += 1
        # From now on the journal counts the call (the leader follows it to its end).
        self.gate.release(confirmed=False)
        for hook in self.follow:
            await hook(call_id)

    async def on_end(self, end: CallEnd, via: str = "poll") -> bool:
        """A call of the campaign ended (whoever created it): applied once, by whichever
        worker learns it first."""
        row = await self.shared.by_call_id(end.call_id)
        if row is None or row.state != j.CREATED:
            return False
        try:
            await self._apply_end(row, end, via)
        except TransitionError:
            return False  # another worker applied it first
        return True

    async def _stand_in(self) -> bool:
        """Take the reading a stalled leader did not (see :data:`STAND_IN_AFTER`); whether
        one was stored."""
        after = self._stand_in_after_s
        if after is None or self.leading or time.monotonic() - self._stood_in_at < after:
            return False
        self._stood_in_at = time.monotonic()
        requested_at = await self.shared.reading_due(after)
        if requested_at is None:
            return False
        self.stood_in += 1
        return await take_reading(self._client, self.shared, self.stats, requested_at)

    def wake(self) -> None:
        """Ask for an admission now rather than at the next recheck: a get-concurrency
        reading was recorded, and may have freed slots."""
        self._changed.set()

    def adopt(self, row: Row) -> bool:
        """Look up ``row`` (an expired claim this worker took over) in the run's task group;
        ``False`` before the run has started."""
        if self._group is None:
            return False
        self.gate.hold()
        self._settle_later(row)
        return True

    @property
    def running(self) -> bool:
        return self._group is not None


async def lead(
    client: AsyncRetell,
    journal: PostgresJournal,
    runner: SharedRunner,
    watcher: Watcher,
    *,
    poll_interval: float,
    follow_every: float,
    lease_ttl_s: float,
    notify: Callable[[str], None] | None = None,
) -> None:
    """Take the lead whenever nobody holds it, and lead while this worker holds it. Runs
    until cancelled; a database failure or a refused key raises."""
    idle_s = min(lease_ttl_s, LEADER_IDLE_S)
    lock = journal.leader_lock(idle_s=idle_s)
    try:
        while True:
            if not await lock.try_acquire():
                await asyncio.sleep(LEADER_RETRY_S)
                continue
            runner.leading = True
            runner.took_lead += 1
            if notify is not None:
                notify(
                    f"Worker {journal.worker_id} leads the campaign: it reads get-concurrency, "
                    "follows every call to its end and reconciles expired claims"
                )
            try:
                await _leading(
                    client,
                    journal,
                    runner,
                    watcher,
                    lock.hold,
                    poll_interval=poll_interval,
                    follow_every=follow_every,
                    hold_every=idle_s / 4,
                    notify=notify,
                )
            except LeadershipLostError as exc:
                # Frozen past the timeout or disconnected: whoever leads now, leads.
                if notify is not None:
                    notify(f"Worker {journal.worker_id} no longer leads: {exc}")
            finally:
                runner.leading = False
    finally:
        # Cancelled with the run: clear the leader's name; closing the session frees the lock.
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await lock.release()


async def _leading(
    client: AsyncRetell,
    journal: PostgresJournal,
    runner: SharedRunner,
    watcher: Watcher,
    hold: Callable[[], Awaitable[None]],
    *,
    poll_interval: float,
    follow_every: float,
    hold_every: float,
    notify: Callable[[str], None] | None,
) -> None:
    """The leader's work, each part at its own pace so that a slow one delays no other: keep
    the lock's session alive, read get-concurrency (the admission's count of the account's
    live calls), follow the open calls to their end, take over expired claims. Returns only
    by raising: the first part to fail ends the others."""
    stats = runner.stats

    async def reading() -> None:
        if await take_reading(client, journal, stats):
            runner.wake()

    async def follow() -> None:
        watcher.watch_only(await journal.open_call_ids())
        if watcher.watching:
            try:
                await watcher.poll_once()
            except AccountError:
                raise
            except (APIError, PacerUnavailableError) as exc:
                watcher.failed(exc)

    async def reconcile() -> None:
        if not runner.running:
            return
        taken = await journal.expired_claims()
        for row in taken:
            runner.adopt(row)
        if taken and notify is not None:
            notify(
                f"Took over {len(taken)} expired claims of stopped workers "
                f"({', '.join(row.ref for row in taken[:10])}"
                f"{', ...' if len(taken) > 10 else ''}): looking their calls up"
            )

    await owned(
        lambda: _every(hold_every, hold),
        {
            "get-concurrency reading": lambda: _every(poll_interval, reading),
            "call ends": lambda: _every(follow_every, follow),
            "expired claims": lambda: _every(poll_interval, reconcile),
        },
    )


async def _every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
    """Run ``job`` every ``seconds`` (from the start of one run to the next; at once again
    when a run took longer), until it raises."""
    while True:
        started = time.monotonic()
        await job()
        await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))


async def run_worker(
    client: AsyncRetell,
    journal: PostgresJournal,
    campaign_id: str,
    options: DialOptions,
    *,
    cps: float | None,
    stop: asyncio.Event | None = None,
    poll_interval: float = 1.0,
    sidecar: Sidecar | None = None,
    follower: WebhookFollower | None = None,
    reconcile_interval: float = 30.0,
    watchers: list[Watcher] | None = None,
    check_first: bool = True,
    lease_ttl_s: float = LEASE_TTL_S,
    heartbeat_s: float = HEARTBEAT_S,
    pause: SharedPause | None = None,
    notify: Callable[[str], None] | None = None,
) -> SharedRunner:
    """Work on the campaign until every lead is final or ``stop`` is set; returns the runner.

    The journal must hold this worker's lease (:meth:`PostgresJournal.acquire_lease`). Call
    ends come from the leader's list-calls polls every ``poll_interval`` seconds, or, with a
    started ``follower``, from its webhooks with polls every ``reconcile_interval`` as the
    safety net. Raises :class:`~aioretell.dial.errors.CampaignError` or
    :class:`~aioretell.dial.journal.JournalError` (the database failed, the lease was lost).
    """
    first_reading = await preflight(client, options.agent_id) if check_first else None
    stats = Stats()
    runner = SharedRunner(
        client,
        journal,
        campaign_id,
        options,
        cps=cps,
        recheck_s=poll_interval,
        pause=pause,
        stats=stats,
        stand_in_after_s=STAND_IN_AFTER * poll_interval,
    )
    await runner.load()
    if first_reading is not None:
        await journal.record_reading(
            concurrency_limit=first_reading.concurrency_limit,
            reserved_inbound=first_reading.reserved_inbound_concurrency or 0,
            current=first_reading.current_concurrency or 0,
            ours_before=await journal.account_created(),
        )
    watcher = Watcher(
        client,
        campaign_id,
        runner.on_end,
        interval=poll_interval if follower is None else reconcile_interval,
        on_error=stats.note_error,
    )
    if watchers is not None:
        watchers.append(watcher)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(heartbeat_s)
            await journal.heartbeat()

    async def leader() -> None:
        await lead(
            client,
            journal,
            runner,
            watcher,
            poll_interval=poll_interval,
            follow_every=poll_interval if follower is None else reconcile_interval,
            lease_ttl_s=lease_ttl_s,
            notify=notify,
        )

    background: dict[str, Callable[[], Awaitable[None]]] = {
        "journal lease heartbeat": heartbeat,
        "campaign leader": leader,
    }
    if follower is not None:
        webhook_failed = asyncio.Event()

        async def from_webhook(end: CallEnd) -> bool:
            try:
                return await runner.on_end(end, via="webhook")
            except Exception:
                webhook_failed.set()  # raised in the receiver, where nobody owns it
                raise

        async def webhook_failures() -> None:
            await webhook_failed.wait()
            assert follower is not None and follower.failure is not None
            raise follower.failure

        follower.follow_all = True
        follower.attach(from_webhook)
        background["webhook receiver"] = webhook_failures
    if sidecar is not None:
        background["live view"] = lambda: sidecar(runner)

    try:
        await owned(lambda: runner.run(stop or asyncio.Event()), background)
    finally:
        if follower is not None:
            follower.attach(None)
    return runner
