"""The dispatch loop against a real-time emulator: once per lead, reconcile, requeue, redial."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from aioretell import AsyncRetell
from aioretell.dial import journal as j
from aioretell.dial.capacity import CapacityGate
from aioretell.dial.errors import AccountError, BackgroundTaskError
from aioretell.dial.journal import Journal
from aioretell.dial.reconcile import call_metadata, find_call, idempotency_key
from aioretell.dial.runner import DialOptions, Runner
from aioretell.dial.watch import CallEnd, Watcher
from aioretell.emulator import Fault

from .conftest import (
    API_KEY,
    CAMPAIGN,
    FROM,
    calls_per_number,
    dial,
    new_journal,
    numbers,
    write_csv,
)

Make = Callable[..., Any]
EMPTY_PAGE = Fault.status(200, body=b'{"items": [], "has_more": false}')


def creates(emu: Any) -> int:
    return sum(1 for operation, _, _ in emu.requests if operation == "createPhoneCall")


async def test_every_lead_called_once_and_ended(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator()
    wanted = numbers(40)
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", wanted)) as journal:
        runner = await dial(emu, journal, concurrency=8)
        rows = await journal.rows()
    assert {row.state for row in rows} == {j.ENDED}
    assert await calls_per_number(emu.base_url) == dict.fromkeys(wanted, 1)
    assert runner.stats.placed == 40 and len(runner.stats.create_ms) == 40
    # Every create carried the campaign, the row and the attempt.
    call = emu.state.calls[rows[0].call_id or ""]
    assert call.metadata == call_metadata(CAMPAIGN, rows[0].ref, 1)
    assert call.dynamic_variables == {"name": "Lead 0"}
    assert call.idempotency_key == idempotency_key(CAMPAIGN, rows[0].ref, 1)


async def test_dispatching_rows_are_reconciled(tmp_path: Path, make_emulator: Make) -> None:
    """A crash between the two commits: one create had landed, the other had not."""
    emu = await make_emulator()
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3))) as journal:
        landed, lost = await journal.claim(0.0), await journal.claim(0.0)
        assert landed is not None and lost is not None
        async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as client:
            made = await client.call.create_phone_call(
                from_number=FROM,
                to_number=landed.to_number or "",
                metadata=call_metadata(CAMPAIGN, landed.ref, 1),
                idempotency_key=idempotency_key(CAMPAIGN, landed.ref, 1),
            )
            # The lookup is by campaign, row and attempt.
            assert (await find_call(client, CAMPAIGN, landed.ref, 1)) is not None
            assert (await find_call(client, CAMPAIGN, landed.ref, 2)) is None
            assert (await find_call(client, "cmp_other", landed.ref, 1)) is None
        # Dispatched long ago (at 0.0): past the grace period, a missing call is missing.
        runner = await dial(emu, journal)
        assert (await journal.get("L2")).call_id == made.call_id  # found: adopted, not redialled
        assert {row.state for row in await journal.rows()} == {j.ENDED}
        lost_row = await journal.get(lost.ref)
    assert (runner.stats.reconciled_found, runner.stats.reconciled_missing) == (1, 1)
    assert (lost_row.attempt, lost_row.retries) == (1, 1)  # sent again with the same key
    assert set((await calls_per_number(emu.base_url)).values()) == {1}


async def test_a_call_list_calls_does_not_show_yet_is_not_dialled_again(
    tmp_path: Path, make_emulator: Make
) -> None:
    """list-calls lags: within the grace period, "not found" means "look again", not "redial"."""
    emu = await make_emulator()
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(1))) as journal:
        row = await journal.claim(time.time())  # dispatched just now, by a run that crashed
        assert row is not None
        async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as client:
            made = await client.call.create_phone_call(
                from_number=FROM,
                to_number=row.to_number or "",
                metadata=call_metadata(CAMPAIGN, row.ref, 1),
                idempotency_key=idempotency_key(CAMPAIGN, row.ref, 1),
            )
        emu.faults.script("listCalls", [EMPTY_PAGE, EMPTY_PAGE])  # not indexed yet, twice
        runner = await dial(emu, journal, lookup_grace_s=3600.0, lookup_every_s=0.01)
        stored = await journal.get(row.ref)
    assert (stored.state, stored.call_id, stored.retries) == (j.ENDED, made.call_id, 0)
    assert creates(emu) == 1  # only the crashed run's
    assert runner.stats.reconciled_found == 1 and runner.stats.reconciled_missing == 0


async def test_ambiguous_create_is_looked_up_not_repeated(
    tmp_path: Path, make_emulator: Make
) -> None:
    emu = await make_emulator()
    emu.faults.script("createPhoneCall", [Fault.reset_after_request(), Fault.status(500)])
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(5))) as journal:
        runner = await dial(emu, journal, concurrency=1, backoff_s=0.01, lookup_grace_s=0.0)
        assert {row.state for row in await journal.rows()} == {j.ENDED}
    # The reset placed its call (found); the 500 placed none (redialled with the same key).
    assert (runner.stats.reconciled_found, runner.stats.reconciled_missing) == (1, 1)
    assert set((await calls_per_number(emu.base_url)).values()) == {1}


async def test_concurrency_limit_reached_is_requeued(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator(concurrency_limit=2)
    wanted = numbers(6)
    ungated = CapacityGate(None)  # no get-concurrency: creates overrun the account's limit
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", wanted)) as journal:
        runner = await dial(emu, journal, gate=ungated, concurrency=6, backoff_s=0.05)
        rows = await journal.rows()
    assert runner.stats.requeued > 0
    assert {row.state for row in rows} == {j.ENDED}
    assert all(row.disconnection_reason != "concurrency_limit_reached" for row in rows)
    assert max(row.attempt for row in rows) > 1
    assert all(row.attempt == row.requeues + 1 for row in rows)
    # Each lead was connected exactly once; the rejected attempts never rang.
    connected = [c.to_number for c in emu.state.calls.values() if c.rejected_reason is None]
    assert sorted(connected) == sorted(wanted)


async def test_requeues_are_bounded(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator(outcomes_by_suffix=(("0100", "no_concurrency_fallback"),))
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(1))) as journal:
        await dial(emu, journal, max_requeues=2, backoff_s=0.01)
        row = await journal.get("L2")
    assert (row.state, row.attempt, row.requeues, row.disconnection_reason) == (
        j.ENDED,
        3,
        2,
        "no_concurrency_fallback",
    )


async def _end_current_call(
    journal: Journal, client: AsyncRetell, options: DialOptions, reason: str
) -> None:
    """One run's worth: the row's call is created, then ends with ``reason``."""
    row = await journal.claim(now=math.inf)
    assert row is not None
    call_id = f"call_{row.attempt}"
    await journal.mark_created(row, call_id, create_ms=None)
    runner = Runner(client, journal, CAMPAIGN, options, CapacityGate(None))  # a fresh run
    await runner.load()
    assert await runner.on_end(CallEnd(call_id, "not_connected", reason))


async def test_requeue_and_redial_limits_count_separately_across_runs(tmp_path: Path) -> None:
    """Two redials do not use up the requeue allowance (the attempt number counts both)."""
    options = DialOptions(from_number=FROM, redial=2, max_requeues=1, backoff_s=0.0)
    async with (
        await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(1))) as journal,
        AsyncRetell(api_key=API_KEY, base_url="http://127.0.0.1:9") as client,  # never called
    ):
        await _end_current_call(journal, client, options, "dial_busy")
        await _end_current_call(journal, client, options, "dial_no_answer")
        await _end_current_call(journal, client, options, "concurrency_limit_reached")
        row = await journal.get("L2")
        assert (row.state, row.attempt, row.redials, row.requeues) == (j.PENDING, 4, 2, 1)
        await _end_current_call(journal, client, options, "concurrency_limit_reached")
        row = await journal.get("L2")
    assert (row.state, row.attempt, row.requeues) == (j.ENDED, 4, 1)  # the allowance is spent


async def test_retries_are_counted_across_runs(tmp_path: Path, make_emulator: Make) -> None:
    """A lead that already failed twice in earlier runs fails at its third failure."""
    emu = await make_emulator()
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(2))) as journal:
        for _ in range(2):  # two earlier runs whose create placed nothing, for L2
            row = await journal.claim(now=0.0)
            assert row is not None and row.ref == "L2"
            await journal.release(row, not_before=0.0, reason="no call found", retry=True)
        emu.faults.script("createPhoneCall", [Fault.status(500)])  # nothing placed, again
        await dial(emu, journal, concurrency=1, max_retries=2, lookup_grace_s=0.0)
        failed, fine = await journal.rows()
    assert (failed.state, failed.retries) == (j.FAILED, 2)
    assert "create failed 3 times" in (failed.reason or "")
    assert fine.state == j.ENDED
    assert creates(emu) == 2


async def test_capacity_gate_keeps_live_calls_within_the_limit(
    tmp_path: Path, make_emulator: Make
) -> None:
    emu = await make_emulator(concurrency_limit=5, reserved_inbound_concurrency=2)
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(12))) as journal:
        await dial(emu, journal, concurrency=12)
        rows = await journal.rows()
    assert {row.disconnection_reason for row in rows} <= {"agent_hangup", "user_hangup"}
    assert all(row.attempt == 1 for row in rows)


async def test_busy_and_no_answer_are_terminal_without_redial(
    tmp_path: Path, make_emulator: Make
) -> None:
    emu = await make_emulator(
        outcomes_by_suffix=(("0100", "dial_busy"), ("0101", "invalid_destination"))
    )
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3))) as journal:
        await dial(emu, journal)
        outcomes = {row.to_number: row.disconnection_reason for row in await journal.rows()}
    assert outcomes["+12125550100"] == "dial_busy"
    assert outcomes["+12125550101"] == "invalid_destination"
    assert set((await calls_per_number(emu.base_url)).values()) == {1}


async def test_redial(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator(
        outcomes_by_suffix=(("0100", "dial_no_answer"), ("0101", "marked_as_spam"))
    )
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3))) as journal:
        runner = await dial(emu, journal, redial=2, redial_delay_s=0.01)
        busy, spam, fine = await journal.rows()
    assert (busy.attempt, busy.redials, busy.disconnection_reason) == (3, 2, "dial_no_answer")
    assert (spam.attempt, spam.redials) == (1, 0)  # never redialled
    assert fine.attempt == 1
    assert runner.stats.redialled == 2
    counts = await calls_per_number(emu.base_url)
    assert counts == {"+12125550100": 3, "+12125550101": 1, "+12125550102": 1}


async def test_a_lead_refused_once_the_account_is_proven_fails_alone(
    tmp_path: Path, make_emulator: Make
) -> None:
    emu = await make_emulator()
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3))) as journal:
        # L2 gets through first; then L3 is refused: a refusal about that lead.
        emu.faults.script("createPhoneCall", [Fault.ok(), Fault.status(400)])
        runner = await dial(emu, journal, concurrency=1)
        states = [row.state for row in await journal.rows()]
    assert states == [j.ENDED, j.FAILED, j.ENDED]
    assert runner.stats.failed == 1


async def test_a_refusal_before_any_call_is_not_blamed_on_the_lead(
    tmp_path: Path, make_emulator: Make
) -> None:
    emu = await make_emulator()
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3))) as journal:
        emu.faults.script("createPhoneCall", [Fault.status(400)])  # the first lead, once
        await dial(emu, journal, concurrency=1, backoff_s=0.01)
        assert {row.state for row in await journal.rows()} == {j.ENDED}
    assert creates(emu) == 4


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.status(401), "Retell refused the API key"),
        (Fault.status(403), "Retell refused the API key"),
        (Fault.status(402), "Retell refused to place calls for this account (402"),
        (Fault.status(404), "check --from-number +14155550100"),
        (Fault.status(422), "every create was refused (5 leads, none placed"),
    ],
)
async def test_an_account_wide_refusal_stops_the_run_and_leaves_leads_pending(
    tmp_path: Path, make_emulator: Make, fault: Fault, message: str
) -> None:
    emu = await make_emulator()
    emu.faults.script("createPhoneCall", [fault] * 100)
    csv = write_csv(tmp_path / "l.csv", numbers(20))
    async with await new_journal(tmp_path, csv) as journal:
        with pytest.raises(AccountError, match=message.replace("(", r"\(").replace("+", r"\+")):
            await dial(emu, journal, concurrency=2, backoff_s=0.01)
        rows = await journal.rows()
        assert {row.state for row in rows} == {j.PENDING}
        assert all(row.retries == 0 for row in rows)
        # Fixed (no more faults): the same journal dials everyone, once.
        emu.faults.clear()
        await dial(emu, journal)
        assert {row.state for row in await journal.rows()} == {j.ENDED}
    assert set((await calls_per_number(emu.base_url)).values()) == {1}


async def test_an_unknown_agent_is_refused_before_any_create(
    tmp_path: Path, make_emulator: Make
) -> None:
    emu = await make_emulator()
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3))) as journal:
        with pytest.raises(AccountError, match="--agent-id agent_nobody is not an agent"):
            await dial(emu, journal, agent_id="agent_nobody")
        assert {row.state for row in await journal.rows()} == {j.PENDING}
    assert creates(emu) == 0


async def test_a_dead_capacity_poller_ends_the_run(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator(call_duration_s=30.0)
    readings = 0

    async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as client:

        async def fetch() -> Any:
            nonlocal readings
            readings += 1
            if readings > 1:
                raise RuntimeError("poller bug")
            return await client.concurrency.retrieve()

        gate = CapacityGate(fetch, interval=0.01)
        csv = write_csv(tmp_path / "l.csv", numbers(5))
        async with await new_journal(tmp_path, csv) as journal:
            with pytest.raises(BackgroundTaskError, match=r"capacity poller.*poller bug"):
                await asyncio.wait_for(dial(emu, journal, gate=gate), timeout=60)
            states = {row.state for row in await journal.rows()}
    assert states <= {j.PENDING, j.DISPATCHING, j.CREATED}


async def test_a_dead_call_follower_ends_the_run_instead_of_hanging(
    tmp_path: Path, make_emulator: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emulator()

    async def broken(self: Watcher) -> None:
        raise KeyError("follower bug")

    monkeypatch.setattr(Watcher, "poll_once", broken)
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3))) as journal:
        with pytest.raises(BackgroundTaskError, match="call follower stopped: KeyError"):
            await asyncio.wait_for(dial(emu, journal), timeout=60)
        rows = await journal.rows()
        monkeypatch.undo()
        # The journal is consistent: the next run follows the created calls to their end.
        await dial(emu, journal)
        assert {row.state for row in await journal.rows()} == {j.ENDED}
    assert {row.state for row in rows} <= {j.PENDING, j.DISPATCHING, j.CREATED}
    assert set((await calls_per_number(emu.base_url)).values()) == {1}


async def test_a_dead_live_view_ends_the_run(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator(call_duration_s=30.0)

    async def view(runner: Runner) -> None:
        raise ZeroDivisionError("view bug")

    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3))) as journal:
        with pytest.raises(BackgroundTaskError, match="live view stopped: ZeroDivisionError"):
            await asyncio.wait_for(dial(emu, journal, sidecar=view), timeout=60)


async def test_poll_errors_are_counted_and_shown(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator()
    emu.faults.script("listCalls", [Fault.status(503)] * 3)  # the client retries twice
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(2))) as journal:
        runner = await dial(emu, journal)
        assert {row.state for row in await journal.rows()} == {j.ENDED}
    assert runner.stats.errors == 1
    assert (runner.stats.last_error or "").startswith("list-calls: 503")


async def test_the_client_is_the_only_pacer(tmp_path: Path, make_emulator: Make) -> None:
    """At 1 create per 100 s, every lead is handed to the client at once; only its pacer
    (here on a fake clock, blocked until released) holds them back."""
    emu = await make_emulator(call_duration_s=30.0)
    fake_now = [0.0]
    waiting: list[float] = []
    release = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        waiting.append(seconds)
        await release.wait()
        fake_now[0] += seconds

    csv = write_csv(tmp_path / "l.csv", numbers(4))
    async with (
        await new_journal(tmp_path, csv) as journal,
        AsyncRetell(api_key=API_KEY, base_url=emu.base_url, create_rate_limit=0.01) as client,
    ):
        client._set_time(lambda: fake_now[0], fake_sleep)
        from aioretell.dial.campaign import run_campaign

        stop = asyncio.Event()
        run = asyncio.ensure_future(
            run_campaign(
                client,
                journal,
                CAMPAIGN,
                DialOptions(from_number=FROM, concurrency=4),
                poll_interval=0.02,
                gate=CapacityGate(None),
                stop=stop,
            )
        )
        for _ in range(2000):  # a hang guard: this takes milliseconds
            counts = await journal.counts()
            if (len(waiting) == 3 and counts.get(j.CREATED)) or run.done():
                break
            await asyncio.sleep(0.01)
        release.set()
        stop.set()
        await asyncio.wait_for(run, timeout=60)
    # Every sleep is the client's: one interval of its create_rate_limit (1 / 0.01 s); the
    # runner spaces nothing itself (it used to add its own waits on top).
    assert waiting and set(waiting) == {100.0}
    assert counts == {j.CREATED: 1, j.DISPATCHING: 3}
    assert creates(emu) == 4


async def test_capacity_gate_arithmetic() -> None:
    from aioretell.types.concurrency import ConcurrencyRetrieveResponse

    reading = ConcurrencyRetrieveResponse(
        current_concurrency=6, concurrency_limit=10, reserved_inbound_concurrency=2
    )

    async def fetch() -> ConcurrencyRetrieveResponse:
        return reading

    gate = CapacityGate(fetch)
    gate.adopt(4)  # four of the six live calls are ours
    await gate.poll_once()
    assert (gate.others, gate.allowed) == (2, 6)
    await gate.acquire()
    await gate.acquire()
    assert gate.live == 6
    gate.release(confirmed=True)
    assert gate.live == 5 and gate.created_live == 3
    assert math.isinf(CapacityGate(None).allowed)


@asynccontextmanager
async def mangling_proxy(target: str, mangle: Callable[[dict[str, Any]], None]) -> Any:
    """A hop before the emulator that passes everything through, but rewrites the body of the
    first create's 201 with ``mangle`` (the call is placed; its answer does not decode)."""
    session = aiohttp.ClientSession()
    mangled: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with session.request(
            request.method,
            target + request.path_qs,
            data=body,
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        ) as answer:
            payload = await answer.read()
            if request.path.endswith("/create-phone-call") and answer.status == 201 and not mangled:
                call = msgspec.json.decode(payload)
                mangled.append(call["call_id"])
                mangle(call)
                payload = msgspec.json.encode(call)
            return web.Response(status=answer.status, body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}", mangled
    finally:
        await runner.cleanup()
        await session.close()


def _bad_status(call: dict[str, Any]) -> None:
    call["call_status"] = 12  # a number where a string belongs: the call_id is still there


def _no_id(call: dict[str, Any]) -> None:
    call["call_id"] = None  # nothing usable: found by its metadata instead


@pytest.mark.parametrize("mangle", [_bad_status, _no_id])
async def test_an_unreadable_2xx_create_is_placed_not_sent_again(
    tmp_path: Path, make_emulator: Make, mangle: Callable[[dict[str, Any]], None]
) -> None:
    emu = await make_emulator()
    csv = write_csv(tmp_path / "l.csv", numbers(3))
    async with (
        mangling_proxy(emu.base_url, mangle) as (url, mangled),
        await new_journal(tmp_path, csv) as journal,
        AsyncRetell(api_key=API_KEY, base_url=url) as client,
    ):
        from aioretell.dial.campaign import run_campaign

        runner = await run_campaign(
            client,
            journal,
            CAMPAIGN,
            DialOptions(from_number=FROM, concurrency=1, lookup_grace_s=3600.0),
            poll_interval=0.02,
        )
        rows = await journal.rows()
    assert {row.state for row in rows} == {j.ENDED}
    assert rows[0].call_id == mangled[0] and rows[0].retries == 0
    assert creates(emu) == 3  # one per lead: the unreadable answer was not taken as a failure
    assert runner.stats.errors == 1 and "unreadably" in (runner.stats.last_error or "")
    # Read from the body when it has the id, else looked up by metadata.
    assert runner.stats.reconciled_found == (1 if mangle is _no_id else 0)
    assert set((await calls_per_number(emu.base_url)).values()) == {1}


async def test_lookups_waiting_out_the_grace_period_do_not_hold_up_other_leads(
    tmp_path: Path, make_emulator: Make
) -> None:
    """Two rows a crashed run left dispatching (just now: list-calls may not show them yet)
    take both create slots' worth of concurrency; the third lead is dialled all the same."""
    emu = await make_emulator()
    async with await new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3))) as journal:
        for _ in range(2):
            assert await journal.claim(time.time()) is not None
        stop = asyncio.Event()

        async def stop_once_the_third_ended(runner: Runner) -> None:
            for _ in range(6000):  # a hang guard: this takes milliseconds
                if (await journal.get("L4")).state == j.ENDED:
                    break
                await asyncio.sleep(0.01)
            stop.set()

        await asyncio.wait_for(
            dial(
                emu,
                journal,
                stop=stop,
                sidecar=stop_once_the_third_ended,
                concurrency=2,
                lookup_grace_s=3600.0,
                lookup_every_s=0.05,
            ),
            timeout=120,
        )
        states = [row.state for row in await journal.rows()]
    assert states == [j.DISPATCHING, j.DISPATCHING, j.ENDED]  # still waiting, not resent
    assert creates(emu) == 1


def test_the_progress_line_shows_lookups_retries_and_the_last_error() -> None:
    from aioretell.dial.report import Snapshot

    quiet = Snapshot(10, 4, 2, 2, 0, 2.0, 4)
    assert quiet.line() == ("dial: 2/10 done, placed 4, ongoing 2, ended 2, failed 0, 2.0 calls/s")
    troubled = Snapshot(
        10,
        4,
        2,
        2,
        0,
        2.0,
        4,
        retries=3,
        errors=5,
        last_error="create: 503",
        last_error_at=7.0,
        looking_up=2,
    )
    assert troubled.line(now=10.0).endswith(
        "; looking up 2 uncertain creates, retries 3, errors 5, last 3 s ago: create: 503"
    )
