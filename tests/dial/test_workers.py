"""Many workers on one PostgreSQL campaign, in this process: each worker its own journal
(connection pool, worker id) and its own client, all against one emulator.

What the emulator recorded decides: every lead dialled exactly once (``emu.state``), never a
create refused for concurrency (the emulator refuses one beyond its limit), creates spaced by
the shared ``--cps``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from aioretell import AsyncRetell
from aioretell._pacing import Pacer
from aioretell.dial import journal as j
from aioretell.dial.journal import CampaignInfo, ClaimLostError, Row
from aioretell.dial.journal_postgres import PostgresJournal
from aioretell.dial.leads import load_leads
from aioretell.dial.listen import WebhookFollower
from aioretell.dial.reconcile import call_metadata, idempotency_key
from aioretell.dial.runner import DialOptions
from aioretell.dial.worker import ReportingPacer, SharedPause, SharedRunner, run_worker
from aioretell.emulator import Emulator
from tests.services import namespace as namespace
from tests.services import redis_url as redis_url

from .conftest import API_KEY, CAMPAIGN, FROM, numbers, write_csv

NAME = "shared"


def info_for(csv: Path) -> CampaignInfo:
    leads = load_leads(csv)
    return CampaignInfo(CAMPAIGN, leads.sha256, csv.name, FROM, "", "test")


@pytest.fixture
async def workers(postgres_dsn: str) -> AsyncIterator[Callable[[str], Any]]:
    """``await make("w1")``: a worker's journal, lease held, closed after the test."""
    stack = AsyncExitStack()

    async def make(worker_id: str, ttl_s: float = 30.0) -> PostgresJournal:
        journal = PostgresJournal(postgres_dsn, campaign=NAME, worker_id=worker_id)
        stack.push_async_callback(journal.close)
        await journal.acquire_lease(ttl_s=ttl_s)
        return journal

    async with stack:
        yield make


async def work(
    emu: Emulator,
    journal: PostgresJournal,
    *,
    cps: float | None = None,
    stop: asyncio.Event | None = None,
    lease_ttl_s: float = 30.0,
    runners: list[SharedRunner] | None = None,
    follower: WebhookFollower | None = None,
    inner: Any = None,
    **options: Any,
) -> SharedRunner:
    """One worker's run, with a client of its own whose 429s pause the whole campaign
    (``inner``: its pacer, by default one of its own)."""
    pause = SharedPause()
    pacer = ReportingPacer(
        inner or Pacer(rate_limit=None, create_rate_limit=None, max_concurrency=None), pause
    )
    async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url, pacer=pacer) as client:
        run = run_worker(
            client,
            journal,
            CAMPAIGN,
            DialOptions(from_number=FROM, lookup_grace_s=0.0, lookup_every_s=0.05, **options),
            cps=cps,
            stop=stop,
            poll_interval=0.03,
            lease_ttl_s=lease_ttl_s,
            heartbeat_s=lease_ttl_s / 6,
            pause=pause,
            follower=follower,
            reconcile_interval=30.0,
            sidecar=(lambda runner: _keep(runners, runner)) if runners is not None else None,
        )
        return await asyncio.wait_for(run, timeout=60)  # a lead left unfinished fails the test


async def _keep(runners: list[SharedRunner] | None, runner: Any) -> None:
    assert runners is not None and isinstance(runner, SharedRunner)
    runners.append(runner)
    await asyncio.Event().wait()  # a sidecar lasts as long as the run


def most_live_at_once(emu: Emulator) -> int:
    """The most calls the emulator held live at one moment."""
    edges = []
    for call in emu.state.calls.values():
        if call.rejected_reason is None:
            edges += [(call.created_at, 1), (call.end_at, -1)]
    live = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        live += step
        peak = max(peak, live)
    return peak


def refused_for_concurrency(emu: Emulator) -> int:
    return sum(
        1
        for call in emu.state.calls.values()
        if call.rejected_reason == "concurrency_limit_reached"
    )


async def test_three_workers_dial_every_lead_once_within_the_limit(
    tmp_path: Path, make_emulator: Callable[..., Any], workers: Callable[[str], Any]
) -> None:
    wanted = numbers(40)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    emu = await make_emulator(concurrency_limit=4, call_duration_s=0.15)
    journals = [await workers(f"w{n}") for n in range(3)]
    leads = load_leads(csv)
    # Every worker loads the same CSV at the same moment: the leads are there once.
    opened = await asyncio.gather(*(jr.open_campaign(info_for(csv), leads) for jr in journals))
    assert sorted(o.new for o in opened) == [False, False, True]
    assert await journals[0].counts() == {j.PENDING: 40}

    runners = await asyncio.gather(*(work(emu, jr, concurrency=10) for jr in journals))

    assert Counter(emu.state.dialed_numbers()) == dict.fromkeys(wanted, 1)
    assert refused_for_concurrency(emu) == 0
    assert most_live_at_once(emu) <= 4
    assert await journals[0].counts() == {j.ENDED: 40}
    placed = [len(runner.stats.create_ms) for runner in runners]
    assert sum(placed) == 40
    status = await journals[0].status()
    assert status is not None
    assert {w.worker_id: w.placed for w in status.workers} == {f"w{n}": placed[n] for n in range(3)}


async def test_the_campaign_concurrency_cap_is_shared(
    tmp_path: Path, make_emulator: Callable[..., Any], workers: Callable[[str], Any]
) -> None:
    """--concurrency 2 on each of three workers: two live calls for the campaign, not six."""
    wanted = numbers(12)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    emu = await make_emulator(concurrency_limit=100, call_duration_s=0.1)
    journals = [await workers(f"w{n}") for n in range(3)]
    await journals[0].open_campaign(info_for(csv), load_leads(csv))
    await asyncio.gather(*(work(emu, jr, concurrency=2) for jr in journals))
    assert Counter(emu.state.dialed_numbers()) == dict.fromkeys(wanted, 1)
    assert most_live_at_once(emu) <= 2


async def test_creates_keep_to_the_shared_calls_per_second(
    tmp_path: Path, make_emulator: Callable[..., Any], workers: Callable[[str], Any]
) -> None:
    wanted = numbers(16)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    emu = await make_emulator(concurrency_limit=100, call_duration_s=0.05)
    journals = [await workers(f"w{n}") for n in range(3)]
    await journals[0].open_campaign(info_for(csv), load_leads(csv))
    await asyncio.gather(*(work(emu, jr, cps=20, concurrency=10) for jr in journals))
    assert Counter(emu.state.dialed_numbers()) == dict.fromkeys(wanted, 1)
    creates = sorted(call.created_at for call in emu.state.calls.values())
    # Admitted 50 ms apart on the database clock: 15 intervals at least, less one for the
    # trip from the admission to the emulator. (Three workers alone: about 5 intervals.)
    assert creates[-1] - creates[0] >= 14 * 0.05


async def test_a_429_pauses_every_worker(
    tmp_path: Path, make_emulator: Callable[..., Any], workers: Callable[[str], Any]
) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(2))
    one, two = await workers("w1"), await workers("w2")
    await one.open_campaign(info_for(csv), load_leads(csv))
    got = await one.admit(0.0, cps=None, cap=10, recheck_s=1.0, pause_s=30.0)
    assert isinstance(got, j.Wait) and got.why == "paused after a 429"
    seen = await two.admit(0.0, cps=None, cap=10, recheck_s=1.0)
    assert isinstance(seen, j.Wait) and seen.why == "paused after a 429"
    assert 29 < seen.seconds <= 30
    assert await two.counts() == {j.PENDING: 2}  # nothing claimed while paused


async def test_admission_refusals_say_how_long_to_wait(
    tmp_path: Path, workers: Callable[[str], Any]
) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(4))
    one, two = await workers("w1"), await workers("w2")
    await one.open_campaign(info_for(csv), load_leads(csv))
    first = await one.admit(0.0, cps=0.5, cap=10, recheck_s=1.0)
    assert isinstance(first, Row)
    paced = await two.admit(0.0, cps=0.5, cap=10, recheck_s=1.0)
    assert isinstance(paced, j.Wait) and paced.why == "calls per second"
    assert 1.5 < paced.seconds <= 2.0  # the next turn, 2 s after the first, on the db clock
    # The account allows 3 - 1 reserved - 1 other = 1 live call: the claimed one.
    await one.record_reading(concurrency_limit=3, reserved_inbound=1, current=1, ours_before=0)
    full = await two.admit(0.0, cps=None, cap=10, recheck_s=0.7)
    assert full == j.Wait(0.7, "concurrency")
    await one.record_reading(concurrency_limit=4, reserved_inbound=1, current=1, ours_before=0)
    second = await two.admit(0.0, cps=None, cap=10, recheck_s=0.7)
    assert isinstance(second, Row) and second.ref != first.ref
    assert await two.admit(0.0, cps=None, cap=2, recheck_s=0.7) == j.Wait(0.7, "concurrency")
    await one.release(first, not_before=50.0, reason="x", retry=False)
    await two.release(second, not_before=40.0, reason="x", retry=False)
    await one.record_reading(concurrency_limit=20, reserved_inbound=0, current=0, ours_before=0)
    third = await one.admit(0.0, cps=None, cap=10, recheck_s=0.7)
    fourth = await one.admit(0.0, cps=None, cap=10, recheck_s=0.7)
    assert isinstance(third, Row) and isinstance(fourth, Row)
    assert await one.admit(10.0, cps=None, cap=10, recheck_s=0.7) == j.Wait(30.0, "no lead due yet")


async def test_a_dead_workers_claims_are_reconciled_by_the_leader(
    tmp_path: Path, make_emulator: Callable[..., Any], workers: Callable[[str], Any]
) -> None:
    """A worker claims two leads, sends the create of one of them, and dies before recording
    anything. Once its claims expire the leader finds the call it placed (by metadata) and
    follows it, and dials the other, which was never sent: each number once."""
    wanted = numbers(4)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    emu = await make_emulator(concurrency_limit=100)
    dead = await workers("dead", 1.0)  # claims last 1 s without a heartbeat
    await dead.open_campaign(info_for(csv), load_leads(csv))
    sent = await dead.admit(0.0, cps=None, cap=10, recheck_s=1.0)
    unsent = await dead.admit(0.0, cps=None, cap=10, recheck_s=1.0)
    assert isinstance(sent, Row) and isinstance(unsent, Row)
    async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as client:
        await client.call.create_phone_call(
            from_number=FROM,
            to_number=sent.to_number or "",
            metadata=call_metadata(CAMPAIGN, sent.ref, sent.attempt),
            idempotency_key=idempotency_key(CAMPAIGN, sent.ref, sent.attempt),
        )
    await dead.close()  # killed: no sign-off, no heartbeat

    alive = await workers("alive")
    runner = await work(emu, alive, lease_ttl_s=1.0)

    assert Counter(emu.state.dialed_numbers()) == dict.fromkeys(wanted, 1)
    assert await alive.counts() == {j.ENDED: 4}
    assert (runner.stats.reconciled_found, runner.stats.reconciled_missing) == (1, 1)
    # The dead worker's view of its claim no longer records anything.
    woken = PostgresJournal(alive.dsn, campaign=NAME, worker_id="dead")
    try:
        with pytest.raises(ClaimLostError, match="another worker holds it now, or did"):
            stale = Row(**{**vars_of(sent), "state": j.DISPATCHING})
            await woken.mark_failed(stale, "woke up late")
    finally:
        await woken.close()


def vars_of(row: Row) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}


async def test_a_frozen_workers_late_result_is_fenced_out(
    tmp_path: Path, workers: Callable[[str], Any]
) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(1))
    frozen, leader = await workers("frozen"), await workers("leader")
    await frozen.open_campaign(info_for(csv), load_leads(csv))
    row = await frozen.claim(now=0.0)
    assert row is not None
    assert await leader.expired_claims() == []  # its lease runs
    await _expire(leader, "frozen")
    [taken] = await leader.expired_claims()
    assert taken.ref == row.ref and taken.claim != row.claim
    with pytest.raises(ClaimLostError):
        await frozen.mark_created(row, "call_late", create_ms=None)
    await frozen.heartbeat()  # renews nothing it lost
    assert await leader.expired_claims() == []
    await leader.mark_created(taken, "call_found", create_ms=None)
    assert (await leader.get(row.ref)).call_id == "call_found"


async def _expire(journal: PostgresJournal, owner: str) -> None:
    """Time passes for ``owner``'s claims: their lease ends now."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(journal.dsn, autocommit=True) as conn:
        await conn.execute(
            "UPDATE aioretell_leads SET lease_until = clock_timestamp() - interval '1 second'"
            " WHERE owner = %s",
            (owner,),
        )


async def test_a_worker_id_in_use_is_refused_and_a_silent_one_taken_over(
    tmp_path: Path, workers: Callable[[str], Any], postgres_dsn: str
) -> None:
    first = await workers("w1")
    second = PostgresJournal(postgres_dsn, campaign=NAME, worker_id="w1")
    other = PostgresJournal(postgres_dsn, campaign=NAME, worker_id="w2")
    try:
        with pytest.raises(j.LeaseHeldError, match="give each dialer its own --worker-id"):
            await second.acquire_lease(ttl_s=30)
        assert await other.acquire_lease(ttl_s=30) is None  # another id: welcome
        import psycopg

        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
            await conn.execute(
                "UPDATE aioretell_workers SET heartbeat_at = clock_timestamp() - interval '31 s'"
                " WHERE worker_id = 'w1'"
            )
        previous = await second.acquire_lease(ttl_s=30)  # silent for 31 s: taken over
        assert previous is not None
        with pytest.raises(j.LeaseLostError, match="took worker 'w1' over"):
            await first.heartbeat()
    finally:
        await second.close()
        await other.close()


async def test_the_leader_stopping_hands_the_lead_over(
    tmp_path: Path, make_emulator: Callable[..., Any], workers: Callable[[str], Any]
) -> None:
    """Two workers; the leader's run is cancelled mid-campaign (its session closes); the
    other takes the lead and finishes: every call followed to its end, each number once."""
    wanted = numbers(30)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    emu = await make_emulator(concurrency_limit=3, call_duration_s=0.1)
    one, two = await workers("w1"), await workers("w2")
    await one.open_campaign(info_for(csv), load_leads(csv))
    seen: list[SharedRunner] = []
    tasks = {
        name: asyncio.ensure_future(work(emu, journal, runners=seen))
        for name, journal in (("w1", one), ("w2", two))
    }
    leader = None
    for _ in range(500):
        leaders = [r for r in seen if r.leading]
        ended = (await one.counts()).get(j.ENDED, 0)
        if leaders and ended >= 5:
            leader = leaders[0]
            break
        await asyncio.sleep(0.02)
    assert leader is not None, "no worker took the lead"
    name = "w1" if leader.shared is one else "w2"
    tasks[name].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[name]
    assert leader.took_lead == 1
    survivor = await tasks["w2" if name == "w1" else "w1"]
    assert survivor.took_lead == 1 and not survivor.leading  # it led until its run ended
    assert await one.counts() == {j.ENDED: 30}
    assert Counter(emu.state.dialed_numbers()) == dict.fromkeys(wanted, 1)
    assert refused_for_concurrency(emu) == 0
    status = await one.status()
    assert status is not None and not any(w.leader for w in status.workers)


async def test_without_a_leader_a_worker_reads_get_concurrency_itself(
    tmp_path: Path,
    make_emulator: Callable[..., Any],
    workers: Callable[[str], Any],
    postgres_dsn: str,
) -> None:
    """The lead is held by a session that does nothing (a frozen leader): nobody follows the
    calls, yet a worker refused for concurrency takes the stale reading's place, so the calls
    that ended at Retell free their slots and it dials on within the limit. Once the lead is
    free, the worker takes it and follows every call to its end."""
    import psycopg

    wanted = numbers(8)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    emu = await make_emulator(concurrency_limit=50, call_duration_s=0.05)
    journal = await workers("w1")
    await journal.open_campaign(info_for(csv), load_leads(csv))
    frozen = await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True)
    try:
        await frozen.execute(
            "SELECT pg_advisory_lock(hashtextextended(current_schema() || ':leader:' || %s, 0))",
            (NAME,),
        )
        seen: list[SharedRunner] = []
        task = asyncio.ensure_future(work(emu, journal, runners=seen, concurrency=2))
        try:
            for _ in range(500):
                # Every lead recorded created and none ended: no end was followed.
                if await journal.counts() == {j.CREATED: len(wanted)}:
                    break
                assert not task.done(), task
                await asyncio.sleep(0.02)
            else:
                raise AssertionError(f"stuck at {len(emu.state.dialed_numbers())} calls")
            assert seen and not seen[0].leading and seen[0].stood_in > 0
        finally:
            await frozen.close()  # the frozen leader's session ends: the lead is free
        runner = await task
    finally:
        await frozen.close()
    assert runner.took_lead == 1
    assert await journal.counts() == {j.ENDED: len(wanted)}
    assert Counter(emu.state.dialed_numbers()) == dict.fromkeys(wanted, 1)
    assert most_live_at_once(emu) <= 2 and refused_for_concurrency(emu) == 0


async def test_ends_from_webhooks_received_by_any_worker(
    tmp_path: Path, make_emulator: Callable[..., Any], workers: Callable[[str], Any]
) -> None:
    """Retell sends webhooks to one worker's --listen address; it applies the end of every
    call of the campaign, whichever worker created it (list-calls polled only every 30 s)."""
    wanted = numbers(20)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    async with (
        WebhookFollower(API_KEY, CAMPAIGN) as listening,
        WebhookFollower(API_KEY, CAMPAIGN) as unused,
    ):
        emu = await make_emulator(webhook_url=listening.local_url, concurrency_limit=6)
        one, two = await workers("w1"), await workers("w2")
        await one.open_campaign(info_for(csv), load_leads(csv))
        runners = await asyncio.gather(
            work(emu, one, follower=listening), work(emu, two, follower=unused)
        )
    assert Counter(emu.state.dialed_numbers()) == dict.fromkeys(wanted, 1)
    assert await one.counts() == {j.ENDED: 20}
    by_webhook = runners[0].stats.ends_via.get("webhook", 0)
    assert by_webhook >= 15  # an end may beat its create's record: the next poll applies it
    # Ends of the other worker's calls too.
    assert by_webhook > len(runners[0].stats.create_ms), [r.stats for r in runners]


async def test_redis_going_away_mid_run_holds_the_creates_until_it_is_back(
    tmp_path: Path,
    make_emulator: Callable[..., Any],
    workers: Callable[[str], Any],
    redis_url: str,
    namespace: str,
) -> None:
    """--redis: while Redis cannot be reached nothing is sent (the pacer fails closed) and the
    worker waits; once it is back the campaign finishes, each number dialled once."""
    from redis.asyncio import Redis

    from aioretell.redis_pacer import RedisPacer

    from .shared_campaign import Proxy

    upstream = Redis.from_url(redis_url).connection_pool.connection_kwargs
    proxy = Proxy((str(upstream.get("host", "127.0.0.1")), int(upstream.get("port", 6379))))
    await proxy.start()
    wanted = numbers(40)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    emu = await make_emulator(concurrency_limit=100, call_duration_s=0.1)
    journal = await workers("w1")
    await journal.open_campaign(info_for(csv), load_leads(csv))
    seen: list[SharedRunner] = []
    async with RedisPacer(f"redis://127.0.0.1:{proxy.port}/0", namespace=namespace) as pacer:
        run = asyncio.ensure_future(
            work(emu, journal, cps=20, inner=pacer, runners=seen, backoff_s=0.05, backoff_cap_s=0.2)
        )
        try:
            for _ in range(500):  # creates go out at 20/s: cut Redis after the first few
                if len(emu.state.calls) >= 5:
                    break
                await asyncio.sleep(0.01)
            await proxy.stop()
            # The creates Redis let through before the cut may still land; then nothing.
            held = -1
            while len(emu.state.calls) != held:
                held = len(emu.state.calls)
                await asyncio.sleep(0.3)
            errors = seen[0].stats.errors
            await asyncio.sleep(0.5)
            assert len(emu.state.calls) == held
            assert seen[0].stats.errors > errors  # it kept trying, and nothing went out
            await proxy.start()
            runner = await run
        finally:
            if not run.done():
                run.cancel()
            await proxy.stop()
    assert Counter(emu.state.dialed_numbers()) == dict.fromkeys(wanted, 1)
    assert await journal.counts() == {j.ENDED: 40}
    assert runner.stats.errors > 0 and "unavailable" in (runner.stats.last_error or "")
    assert runner.stats.retries > 0  # creates held back and given back while it was away


async def test_a_session_frozen_in_a_transaction_does_not_hold_the_others(
    workers: Callable[[str], Any],
) -> None:
    """A worker stopped inside a transaction (loading leads) holds the campaign's lock until
    the server ends its session: every connection of the journal asks for that after 10 s idle
    in a transaction."""
    journal = await workers("w1")
    async with journal._tx() as cur:
        await cur.execute("SHOW idle_in_transaction_session_timeout")
        found = await cur.fetchone()
    assert found == {"idle_in_transaction_session_timeout": "10s"}
