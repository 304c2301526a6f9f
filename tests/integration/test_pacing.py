"""Pacing and fan_out against the emulator over real sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Callable

import aiohttp
import pytest

from aioretell import AsyncRetell, fan_out
from aioretell._exceptions import APIConnectionError, RequestInfo
from aioretell._sansio import HTTPRequest, HTTPResponse
from aioretell._transport import AiohttpTransport, PoolConfig
from aioretell.emulator import Emulator, Fault

from ..manual_time import ManualTime, settle
from .conftest import API_KEY

FROM = "+14155550100"


class Recording(AiohttpTransport):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(PoolConfig())
        self.clock = clock
        self.sends: list[tuple[float, str]] = []

    async def send(
        self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: RequestInfo
    ) -> HTTPResponse:
        self.sends.append((self.clock(), info.operation_id))
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

        def spy(op, turn, status, headers):  # type: ignore[no-untyped-def]
            original(op, turn, status, headers)
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


async def test_cancelled_requests_give_their_turns_back(emu: Emulator) -> None:
    fake = ManualTime()
    transport = Recording(fake.clock)
    async with AsyncRetell(
        api_key=API_KEY, base_url=emu.base_url, rate_limit=1.0, transport=transport
    ) as client:
        client._set_time(fake.clock, fake.sleep)
        await client.concurrency.retrieve()  # at 100: the next turn is at 101
        queued = [asyncio.create_task(client.concurrency.retrieve()) for _ in range(500)]
        await settle()
        for task in queued:
            task.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
        later = [asyncio.create_task(client.concurrency.retrieve()) for _ in range(3)]
        await fake.run_until(110.0)
        done, waiting = await asyncio.wait(later, timeout=30)  # only a guard against a hang
        for task in waiting:
            task.cancel()
        answers = [task.result() for task in done]
    await transport.aclose()
    assert [t for t, _ in transport.sends] == [100.0, 101.0, 102.0, 103.0]
    assert len(answers) == 3 and all(a.concurrency_limit for a in answers)


async def test_a_refused_connection_gives_its_turn_back() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = ManualTime()
    transport = Recording(fake.clock)
    async with AsyncRetell(
        api_key=API_KEY,
        base_url=f"http://127.0.0.1:{port}",
        rate_limit=1.0,
        max_retries=0,
        transport=transport,
    ) as client:
        client._set_time(fake.clock, fake.sleep)

        async def three_in_a_row() -> list[BaseException]:
            errors: list[BaseException] = []
            for _ in range(3):
                with pytest.raises(APIConnectionError) as caught:
                    await client.concurrency.retrieve()
                errors.append(caught.value)
            return errors

        attempts = asyncio.create_task(three_in_a_row())
        await fake.run_until(110.0)
        await asyncio.wait([attempts], timeout=30)  # only a guard against a hang
        attempts.cancel()
        errors = await attempts if not attempts.cancelled() else []
    await transport.aclose()
    assert [getattr(e, "request_sent", None) for e in errors] == [False, False, False]
    # each refused attempt gave its turn back: no request waited for one
    assert [t for t, _ in transport.sends] == [100.0, 100.0, 100.0]
