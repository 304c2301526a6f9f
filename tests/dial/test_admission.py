"""The PostgreSQL journal's admission (one call of a database function): the account's cap,
pause and pace held across workers, refusals that say how long, and live calls bounded by the
journal and by the leader's get-concurrency reading, whichever is smaller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aioretell.dial import journal as j
from aioretell.dial.journal import CampaignInfo, Row, Wait
from aioretell.dial.journal_postgres import ADMIT_FUNCTION, PostgresJournal
from aioretell.dial.leads import load_leads

from .conftest import CAMPAIGN, FROM, numbers, write_csv

NAME = "admitted"


@pytest.fixture
async def workers(postgres_dsn: str) -> AsyncIterator[Callable[..., Any]]:
    """``await make("w1")``: a worker's journal, lease held, closed after the test."""
    stack = AsyncExitStack()

    async def make(
        worker_id: str, *, name: str = NAME, account: str = "default"
    ) -> PostgresJournal:
        journal = PostgresJournal(postgres_dsn, campaign=name, account=account, worker_id=worker_id)
        stack.push_async_callback(journal.close)
        await journal.acquire_lease(ttl_s=30.0)
        return journal

    async with stack:
        yield make


async def opened(journal: PostgresJournal, tmp_path: Path, leads: int) -> None:
    csv = write_csv(tmp_path / f"{journal.name}.csv", numbers(leads))
    lead_file = load_leads(csv)
    info = CampaignInfo(f"{CAMPAIGN}_{journal.name}", lead_file.sha256, csv.name, FROM, "", "t")
    await journal.open_campaign(info, lead_file)


async def sql(journal: PostgresJournal, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(journal.dsn, autocommit=True) as conn:
        cursor = await conn.execute(query.encode(), params)
        return await cursor.fetchall() if cursor.description else []


async def live_counted(journal: PostgresJournal) -> dict[str, int]:
    """What the admission reads (the trigger's counts) and what the rows say, per campaign."""
    kept = dict(
        await sql(journal, "SELECT campaign, SUM(calls) FROM aioretell_live GROUP BY campaign")
    )
    rows = await sql(
        journal,
        "SELECT c.name, COUNT(l.ref) FROM aioretell_campaigns c LEFT JOIN aioretell_leads l"
        " ON l.campaign = c.name AND l.state IN ('dispatching', 'created') GROUP BY c.name",
    )
    assert kept == dict(rows)
    return kept


# -- across workers ---------------------------------------------------------------------


async def test_workers_admitting_at_once_never_pass_the_cap(
    tmp_path: Path, workers: Callable[..., Any]
) -> None:
    journals = [await workers(f"w{n}") for n in range(4)]
    await opened(journals[0], tmp_path, 40)
    got = await asyncio.gather(
        *(jr.admit(0.0, cps=None, cap=3, recheck_s=0.5) for jr in journals for _ in range(6))
    )
    claimed = [g for g in got if isinstance(g, Row)]
    assert len({row.ref for row in claimed}) == len(claimed) == 3
    assert [g for g in got if not isinstance(g, Row)] == [Wait(0.5, "concurrency")] * 21
    # The account's limit, from a reading, holds the same way: 3 live + 2 = 5 allowed.
    await journals[0].record_reading(
        concurrency_limit=6, reserved_inbound=1, current=0, requested_at=await journals[0].clock()
    )
    got = await asyncio.gather(
        *(jr.admit(0.0, cps=None, cap=100, recheck_s=0.5) for jr in journals for _ in range(6))
    )
    assert sum(isinstance(g, Row) for g in got) == 2
    assert await live_counted(journals[0]) == {NAME: 5}


async def test_creates_take_turns_at_the_shared_rate(
    tmp_path: Path, workers: Callable[..., Any]
) -> None:
    """GCRA on the database clock, no burst: each claim spends the next turn, for everyone."""
    one, two = await workers("w1"), await workers("w2")
    await opened(one, tmp_path, 6)
    interval = 0.2
    assert isinstance(await one.admit(0.0, cps=1 / interval, cap=9, recheck_s=1.0), Row)
    told = await two.admit(0.0, cps=1 / interval, cap=9, recheck_s=1.0)
    assert isinstance(told, Wait) and told.why == "calls per second"
    assert 0 < told.seconds <= interval
    await asyncio.sleep(told.seconds)  # the turn it was told: taken
    assert isinstance(await two.admit(0.0, cps=1 / interval, cap=9, recheck_s=1.0), Row)
    again = await one.admit(0.0, cps=1 / interval, cap=9, recheck_s=1.0)
    assert isinstance(again, Wait) and 0 < again.seconds <= interval
    # Idle for three turns: one claim, and the next waits (turns missed are not saved up).
    await asyncio.sleep(3 * interval)
    assert isinstance(await one.admit(0.0, cps=1 / interval, cap=9, recheck_s=1.0), Row)
    after_idle = await two.admit(0.0, cps=1 / interval, cap=9, recheck_s=1.0)
    assert isinstance(after_idle, Wait) and after_idle.why == "calls per second"
    # An admission that claims nothing spends no turn.
    [(turn,)] = await sql(one, "SELECT tat FROM aioretell_accounts")
    await asyncio.sleep(after_idle.seconds)
    assert await one.admit(0.0, cps=1 / interval, cap=3, recheck_s=1.0) == Wait(1.0, "concurrency")
    assert await sql(one, "SELECT tat FROM aioretell_accounts") == [(turn,)]
    assert isinstance(await two.admit(0.0, cps=1 / interval, cap=9, recheck_s=1.0), Row)


async def test_a_pause_holds_every_worker_until_it_ends(
    tmp_path: Path, workers: Callable[..., Any]
) -> None:
    one, two = await workers("w1"), await workers("w2")
    await opened(one, tmp_path, 2)
    told = await one.admit(0.0, cps=None, cap=10, recheck_s=1.0, pause_s=30.0)
    assert isinstance(told, Wait) and told.why == "paused after a 429"
    assert 29 < told.seconds <= 30
    # A shorter pause later does not cut it short.
    seen = await two.admit(0.0, cps=None, cap=10, recheck_s=1.0, pause_s=0.01)
    assert isinstance(seen, Wait) and seen.why == "paused after a 429"
    assert 28 < seen.seconds < told.seconds
    assert await one.counts() == {j.PENDING: 2}
    # Another account is not paused; its own pause ends when it said.
    other = await workers("w3", name="other", account="other")
    await opened(other, tmp_path, 2)
    paused = await other.admit(0.0, cps=None, cap=10, recheck_s=1.0, pause_s=0.2)
    assert isinstance(paused, Wait) and 0 < paused.seconds <= 0.2
    await asyncio.sleep(paused.seconds)
    assert isinstance(await other.admit(0.0, cps=None, cap=10, recheck_s=1.0), Row)


async def test_every_refusal_and_the_end(tmp_path: Path, workers: Callable[..., Any]) -> None:
    journal = await workers("w1")
    with pytest.raises(j.JournalError, match="the campaign has not been opened"):
        await journal.admit(0.0, cps=None, cap=1, recheck_s=1.0)
    await opened(journal, tmp_path, 2)
    first = await journal.admit(5.0, cps=None, cap=1, recheck_s=0.25)
    assert isinstance(first, Row) and first.claim and first.dispatched_at == 5.0
    assert await journal.admit(5.0, cps=None, cap=1, recheck_s=0.25) == Wait(0.25, "concurrency")
    await journal.release(first, not_before=20.0, reason="x", retry=False)
    second = await journal.admit(5.0, cps=None, cap=2, recheck_s=0.25)
    assert isinstance(second, Row) and second.ref != first.ref
    assert await journal.admit(5.0, cps=None, cap=2, recheck_s=0.25) == Wait(
        15.0, "no lead due yet"
    )
    again = await journal.admit(20.0, cps=None, cap=2, recheck_s=0.25)
    assert isinstance(again, Row) and again.ref == first.ref
    assert await journal.admit(20.0, cps=None, cap=5, recheck_s=0.25) is None  # none pending
    # The claim is fenced and leased on the database clock.
    [(owner, token, lease_s)] = await sql(
        journal,
        "SELECT owner, claim_token, EXTRACT(EPOCH FROM lease_until - clock_timestamp())::float8"
        " FROM aioretell_leads WHERE campaign = %s AND ref = %s",
        NAME,
        again.ref,
    )
    assert (owner, token) == ("w1", again.claim) and 25 < lease_s <= 30
    await journal.heartbeat()  # renews the claims it holds
    await journal.mark_created(again, "call_1", create_ms=None)
    assert await live_counted(journal) == {NAME: 2}


# -- live calls: the journal's count and the reading's ---------------------------------


async def _created(journal: PostgresJournal, n: int) -> list[Row]:
    rows = []
    for i in range(n):
        row = await journal.admit(0.0, cps=None, cap=100, recheck_s=1.0)
        assert isinstance(row, Row)
        await journal.mark_created(row, f"call_{journal.name}_{i}", create_ms=None)
        rows.append(row)
    return rows


async def test_a_reading_frees_the_slot_of_a_call_that_ended_before_the_journal_knows(
    tmp_path: Path, workers: Callable[..., Any]
) -> None:
    journal = await workers("w1")
    await opened(journal, tmp_path, 10)
    first, _ = await _created(journal, 2)
    assert await journal.admit(0.0, cps=None, cap=2, recheck_s=1.0) == Wait(1.0, "concurrency")
    # A reading that did not say when it was asked shows nothing certain about our calls.
    await journal.record_reading(concurrency_limit=20, reserved_inbound=0, current=1, ours_before=2)
    assert await journal.admit(0.0, cps=None, cap=2, recheck_s=1.0) == Wait(1.0, "concurrency")
    # Both were created before this reading was asked for, and Retell counts one: the other
    # ended, its slot is free though the journal still holds it created.
    await journal.record_reading(
        concurrency_limit=20, reserved_inbound=0, current=1, requested_at=await journal.clock()
    )
    third = await journal.admit(0.0, cps=None, cap=2, recheck_s=1.0)
    assert isinstance(third, Row)
    assert await journal.counts() == {j.CREATED: 2, j.DISPATCHING: 1, j.PENDING: 7}
    # ... and only that one: the claim just made counts.
    assert await journal.admit(0.0, cps=None, cap=2, recheck_s=1.0) == Wait(1.0, "concurrency")
    # The journal learns the end: its own count is the smaller one now.
    await journal.mark_ended(first, call_status="ended", disconnection_reason="user_hangup")
    await journal.record_reading(
        concurrency_limit=20, reserved_inbound=0, current=5, requested_at=await journal.clock()
    )
    assert await journal.admit(0.0, cps=None, cap=2, recheck_s=1.0) == Wait(1.0, "concurrency")
    await journal.release(third, not_before=0.0, reason="x", retry=False)
    assert isinstance(await journal.admit(0.0, cps=None, cap=2, recheck_s=1.0), Row)


async def test_a_create_in_flight_during_the_reading_is_still_counted(
    tmp_path: Path, workers: Callable[..., Any]
) -> None:
    journal = await workers("w1")
    await opened(journal, tmp_path, 10)
    await _created(journal, 1)
    flying = await journal.admit(0.0, cps=None, cap=100, recheck_s=1.0)  # its create is sent
    assert isinstance(flying, Row)
    asked = await journal.clock()
    # Retell answers before the create lands: it counts the first call only. The create's
    # answer is recorded after the reading was asked for.
    await journal.mark_created(flying, "call_flying", create_ms=None)
    await journal.record_reading(
        concurrency_limit=20, reserved_inbound=0, current=1, requested_at=asked
    )
    assert await journal.admit(0.0, cps=None, cap=2, recheck_s=1.0) == Wait(1.0, "concurrency")
    # The same with the create unanswered until the admission (dispatching), and with the
    # account's limit deciding.
    await journal.requeue(
        flying, not_before=0.0, call_status="ended", disconnection_reason=None, redial=False
    )
    flying = await journal.admit(0.0, cps=None, cap=100, recheck_s=1.0)
    assert isinstance(flying, Row)
    await journal.record_reading(
        concurrency_limit=2, reserved_inbound=0, current=1, requested_at=await journal.clock()
    )
    assert await journal.admit(0.0, cps=None, cap=9, recheck_s=1.0) == Wait(1.0, "concurrency")


async def test_other_traffic_counts_once(tmp_path: Path, workers: Callable[..., Any]) -> None:
    """The account allows 5; two inbound calls stay live throughout."""
    journal = await workers("w1")
    await opened(journal, tmp_path, 10)
    [first] = await _created(journal, 1)
    reading = await journal.record_reading(
        concurrency_limit=5, reserved_inbound=0, current=3, requested_at=await journal.clock()
    )
    assert reading.others == 2
    await _created(journal, 2)  # 3 of ours and 2 inbound: full
    assert await journal.admit(0.0, cps=None, cap=50, recheck_s=1.0) == Wait(1.0, "concurrency")
    # The first call ends at Retell: the next reading shows 4 and lets one more in.
    await journal.record_reading(
        concurrency_limit=5, reserved_inbound=0, current=4, requested_at=await journal.clock()
    )
    assert isinstance(await journal.admit(0.0, cps=None, cap=50, recheck_s=1.0), Row)
    assert await journal.admit(0.0, cps=None, cap=50, recheck_s=1.0) == Wait(1.0, "concurrency")
    # The journal learns that end: still full (the reading did not count that call; taking
    # it as one of ours in the reading would leave one inbound call uncounted).
    await journal.mark_ended(first, call_status="ended", disconnection_reason="user_hangup")
    assert await journal.admit(0.0, cps=None, cap=50, recheck_s=1.0) == Wait(1.0, "concurrency")


async def test_the_bounds_are_per_account(tmp_path: Path, workers: Callable[..., Any]) -> None:
    """Two campaigns of one account share its limit; each keeps its own cap."""
    one, two = await workers("w1"), await workers("w2", name="other")
    await opened(one, tmp_path, 5)
    await opened(two, tmp_path, 5)
    await _created(one, 2)
    await _created(two, 1)
    await one.record_reading(
        concurrency_limit=4, reserved_inbound=0, current=3, requested_at=await one.clock()
    )
    assert isinstance(await two.admit(0.0, cps=None, cap=2, recheck_s=1.0), Row)
    assert await one.admit(0.0, cps=None, cap=9, recheck_s=1.0) == Wait(1.0, "concurrency")
    assert await live_counted(one) == {NAME: 2, "other": 2}


def test_a_reading_needs_to_say_what_was_ours() -> None:
    journal = PostgresJournal("postgresql://nobody@127.0.0.1:1/x", campaign="c")
    with pytest.raises(ValueError, match="requested_at"):
        asyncio.run(journal.record_reading(concurrency_limit=1, reserved_inbound=0, current=0))


# -- the function and the counts in an existing schema --------------------------------


async def test_a_schema_made_by_older_code_is_brought_up_to_date(
    tmp_path: Path, workers: Callable[..., Any], postgres_dsn: str
) -> None:
    """Without the admission function, the live-call trigger and its counts, and the
    reading's new columns (as schema 1 was first made), with calls already live."""
    journal = await workers("w1")
    await opened(journal, tmp_path, 6)
    await _created(journal, 2)
    assert isinstance(await journal.admit(0.0, cps=None, cap=9, recheck_s=1.0), Row)
    await sql(
        journal,
        f"DROP FUNCTION {ADMIT_FUNCTION}; DROP FUNCTION aioretell_count_live CASCADE;"
        " DROP TABLE aioretell_live; ALTER TABLE aioretell_accounts"
        " DROP COLUMN current_concurrency, DROP COLUMN read_requested_at",
    )
    again = PostgresJournal(postgres_dsn, campaign=NAME, worker_id="w2")
    try:
        assert await again.admit(0.0, cps=None, cap=3, recheck_s=1.0) == Wait(1.0, "concurrency")
        assert await live_counted(again) == {NAME: 3}
        await again.record_reading(
            concurrency_limit=9, reserved_inbound=0, current=0, requested_at=await again.clock()
        )
        assert isinstance(await again.admit(0.0, cps=None, cap=4, recheck_s=1.0), Row)
        assert await live_counted(again) == {NAME: 4}
        created = await sql(
            again, "SELECT xmin::text FROM pg_proc WHERE proname = %s", ADMIT_FUNCTION
        )
    finally:
        await again.close()
    # Opening an up-to-date schema leaves the function as it is.
    third = PostgresJournal(postgres_dsn, campaign=NAME, worker_id="w3")
    try:
        await third.counts()
        assert (
            await sql(third, "SELECT xmin::text FROM pg_proc WHERE proname = %s", ADMIT_FUNCTION)
            == created
        )
    finally:
        await third.close()


async def test_the_live_count_follows_every_move(
    tmp_path: Path, workers: Callable[..., Any]
) -> None:
    journal = await workers("w1")
    await opened(journal, tmp_path, 8)
    rows = [await journal.admit(0.0, cps=None, cap=9, recheck_s=1.0) for _ in range(6)]
    a, b, c, d, e, f = [row for row in rows if isinstance(row, Row)]
    assert await live_counted(journal) == {NAME: 6}
    for row in (a, b, c, d):
        await journal.mark_created(row, f"call_{row.ref}", create_ms=None)
    await journal.mark_placed(e)
    await journal.mark_ended(a, call_status="ended", disconnection_reason="user_hangup")
    await journal.requeue(
        b, not_before=0.0, call_status="ended", disconnection_reason="dial_busy", redial=True
    )
    await journal.mark_failed(e, "refused")
    await journal.release(f, not_before=0.0, reason="x", retry=True)
    assert await live_counted(journal) == {NAME: 2}
    assert await journal.claim(now=0.0) is not None  # a claim outside the admission counts
    assert await live_counted(journal) == {NAME: 3}


async def test_a_transaction_whose_session_the_server_ended_runs_again(
    tmp_path: Path, workers: Callable[..., Any]
) -> None:
    """A worker stopped inside a transaction past ``idle_in_transaction_session_timeout``
    wakes to a session the server ended: that transaction never committed, so it runs once
    more on a fresh connection instead of ending the run. The server really ends the session
    here (``pg_terminate_backend`` from another connection, between BEGIN and the first
    statement)."""
    journal = await workers("w1")
    await opened(journal, tmp_path, 3)
    real_tx = journal._tx
    ended: list[int] = []

    @asynccontextmanager
    async def tx_ended_once() -> AsyncIterator[Any]:
        async with real_tx() as cur:
            if not ended:
                pid = cur.connection.info.backend_pid
                await sql(journal, "SELECT pg_terminate_backend(%s)", pid)
                ended.append(pid)
            yield cur

    journal._tx = tx_ended_once  # type: ignore[method-assign]
    reading = await journal.record_reading(
        concurrency_limit=20, reserved_inbound=0, current=0, requested_at=await journal.clock()
    )
    assert ended and reading.others == 0
    counts = await journal.counts()
    assert counts["pending"] == 3 and sum(counts.values()) == 3

    # A second ended session in one call is an outage: said as one, not retried forever.
    ended.clear()

    @asynccontextmanager
    async def tx_always_ended() -> AsyncIterator[Any]:
        async with real_tx() as cur:
            await sql(journal, "SELECT pg_terminate_backend(%s)", cur.connection.info.backend_pid)
            ended.append(1)
            yield cur

    journal._tx = tx_always_ended  # type: ignore[method-assign]
    with pytest.raises(j.JournalUnavailableError, match="ended the session"):
        await journal.counts()
    assert len(ended) == 2


async def test_a_reading_is_due_when_the_latest_is_stale_and_an_older_one_never_wins(
    tmp_path: Path, workers: Callable[..., Any]
) -> None:
    one, two = await workers("w1"), await workers("w2")
    await opened(one, tmp_path, 2)
    first = await one.reading_due(60.0)
    assert first is not None  # never read: due, on the database clock
    late = await two.clock()
    await two.record_reading(concurrency_limit=9, reserved_inbound=1, current=3, requested_at=late)
    assert await one.reading_due(60.0) is None
    assert await one.reading_due(0.0) is not None
    # A reading requested before the stored one (a slower worker's) is dropped.
    kept = await one.record_reading(
        concurrency_limit=5, reserved_inbound=0, current=0, requested_at=first
    )
    assert (kept.concurrency_limit, kept.reserved_inbound, kept.others) == (9, 1, 3)
    assert await sql(
        one, "SELECT concurrency_limit, current_concurrency FROM aioretell_accounts"
    ) == [(9, 3)]
