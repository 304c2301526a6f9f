"""Pacing and fan_out against the emulator over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp

from aioretell import AsyncRetell, fan_out
from aioretell._exceptions import RequestInfo
from aioretell._sansio import HTTPRequest, HTTPResponse
from aioretell._transport import AiohttpTransport, PoolConfig
from aioretell.emulator import Emulator, Fault

from .conftest import API_KEY

FROM = "+14155550100"


class Recording(AiohttpTransport):
    def __init__(self) -> None:
        super().__init__(PoolConfig())
        self.sends: list[tuple[float, str]] = []

    async def send(
        self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: RequestInfo
    ) -> HTTPResponse:
        self.sends.append((time.monotonic(), info.operation_id))
        return await super().send(request, timeout, info)


async def test_one_429_pauses_every_create_of_a_plain_gather(emu: Emulator) -> None:
    emu.faults.script("createPhoneCall", [Fault.ok()] * 5 + [Fault.status(429, retry_after_ms=300)])
    transport = Recording()
    async with AsyncRetell(
        api_key=API_KEY, base_url=emu.base_url, create_rate_limit=200, transport=transport
    ) as client:
        pacer = client._shared.pacer
        seen: list[tuple[float, float]] = []
        original = pacer.on_response

        def spy(op, status, headers, sent_at):  # type: ignore[no-untyped-def]
            original(op, status, headers, sent_at)
            if status == 429:
                seen.append((time.monotonic(), pacer.creates.paused_until))

        pacer.on_response = spy  # type: ignore[method-assign]
        numbers = [f"+1415555{i:04d}" for i in range(30)]
        await asyncio.gather(
            *(client.call.create_phone_call(from_number=FROM, to_number=n) for n in numbers)
        )
        reads_during_pause = await client.concurrency.retrieve()  # reads are not paused
    await transport.aclose()
    assert reads_during_pause.concurrency_limit
    [(answered_at, paused_until)] = seen
    creates = [t for t, op in transport.sends if op == "createPhoneCall"]
    assert len(creates) == 31  # 30 calls, one of them retried after the 429
    # No create left between the 429's answer and the end of the pause it asked for.
    assert not [t for t in creates if answered_at <= t < paused_until]
    assert paused_until - answered_at > 0.25
    assert sorted(emu.state.dialed_numbers()) == sorted(numbers)


async def test_fixed_rate_spaces_requests(emu: Emulator) -> None:
    transport = Recording()
    async with AsyncRetell(
        api_key=API_KEY, base_url=emu.base_url, rate_limit=50, transport=transport
    ) as client:
        await asyncio.gather(*(client.concurrency.retrieve() for _ in range(15)))
    await transport.aclose()
    times = [t for t, _ in transport.sends]
    for i, t in enumerate(times):
        assert t - times[0] >= i / 50 - 0.002


async def test_max_concurrency_bounds_requests_in_flight(emu: Emulator) -> None:
    emu.faults.script("getConcurrency", [Fault.delay(0.05)] * 12)
    in_flight = peak = 0

    class Counting(AiohttpTransport):
        async def send(
            self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: RequestInfo
        ) -> HTTPResponse:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await super().send(request, timeout, info)
            finally:
                in_flight -= 1

    transport = Counting(PoolConfig())
    async with AsyncRetell(
        api_key=API_KEY, base_url=emu.base_url, max_concurrency=3, transport=transport
    ) as client:
        await asyncio.gather(*(client.concurrency.retrieve() for _ in range(12)))
    await transport.aclose()
    assert peak == 3


async def test_fan_out_with_faults_accounts_for_every_lead(emu: Emulator) -> None:
    emu.faults.set_probability(
        "createPhoneCall",
        status_429=0.01,
        status_500=0.01,
        status_503=0.01,
        reset_before=0.01,
        reset_after=0.01,
        retry_after=0.01,
    )
    async with AsyncRetell(
        api_key=API_KEY, base_url=emu.base_url, create_rate_limit=1000
    ) as client:

        async def place(i: int) -> str:
            call = await client.call.create_phone_call(
                from_number=FROM, to_number=f"+1415{i:07d}", metadata={"row": i}
            )
            return call.call_id

        indexes: list[int] = []
        async with fan_out(place, range(400), concurrency=40) as outcomes:
            async for outcome in outcomes:
                indexes.append(outcome.index)
    assert sorted(indexes) == list(range(400))
    assert all(count == 1 for count in Counter(emu.state.dialed_numbers()).values())
