"""The emulator's calls-per-second cap (create_rate_limit_cps) and its timeline of answers."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from aioretell.emulator import Emulator, EmulatorConfig, ManualClock

from .conftest import API_KEY

HEADERS = {"Authorization": f"Bearer {API_KEY}"}


async def test_creates_beyond_the_cap_in_one_second_get_429(
    make_config: Callable[..., EmulatorConfig], clock: ManualClock
) -> None:
    config = make_config(create_rate_limit_cps=3, concurrency_limit=100)
    async with Emulator(config) as emu, aiohttp.ClientSession(headers=HEADERS) as http:

        async def create(i: int) -> tuple[int, str | None]:
            body = {"from_number": "+14155550100", "to_number": f"+1415555{i:04d}"}
            async with http.post(emu.base_url + "/v2/create-phone-call", json=body) as r:
                await r.read()
                return r.status, r.headers.get("Retry-After")

        answers = [await create(i) for i in range(4)]
        assert [status for status, _ in answers] == [201, 201, 201, 429]
        assert answers[-1][1] == "1"
        # Reads are not creates.
        async with http.get(emu.base_url + "/get-concurrency") as r:
            assert r.status == 200
        clock.advance(0.5)
        assert (await create(5))[0] == 429  # still within the same second
        clock.advance(0.5)
        assert (await create(6))[0] == 201  # the window has moved past the first three
    created = [(op, status) for _, op, status in emu.timeline if op == "createPhoneCall"]
    assert created == [("createPhoneCall", s) for s in (201, 201, 201, 429, 429, 201)]
    assert ("getConcurrency", 200) in [(op, status) for _, op, status in emu.timeline]


async def test_the_timeline_records_when_a_request_arrived(
    make_config: Callable[..., EmulatorConfig], clock: ManualClock
) -> None:
    """A create held by a delay fault is stamped with its arrival, the moment the rate limits
    judged it, not with its answer (the clock moves on while it is held)."""
    import asyncio

    from aioretell.emulator.faults import Fault

    async with Emulator(make_config()) as emu, aiohttp.ClientSession(headers=HEADERS) as http:
        emu.faults.script("createPhoneCall", [Fault.delay(0.3)])
        arrived = emu.clock()
        body = {"from_number": "+14155550100", "to_number": "+14155550001"}
        sent = asyncio.ensure_future(http.post(emu.base_url + "/v2/create-phone-call", json=body))
        while not emu.requests:  # it has arrived: the emulator is holding it
            await asyncio.sleep(0.01)
        clock.advance(5.0)
        async with await sent as r:
            assert r.status == 201
    [(at, op, status)] = [entry for entry in emu.timeline if entry[1] == "createPhoneCall"]
    assert (op, status) == ("createPhoneCall", 201)
    assert at == arrived
