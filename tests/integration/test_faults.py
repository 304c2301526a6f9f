"""Each injected fault, over real sockets: what is retried, what is ambiguous, what is lost."""

from __future__ import annotations

import asyncio
import socket

import pytest

import aioretell
from aioretell import AsyncRetell, Timeout
from aioretell.emulator import Emulator, Fault

from .conftest import API_KEY

FROM = "+14155550100"
TO = "+14155550142"


def count(emu: Emulator, operation_id: str) -> int:
    return sum(1 for op, _, _ in emu.requests if op == operation_id)


async def place(client: AsyncRetell) -> aioretell.types.PhoneCallResponse:
    return await client.call.create_phone_call(from_number=FROM, to_number=TO, metadata={"k": 1})


# -- creates: retried only when nothing can have happened -------------------------------------


async def test_create_retries_429_and_dials_once(emu: Emulator, client: AsyncRetell) -> None:
    emu.faults.script("createPhoneCall", [Fault.status(429, retry_after=1.0)])
    call = await place(client)
    assert call.call_id
    assert count(emu, "createPhoneCall") == 2
    assert emu.state.dialed_numbers() == [TO]


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(500),
        Fault.status(503, body=b"<html>upstream down</html>"),
        Fault.reset_after_request(),
        Fault.reset_before_request(),
        Fault.malformed_body(),
    ],
    ids=["500", "503-html", "reset-after", "reset-before", "malformed"],
)
async def test_create_ambiguous_failure_raises_and_is_sent_once(
    emu: Emulator, client: AsyncRetell, fault: Fault
) -> None:
    emu.faults.script("createPhoneCall", [fault])
    with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
        await place(client)
    assert count(emu, "createPhoneCall") == 1
    assert info.value.metadata == {"k": 1}
    assert info.value.request.operation_id == "createPhoneCall"
    assert API_KEY not in str(info.value)
    # The only dial, if any, is the one the ambiguous request made.
    assert emu.state.dialed_numbers() in ([], [TO])


async def test_reset_after_request_really_placed_the_call(
    emu: Emulator, client: AsyncRetell
) -> None:
    emu.faults.script("createPhoneCall", [Fault.reset_after_request()])
    with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
        await place(client)
    assert isinstance(info.value.cause, aioretell.APIConnectionError)
    assert emu.state.dialed_numbers() == [TO]


async def test_opt_in_retries_ambiguous_creates(emu: Emulator) -> None:
    emu.faults.script("createPhoneCall", [Fault.status(502)])
    async with AsyncRetell(
        api_key=API_KEY, base_url=emu.base_url, retry_ambiguous_creates=True
    ) as client:
        client._sleep = _no_sleep
        await place(client)
    assert count(emu, "createPhoneCall") == 2


async def test_create_read_timeout_is_ambiguous(emu: Emulator, client: AsyncRetell) -> None:
    emu.faults.script("createPhoneCall", [Fault.delay(5)])
    slow = client.with_options(timeout=Timeout(read=0.2))
    with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
        await place(slow)
    assert isinstance(info.value.cause, aioretell.APITimeoutError)
    assert count(emu, "createPhoneCall") == 1


async def test_create_retries_when_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    async with AsyncRetell(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}") as client:
        client._sleep = record
        with pytest.raises(aioretell.APIConnectionError) as info:
            await place(client)
    assert info.value.request_sent is False
    assert not isinstance(info.value, aioretell.AmbiguousOutcomeError)
    assert len(slept) == 2  # max_retries=2: three attempts, never written, all retried


async def test_create_pool_timeout_is_retried_not_ambiguous(emu: Emulator) -> None:
    emu.faults.script("getConcurrency", [Fault.delay(1.0)])
    async with AsyncRetell(
        api_key=API_KEY,
        base_url=emu.base_url,
        connection_limit=1,
        max_retries=0,
        timeout=Timeout(pool=0.1, connect=0.0),
    ) as client:
        hog = asyncio.create_task(client.with_options(timeout=Timeout()).concurrency.retrieve())
        while count(emu, "getConcurrency") == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(aioretell.APITimeoutError) as info:
            await place(client)
        assert info.value.request_sent is False
        await hog
    assert count(emu, "createPhoneCall") == 0


# -- safe operations: retried through transient faults --------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        [Fault.status(500), Fault.status(503)],
        [Fault.status(429, retry_after_ms=10)],
        [Fault.status(408)],
        [Fault.status(409)],
        [Fault.malformed_body()],
        [Fault.status(502, body=b"")],
    ],
    ids=["5xx-twice", "429", "408", "409", "malformed", "empty-502"],
)
async def test_safe_read_recovers(emu: Emulator, client: AsyncRetell, faults: list[Fault]) -> None:
    emu.faults.script("getConcurrency", faults)
    limits = await client.concurrency.retrieve()
    assert limits.concurrency_limit == 500
    assert count(emu, "getConcurrency") == len(faults) + 1


async def test_safe_read_recovers_from_resets(emu: Emulator, client: AsyncRetell) -> None:
    # aiohttp itself repeats an idempotent GET once after a disconnect; three resets get past it
    # and reach our retry loop.
    emu.faults.script("getConcurrency", [Fault.reset_before_request()] * 3)
    await client.concurrency.retrieve()
    assert count(emu, "getConcurrency") == 4


async def test_safe_read_gives_up_after_max_retries(emu: Emulator, client: AsyncRetell) -> None:
    emu.faults.script("getConcurrency", [Fault.status(503)] * 5)
    with pytest.raises(aioretell.InternalServerError) as info:
        await client.concurrency.retrieve()
    assert info.value.status_code == 503
    assert count(emu, "getConcurrency") == 3


async def test_safe_read_timeout(emu: Emulator, client: AsyncRetell) -> None:
    emu.faults.script("getConcurrency", [Fault.delay(5)] * 3)
    with pytest.raises(aioretell.APITimeoutError):
        await client.with_options(timeout=Timeout(read=0.1), max_retries=1).concurrency.retrieve()
    assert count(emu, "getConcurrency") == 2


async def test_client_errors_not_retried(emu: Emulator, client: AsyncRetell) -> None:
    emu.faults.script("getConcurrency", [Fault.status(400)])
    with pytest.raises(aioretell.BadRequestError):
        await client.concurrency.retrieve()
    assert count(emu, "getConcurrency") == 1


async def test_emulator_rate_limit_is_honoured(emu: Emulator) -> None:
    from aioretell.emulator import EmulatorConfig

    config = EmulatorConfig(api_key=API_KEY, rate_limit_rps=5.0)
    async with (
        Emulator(config) as limited,
        AsyncRetell(api_key=API_KEY, base_url=limited.base_url, max_retries=5) as client,
    ):
        # A burst of 5 passes, the other 3 are answered 429 and come back after retry-after-ms.
        results = await asyncio.gather(*(client.concurrency.retrieve() for _ in range(8)))
    assert len(results) == 8
    assert count(limited, "getConcurrency") > 8


async def _no_sleep(_: float) -> None:
    return None
