"""The journal interface: state machine, claims, counters, the lease, added leads.

Every test runs against each implementation in ``BACKENDS`` (the PostgreSQL journal of the
scale-out work joins them); the few that check how SQLite stores things say so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from aioretell.dial import journal as j
from aioretell.dial.journal import (
    CampaignInfo,
    Journal,
    JournalError,
    LeaseHeldError,
    LeaseLostError,
    TransitionError,
)
from aioretell.dial.journal_sqlite import SQLiteJournal
from aioretell.dial.leads import load_leads

from .conftest import CAMPAIGN, FROM, new_journal, numbers, open_journal, write_csv


@pytest.fixture
async def journal(tmp_path: Path, backend: str) -> AsyncIterator[Journal]:
    csv = write_csv(tmp_path / "leads.csv", [*numbers(3), "not-a-number"])
    async with await new_journal(tmp_path, csv, backend=backend) as opened:
        yield opened


async def test_rows_start_pending_and_rejected(journal: Journal) -> None:
    assert await journal.counts() == {j.PENDING: 3, j.REJECTED: 1}
    rejected = await journal.get("L5")
    assert rejected.terminal
    assert "not an E.164" in (rejected.reason or "")
    assert (await journal.get("L2")).variables == {"name": "Lead 0"}
    with pytest.raises(KeyError):
        await journal.get("L99")


async def test_happy_path_is_committed_at_each_step(
    tmp_path: Path, backend: str, journal: Journal
) -> None:
    row = await journal.claim(now=100.0)
    assert row is not None
    assert (row.ref, row.state, row.dispatched_at) == ("L2", j.DISPATCHING, 100.0)
    await journal.mark_created(row, "call_1", create_ms=3.5)
    async with open_journal(backend, tmp_path) as other:  # another connection sees each commit
        seen = await other.get("L2")
        assert (seen.state, seen.call_id, seen.create_ms) == (j.CREATED, "call_1", 3.5)
    await journal.mark_ended(row, call_status="ended", disconnection_reason="user_hangup")
    assert (await journal.get("L2")).terminal
    assert row.disconnection_reason == "user_hangup"
    assert await journal.count_called() == 1


async def test_claims_come_in_due_order_then_file_order(journal: Journal) -> None:
    first = await journal.claim(now=0.0)
    assert first is not None and first.ref == "L2"
    await journal.release(first, not_before=50.0, reason="429", retry=False)
    assert await journal.next_due() == 0.0  # L3 and L4 are due at once
    refs = [(await journal.claim(now=10.0)) for _ in range(3)]
    assert [row.ref if row else None for row in refs] == ["L3", "L4", None]
    assert await journal.next_due() == 50.0
    assert await journal.claim(now=49.9) is None
    again = await journal.claim(now=50.0)
    assert again is not None and again.ref == "L2" and again.attempt == 1  # same key
    assert await journal.next_due() is None


async def test_counters_are_kept_separately_and_persist(
    tmp_path: Path, backend: str, journal: Journal
) -> None:
    row = await journal.claim(now=0.0)
    assert row is not None
    await journal.release(row, not_before=0.0, reason="not sent", retry=False)
    row = await journal.claim(now=0.0)
    assert row is not None and row.ref == "L2"
    await journal.release(row, not_before=0.0, reason="no call found", retry=True)
    row = await journal.claim(now=0.0)
    assert row is not None
    await journal.mark_created(row, "call_1", create_ms=None)
    await journal.requeue(
        row, not_before=0.0, call_status="ended", disconnection_reason="dial_busy", redial=True
    )
    row = await journal.claim(now=0.0)
    assert row is not None
    await journal.mark_created(row, "call_2", create_ms=None)
    await journal.requeue(
        row,
        not_before=0.0,
        call_status="not_connected",
        disconnection_reason="concurrency_limit_reached",
        redial=False,
    )
    async with open_journal(backend, tmp_path) as reopened:
        stored = await reopened.get("L2")
    assert (stored.attempt, stored.retries, stored.redials, stored.requeues) == (3, 1, 1, 1)
    assert stored.disconnection_reason == "concurrency_limit_reached"


@pytest.mark.parametrize(
    "forbidden",
    ["created_from_pending", "ended_from_pending", "release_created", "requeue_dispatching"],
)
async def test_forbidden_transitions(journal: Journal, forbidden: str) -> None:
    pending = await journal.get("L3")
    dispatching = await journal.claim(now=0.0)
    assert dispatching is not None
    moves = {
        "created_from_pending": lambda: journal.mark_created(pending, "c", create_ms=None),
        "ended_from_pending": lambda: journal.mark_ended(
            pending, call_status="ended", disconnection_reason=None
        ),
        "release_created": lambda: journal.release(created, not_before=0.0, reason="x", retry=True),
        "requeue_dispatching": lambda: journal.requeue(
            dispatching, not_before=0.0, call_status="ended", disconnection_reason=None, redial=True
        ),
    }
    created = await journal.claim(now=0.0)
    assert created is not None
    await journal.mark_created(created, "call_9", create_ms=None)
    before = {row.ref: row.state for row in await journal.rows()}
    with pytest.raises(TransitionError, match="not allowed"):
        await moves[forbidden]()
    assert {row.ref: row.state for row in await journal.rows()} == before


async def test_terminal_rows_never_move(journal: Journal) -> None:
    row = await journal.claim(now=0.0)
    assert row is not None
    await journal.mark_failed(row, "refused")
    for move in (
        journal.release(row, not_before=0.0, reason="x", retry=False),
        journal.mark_created(row, "c", create_ms=None),
        journal.mark_created(await journal.get("L5"), "c", create_ms=None),  # rejected
    ):
        with pytest.raises(TransitionError):
            await move


async def test_a_stale_row_is_refused(journal: Journal) -> None:
    row = await journal.claim(now=0.0)
    assert row is not None
    copy = dataclasses.replace(row)
    await journal.mark_created(row, "call_1", create_ms=None)
    with pytest.raises(TransitionError, match="does not hold it as dispatching"):
        await journal.mark_failed(copy, "someone else's view")


async def test_placed_rows_stay_dispatching(tmp_path: Path, backend: str, journal: Journal) -> None:
    row = await journal.claim(now=0.0)
    assert row is not None
    await journal.mark_placed(row)
    async with open_journal(backend, tmp_path) as reopened:
        stored = await reopened.get(row.ref)
    assert (stored.state, stored.placed) == (j.DISPATCHING, True)


# -- the campaign and a changed CSV ------------------------------------------------------


async def test_another_number_agent_or_server_is_refused(tmp_path: Path, journal: Journal) -> None:
    found = await journal.campaign()
    assert found is not None and found.campaign_id == CAMPAIGN
    leads = load_leads(tmp_path / "leads.csv")
    called = await journal.claim(now=0.0)
    assert called is not None
    for info, message in (
        (CampaignInfo("cmp_new", found.csv_sha256, "l.csv", "+14155550199", "", "test"), "--from"),
        (CampaignInfo("cmp_new", found.csv_sha256, "l.csv", FROM, "agent_x", "test"), "--agent-id"),
        (CampaignInfo("cmp_new", found.csv_sha256, "l.csv", FROM, "", "https://x"), "server"),
    ):
        with pytest.raises(JournalError, match=message) as refused:
            await journal.open_campaign(info, leads)
        # The message never offers a step that dials again without saying so.
        assert "dials again the 1 leads this one has already called" in str(refused.value)
    same = CampaignInfo("cmp_new", found.csv_sha256, "renamed.csv", FROM, "", "test")
    opened = await journal.open_campaign(same, leads)
    assert (opened.info.campaign_id, opened.new, opened.changes) == (CAMPAIGN, False, None)


async def test_a_changed_csv_adds_only_new_leads(tmp_path: Path, journal: Journal) -> None:
    # L2 finished, L3 in flight, L4 pending, L5 rejected; the new file reorders, drops L4's
    # number and adds two numbers, one of them on a line whose ref (L2) is taken.
    done = await journal.claim(now=0.0)
    flying = await journal.claim(now=0.0)
    assert done is not None and flying is not None
    await journal.mark_created(done, "call_1", create_ms=None)
    await journal.mark_ended(done, call_status="ended", disconnection_reason="user_hangup")
    await journal.mark_created(flying, "call_2", create_ms=None)
    old = numbers(3)
    new_numbers = ["+13125550100", old[1], old[0], "+13125550101", "bad"]
    leads = load_leads(write_csv(tmp_path / "leads.csv", new_numbers))
    info = CampaignInfo("cmp_new", leads.sha256, "leads.csv", FROM, "", "test")
    opened = await journal.open_campaign(info, leads)
    assert opened.info.campaign_id == CAMPAIGN and opened.info.csv_sha256 == leads.sha256
    changes = opened.changes
    assert changes is not None
    assert (changes.added, changes.known, changes.missing) == (2, 2, 1)
    assert changes.renamed == {"L2": "L2_2"}
    rows = {row.ref: row for row in await journal.rows()}
    assert (rows["L2"].state, rows["L3"].state, rows["L4"].state) == (j.ENDED, j.CREATED, j.PENDING)
    assert (rows["L2_2"].to_number, rows["L2_2"].state) == ("+13125550100", j.PENDING)
    # The old rejected line L5 is replaced by the new file's rejected line 6; L5 is free again.
    assert (rows["L5"].to_number, rows["L5"].state) == ("+13125550101", j.PENDING)
    assert [r.ref for r in rows.values() if r.state == j.REJECTED] == ["L6"]
    # The same file again changes nothing.
    again = await journal.open_campaign(info, leads)
    assert again.changes is None and len(await journal.rows()) == len(rows)


# -- the lease ---------------------------------------------------------------------------


async def test_a_second_holder_is_refused_until_released(
    tmp_path: Path, backend: str, journal: Journal
) -> None:
    assert await journal.acquire_lease(ttl_s=30) is None
    async with open_journal(backend, tmp_path) as second:
        with pytest.raises(LeaseHeldError, match=r"in use by another dialer \(pid \d+ on "):
            await second.acquire_lease(ttl_s=30)
        await journal.heartbeat()
        await journal.release_lease()
        assert await second.acquire_lease(ttl_s=30) is None  # released: not "taken over"
        with pytest.raises(LeaseHeldError):
            await journal.acquire_lease(ttl_s=30)


_HOLD_AND_DIE = """
import asyncio, os, sys
from pathlib import Path
from aioretell.dial.journal_postgres import PostgresJournal
from aioretell.dial.journal_sqlite import SQLiteJournal
async def main():
    where = sys.argv[1]
    if where.startswith("postgresql"):
        journal = PostgresJournal(where, campaign="j.db", worker_id="w1")
    else:
        journal = SQLiteJournal(Path(where))
    await journal.acquire_lease(ttl_s=3600)
    print(os.getpid(), flush=True)
    os._exit(0)  # dies holding it, as after kill -9
asyncio.run(main())
"""


async def test_a_dead_holder_on_this_host_is_taken_over_at_once(
    tmp_path: Path, backend: str, journal: Journal
) -> None:
    where = str(tmp_path / "j.db") if backend == "sqlite" else backend
    died = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", _HOLD_AND_DIE, where), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await died.communicate()
    assert died.returncode == 0
    dead_pid = int(out)
    previous = await journal.acquire_lease(ttl_s=3600)  # its heartbeat is fresh: pid decides
    assert previous is not None and previous.pid == dead_pid


async def test_sqlite_a_silent_holder_is_taken_over_after_the_ttl_and_fenced_out(
    tmp_path: Path,
) -> None:
    now = [1000.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    csv = write_csv(tmp_path / "leads.csv", numbers(2))
    leads = load_leads(csv)
    first = SQLiteJournal(tmp_path / "j.db", clock=clock)
    await first.open_campaign(CampaignInfo(CAMPAIGN, leads.sha256, "l", FROM, "", "t"), leads)
    await first.acquire_lease(ttl_s=30)
    second = SQLiteJournal(tmp_path / "j.db", clock=clock)
    now[0] += 29  # alive (this very process) and heartbeat fresh: held
    with pytest.raises(LeaseHeldError):
        await second.acquire_lease(ttl_s=30)
    now[0] += 2  # 31 s without a heartbeat (a frozen process): taken over
    assert await second.acquire_lease(ttl_s=30) is not None
    # The frozen one wakes up: its next write is refused, nothing changes.
    with pytest.raises(LeaseLostError, match="another dialer took this journal over"):
        await first.claim(now=now[0])
    assert (await second.counts()) == {j.PENDING: 2}
    assert await second.claim(now=now[0]) is not None
    await first.close()
    await second.close()


# -- how SQLite stores it ----------------------------------------------------------------


async def test_sqlite_claim_is_fsynced_before_it_returns(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(2))
    async with await new_journal(tmp_path, csv) as journal:
        assert isinstance(journal, SQLiteJournal)
        statements: list[str] = []
        journal._db.set_trace_callback(statements.append)
        row = await journal.claim(now=0.0)
        assert row is not None
        await journal.mark_created(row, "call_1", create_ms=None)
        journal._db.set_trace_callback(None)
        mode = journal._db.execute("PRAGMA synchronous").fetchone()[0]
    claim_commit = statements.index("COMMIT")
    assert "PRAGMA synchronous=FULL" in statements[:claim_commit]  # the claim: FULL
    assert statements[claim_commit + 1] == "PRAGMA synchronous=NORMAL"  # the rest: NORMAL
    assert mode == 1  # NORMAL


async def test_sqlite_wal_mode(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(1))
    async with await new_journal(tmp_path, csv) as journal:
        assert isinstance(journal, SQLiteJournal)
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_sqlite_schema_1_journal_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE campaign (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE leads (ref TEXT PRIMARY KEY, line INTEGER NOT NULL, to_number TEXT,
            variables TEXT NOT NULL DEFAULT '{}', state TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1, redials INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0, call_id TEXT, call_status TEXT,
            disconnection_reason TEXT, reason TEXT, create_ms REAL, updated_at REAL NOT NULL);
        INSERT INTO campaign VALUES ('schema', '1'), ('campaign_id', 'cmp_old'),
            ('csv_sha256', 'ab'), ('csv_name', 'l.csv'), ('from_number', '+14155550100'),
            ('agent_id', ''), ('target', 'test');
        INSERT INTO leads (ref, line, to_number, state, attempt, redials, updated_at)
            VALUES ('L2', 2, '+12125550100', 'pending', 4, 1, 0);
        """
    )
    db.close()
    async with SQLiteJournal(path) as journal:
        info = await journal.campaign()
        row = await journal.get("L2")
    assert info is not None and info.campaign_id == "cmp_old"
    assert (row.attempt, row.redials, row.requeues, row.retries) == (4, 1, 2, 0)


def test_sqlite_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError, match="not a journal"):
        SQLiteJournal(path)
