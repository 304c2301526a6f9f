"""The dispatch loop against a real-time emulator: once per lead, reconcile, requeue, redial."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aioretell import AsyncRetell
from aioretell.dial import journal as j
from aioretell.dial.capacity import CapacityGate
from aioretell.dial.reconcile import call_metadata, find_call, idempotency_key
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


async def test_every_lead_called_once_and_ended(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator()
    wanted = numbers(40)
    journal = new_journal(tmp_path, write_csv(tmp_path / "l.csv", wanted))
    with journal:
        runner = await dial(emu, journal, concurrency=8)
        rows = journal.rows()
    assert {row.state for row in rows} == {j.ENDED}
    assert await calls_per_number(emu.base_url) == dict.fromkeys(wanted, 1)
    assert runner.stats.placed == 40 and len(runner.stats.create_ms) == 40
    # Every create carried the campaign, the row and the attempt.
    call = emu.state.calls[rows[0].call_id or ""]
    assert call.metadata == call_metadata(CAMPAIGN, rows[0].ref, 1)
    assert call.dynamic_variables == {"name": "Lead 0"}


async def test_dispatching_rows_are_reconciled(tmp_path: Path, make_emulator: Make) -> None:
    """A crash between the two commits: one create had landed, the other had not."""
    emu = await make_emulator()
    journal = new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3)))
    with journal:
        landed, lost = journal.get("L2"), journal.get("L3")
        journal.transition(landed, j.DISPATCHING)
        journal.transition(lost, j.DISPATCHING)
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
        runner = await dial(emu, journal)
        assert journal.get("L2").call_id == made.call_id  # found: adopted, not redialled
        assert {row.state for row in journal.rows()} == {j.ENDED}
    assert (runner.stats.reconciled_found, runner.stats.reconciled_missing) == (1, 1)
    assert set((await calls_per_number(emu.base_url)).values()) == {1}


async def test_ambiguous_create_is_looked_up_not_repeated(
    tmp_path: Path, make_emulator: Make
) -> None:
    emu = await make_emulator()
    emu.faults.script("createPhoneCall", [Fault.reset_after_request(), Fault.status(500)])
    journal = new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(5)))
    with journal:
        runner = await dial(emu, journal, concurrency=1, backoff_s=0.01)
        assert {row.state for row in journal.rows()} == {j.ENDED}
    # The reset placed its call (found); the 500 placed none (redialled with the same key).
    assert (runner.stats.reconciled_found, runner.stats.reconciled_missing) == (1, 1)
    assert set((await calls_per_number(emu.base_url)).values()) == {1}


async def test_concurrency_limit_reached_is_requeued(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator(concurrency_limit=2)
    wanted = numbers(6)
    journal = new_journal(tmp_path, write_csv(tmp_path / "l.csv", wanted))
    ungated = CapacityGate(None)  # no get-concurrency: creates overrun the account's limit
    with journal:
        runner = await dial(emu, journal, gate=ungated, concurrency=6, backoff_s=0.05)
        rows = journal.rows()
    assert runner.stats.requeued > 0
    assert {row.state for row in rows} == {j.ENDED}
    assert all(row.disconnection_reason != "concurrency_limit_reached" for row in rows)
    assert max(row.attempt for row in rows) > 1
    # Each lead was connected exactly once; the rejected attempts never rang.
    connected = [c.to_number for c in emu.state.calls.values() if c.rejected_reason is None]
    assert sorted(connected) == sorted(wanted)


async def test_requeues_are_bounded(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator(outcomes_by_suffix=(("0100", "no_concurrency_fallback"),))
    journal = new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(1)))
    with journal:
        await dial(emu, journal, max_requeues=2, backoff_s=0.01)
        row = journal.get("L2")
    assert (row.state, row.attempt, row.disconnection_reason) == (
        j.ENDED,
        3,
        "no_concurrency_fallback",
    )


async def test_capacity_gate_keeps_live_calls_within_the_limit(
    tmp_path: Path, make_emulator: Make
) -> None:
    emu = await make_emulator(concurrency_limit=5, reserved_inbound_concurrency=2)
    journal = new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(12)))
    with journal:
        await dial(emu, journal, concurrency=12)
        rows = journal.rows()
    assert {row.disconnection_reason for row in rows} <= {"agent_hangup", "user_hangup"}
    assert all(row.attempt == 1 for row in rows)


async def test_busy_and_no_answer_are_terminal_without_redial(
    tmp_path: Path, make_emulator: Make
) -> None:
    emu = await make_emulator(
        outcomes_by_suffix=(("0100", "dial_busy"), ("0101", "invalid_destination"))
    )
    journal = new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3)))
    with journal:
        await dial(emu, journal)
        outcomes = {row.to_number: row.disconnection_reason for row in journal.rows()}
    assert outcomes["+12125550100"] == "dial_busy"
    assert outcomes["+12125550101"] == "invalid_destination"
    assert set((await calls_per_number(emu.base_url)).values()) == {1}


async def test_redial(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator(
        outcomes_by_suffix=(("0100", "dial_no_answer"), ("0101", "marked_as_spam"))
    )
    journal = new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3)))
    with journal:
        runner = await dial(emu, journal, redial=2, redial_delay_s=0.01)
        busy, spam, fine = journal.rows()
    assert (busy.attempt, busy.redials, busy.disconnection_reason) == (3, 2, "dial_no_answer")
    assert (spam.attempt, spam.redials) == (1, 0)  # never redialled
    assert fine.attempt == 1
    assert runner.stats.redialled == 2
    counts = await calls_per_number(emu.base_url)
    assert counts == {"+12125550100": 3, "+12125550101": 1, "+12125550102": 1}


async def test_refused_create_fails_the_row_only(tmp_path: Path, make_emulator: Make) -> None:
    emu = await make_emulator()
    emu.faults.script("createPhoneCall", [Fault.status(400)])
    journal = new_journal(tmp_path, write_csv(tmp_path / "l.csv", numbers(3)))
    with journal:
        runner = await dial(emu, journal, concurrency=1)
        states = [row.state for row in journal.rows()]
    assert states == [j.FAILED, j.ENDED, j.ENDED]
    assert runner.stats.failed == 1


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
