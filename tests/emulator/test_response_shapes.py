"""Every operation's successful answer decodes with aioretell's response type and with the
official SDK's pydantic models, both strictly."""

from __future__ import annotations

import msgspec
from retell import AsyncRetell

from aioretell._operation_table import OPERATIONS
from aioretell.emulator import Emulator
from aioretell.emulator.conform import conform
from aioretell.types.phone_number import PhoneNumberResponse
from tests.emulator.recording import Recorder
from tests.scenarios import SCENARIO, run_scenario


async def test_every_answer_decodes_strictly(emu: Emulator, api_key: str) -> None:
    recorder = Recorder()
    # strict: the SDK validates each answer with its pydantic models and raises on a mismatch.
    client: AsyncRetell = recorder.client(api_key, emu.base_url, strict=True)
    try:
        await run_scenario(client)
    finally:
        await client.close()
    assert len(recorder.exchanges) == len(emu.requests) == len(SCENARIO)
    checked: set[str] = set()
    for (operation_id, _, _), exchange in zip(emu.requests, recorder.exchanges, strict=True):
        op = OPERATIONS[operation_id]
        assert 200 <= exchange.status < 300
        if op.response_type is None:
            assert exchange.body == b"", operation_id
        else:
            msgspec.json.decode(exchange.body, type=op.response_type, strict=True)
        checked.add(operation_id)
    assert checked == set(OPERATIONS)


def test_conform_fills_required_fields_and_drops_unknown_ones() -> None:
    record = {
        "phone_number": "+14155550100",
        "area_code": 415.0,  # a float-typed request value in an integer response field
        "sip_trunk_auth_password": "secret",  # write-only: not part of the response
        "inbound_agents": [{"agent_id": "agent_1", "weight": 1, "extra": True}],
    }
    body = conform(PhoneNumberResponse, record, now_ms=1234)
    assert body == {
        "phone_number": "+14155550100",
        "phone_number_type": "emulated_phone_number_type",
        "area_code": 415,
        "inbound_agents": [{"agent_id": "agent_1", "weight": 1}],
        "last_modification_timestamp": 1234,
    }
    msgspec.convert(body, PhoneNumberResponse)
