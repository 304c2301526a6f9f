"""AsyncRetell clients sharing one RedisPacer namespace, against the emulator, over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from aioretell import AsyncRetell, RateLimitError
from aioretell.emulator import Emulator, EmulatorConfig
from aioretell.emulator.faults import Fault
from aioretell.redis_pacer import PacerUnavailableError, RedisPacer

KEY = "key_shared_pacing"
FROM = "+14155550100"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    config = EmulatorConfig(
        api_key=KEY, call_duration_s=60.0, ring_duration_s=0.0, concurrency_limit=1000
    )
    async with Emulator(config) as emulator:
        yield emulator


def creates(emu: Emulator) -> int:
    return sum(1 for op, _, _ in emu.requests if op == "createPhoneCall")


async def test_two_clients_keep_to_one_create_rate(
    emu: Emulator, redis_url: str, namespace: str
) -> None:
    async with (
        RedisPacer(redis_url, namespace=namespace, create_rate_limit=20) as one,
        RedisPacer(redis_url, namespace=namespace, create_rate_limit=20) as two,
        AsyncRetell(api_key=KEY, base_url=emu.base_url, pacer=one) as a,
        AsyncRetell(api_key=KEY, base_url=emu.base_url, pacer=two) as b,
    ):
        started = time.monotonic()
        await asyncio.gather(
            *(
                client.call.create_phone_call(from_number=FROM, to_number=f"+1415555{i:04d}")
                for i in range(15)
                for client in (a, b)
            )
        )
        span = time.monotonic() - started
    assert creates(emu) == 30
    # 30 turns at 20/s shared: at least 29 intervals of 50 ms, less half an interval of
    # tolerance. Alone, each client would have finished its 15 in about 0.7 s.
    assert span >= 29 * 0.05 - 0.025


async def test_a_429_seen_by_one_client_holds_the_other(
    emu: Emulator, redis_url: str, namespace: str
) -> None:
    async with (
        RedisPacer(redis_url, namespace=namespace) as one,
        RedisPacer(redis_url, namespace=namespace) as two,
        AsyncRetell(api_key=KEY, base_url=emu.base_url, pacer=one, max_retries=0) as a,
        AsyncRetell(api_key=KEY, base_url=emu.base_url, pacer=two) as b,
    ):
        emu.faults.script("getConcurrency", [Fault.status(429, retry_after=1)])
        with pytest.raises(RateLimitError):
            await a.concurrency.retrieve()
        await asyncio.sleep(0.05)  # the pause reaches Redis from a's pacer task
        started = time.monotonic()
        await b.concurrency.retrieve()
        held = time.monotonic() - started
    assert held > 0.5  # b never saw a 429 itself: it waited on a's


async def test_redis_down_fails_closed_and_sends_nothing(emu: Emulator, namespace: str) -> None:
    async with (
        RedisPacer("redis://127.0.0.1:1/0", namespace=namespace) as pacer,
        AsyncRetell(api_key=KEY, base_url=emu.base_url, pacer=pacer) as client,
    ):
        with pytest.raises(PacerUnavailableError, match="nothing was sent"):
            await client.call.create_phone_call(from_number=FROM, to_number="+14155551234")
    assert creates(emu) == 0


async def test_redis_down_paces_locally_when_asked(emu: Emulator, namespace: str) -> None:
    async with (
        RedisPacer(
            "redis://127.0.0.1:1/0",
            namespace=namespace,
            create_rate_limit=20,
            on_unavailable="local",
        ) as pacer,
        AsyncRetell(api_key=KEY, base_url=emu.base_url, pacer=pacer) as client,
    ):
        started = time.monotonic()
        await asyncio.gather(
            *(
                client.call.create_phone_call(from_number=FROM, to_number=f"+1415555{i:04d}")
                for i in range(6)
            )
        )
        span = time.monotonic() - started
    assert creates(emu) == 6
    assert span >= 5 * 0.05 - 0.01  # still paced at 20/s, inside this process


def test_a_pacer_and_rates_do_not_mix() -> None:
    pacer = RedisPacer("redis://127.0.0.1:6379/0", namespace="x")
    with pytest.raises(ValueError, match="create_rate_limit"):
        AsyncRetell(api_key=KEY, pacer=pacer, create_rate_limit=5)
    with pytest.raises(TypeError, match="Pacing"):
        AsyncRetell(api_key=KEY, pacer=object())  # type: ignore[arg-type]
