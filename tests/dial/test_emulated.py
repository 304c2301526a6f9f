"""The dialer's in-process emulator keeps its calls beside the journal, across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioretell import AsyncRetell
from aioretell.dial.emulated import EMULATOR_KEY, in_process_emulator, record_path
from aioretell.dial.journal import JournalError
from aioretell.dial.reconcile import call_metadata, find_call

from .conftest import FROM


async def _create(url: str, key: str) -> str:
    async with AsyncRetell(api_key=EMULATOR_KEY, base_url=url) as client:
        call = await client.call.create_phone_call(
            from_number=FROM,
            to_number="+12125550100",
            metadata=call_metadata("cmp_x", "L2", 1),
            idempotency_key=key,
        )
        return call.call_id


async def test_a_restarted_emulator_has_the_calls_and_keys_of_the_last(tmp_path: Path) -> None:
    record = record_path(tmp_path / "leads.journal.db")
    assert record.name == "leads.journal.emulator.ndjson"
    async with in_process_emulator(record, fresh=True) as first:
        made = await _create(first.base_url, "cmp_x-L2-1")
    with record.open("ab") as file:
        file.write(b'{"call_id": "call_cut_sh')  # a kill in the middle of a line
    async with in_process_emulator(record) as second:
        async with AsyncRetell(api_key=EMULATOR_KEY, base_url=second.base_url) as client:
            found = await find_call(client, "cmp_x", "L2", 1)
        assert found is not None and found.call_id == made
        # The same idempotency key: the same call, not a second one.
        assert await _create(second.base_url, "cmp_x-L2-1") == made
        assert second.state.dialed_numbers() == ["+12125550100"]
        # New ids never collide with restored ones.
        other = await _create(second.base_url, "cmp_x-L2-2")
        assert other != made
    async with in_process_emulator(record, fresh=True) as third:  # a new campaign: empty
        assert third.state.calls == {}


async def test_a_damaged_record_is_refused(tmp_path: Path) -> None:
    record = tmp_path / "r.ndjson"
    record.write_bytes(b"not json\n{}\n")
    with pytest.raises(JournalError, match="line 1 of the emulator's record is damaged"):
        async with in_process_emulator(record):
            pass
