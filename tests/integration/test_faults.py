"""Each injected fault, over real sockets: what is retried, what is ambiguous, what is lost."""

from __future__ import annotations

import asyncio
import socket

import pytest

import aioretell
from aioretell import AsyncRetell, Timeout
from aioretell.emulator import Emulator, Fault
from aioretell.emulator.state import DEFAULT_AGENT_ID

from .conftest import API_KEY

FROM = "+14155550100"
TO = "+14155550142"


#: Faults after which the client cannot tell whether the create it sent happened.
each_ambiguous_fault = pytest.mark.parametrize(
    "fault",
    [
        Fault.status(500),
        Fault.status(503, body=b"<html>upstream down</html>"),
        Fault.reset_after_request(),
        Fault.reset_before_request(),
    ],
    ids=["500", "503-html", "reset-after", "reset-before"],
)


def count(emu: Emulator, operation_id: str) -> int:
    return sum(1 for op, _, _ in emu.requests if op == operation_id)


async def place(client: AsyncRetell) -> aioretell.types.PhoneCallResponse:
    return await client.call.create_phone_call(from_number=FROM, to_number=TO, metadata={"k": 1})


# -- creates: retried only when nothing can have happened ----------------------------------------


async def test_create_retries_429_and_dials_once(emu: Emulator, client: AsyncRetell) -> None:
    emu.faults.script("createPhoneCall", [Fault.status(429, retry_after=1.0)])
    call = await place(client)
    assert call.call_id
    assert count(emu, "createPhoneCall") == 2
    assert emu.state.dialed_numbers() == [TO]


async def start_web_call(client: AsyncRetell) -> aioretell.types.CreateWebCallResponse:
    """A create with side effects and no idempotency key in the API."""
    return await client.call.create_web_call(agent_id=DEFAULT_AGENT_ID, metadata={"k": 1})


@each_ambiguous_fault
async def test_create_ambiguous_failure_raises_and_is_sent_once(
    emu: Emulator, client: AsyncRetell, fault: Fault
) -> None:
    emu.faults.script("createWebCall", [fault])
    with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
        await start_web_call(client)
    assert count(emu, "createWebCall") == 1
    assert info.value.metadata == {"k": 1}
    assert info.value.idempotency_key is None
    assert info.value.request.operation_id == "createWebCall"
    assert API_KEY not in str(info.value)
    # The only call, if any, is the one the ambiguous request made.
    assert len(emu.state.calls) in (0, 1)


async def test_reset_after_request_really_placed_the_call(
    emu: Emulator, client: AsyncRetell
) -> None:
    emu.faults.script("createWebCall", [Fault.reset_after_request()])
    with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
        await start_web_call(client)
    assert isinstance(info.value.cause, aioretell.APIConnectionError)
    assert len(emu.state.calls) == 1


async def test_create_answered_with_a_malformed_body_is_not_ambiguous(
    emu: Emulator, client: AsyncRetell
) -> None:
    # The server answered 201 (the call exists) with a complete body holding half an object:
    # the raw body is handed back, nothing is repeated.
    emu.faults.script("createWebCall", [Fault.malformed_body()])
    with pytest.raises(aioretell.APIResponseValidationError) as info:
        await start_web_call(client)
    assert info.value.status_code == 201
    [call] = emu.state.calls.values()
    assert call.call_id.encode() in info.value.body
    assert count(emu, "createWebCall") == 1


# -- create_phone_call: the client's idempotency key makes its retries safe --------------------


@each_ambiguous_fault
async def test_create_phone_call_is_retried_under_its_key_and_dials_once(
    emu: Emulator, client: AsyncRetell, fault: Fault
) -> None:
    emu.faults.script("createPhoneCall", [fault])
    call = await place(client)
    assert count(emu, "createPhoneCall") == 2
    # A reset after the write placed the call; the retry, carrying the same key, got it back.
    assert emu.state.dialed_numbers() == [TO]
    assert list(emu.state.calls) == [call.call_id]


async def test_create_phone_call_read_timeout_is_retried_under_its_key(
    emu: Emulator, client: AsyncRetell
) -> None:
    emu.faults.script("createPhoneCall", [Fault.delay(1.0)])
    hurried = client.with_options(timeout=Timeout(read=0.2))
    call = await place(hurried)  # not AmbiguousOutcomeError: retried under the same key
    assert count(emu, "createPhoneCall") == 2
    # The retry dialed; the slow first request, should it still land, finds the key taken.
    assert list(emu.state.calls) == [call.call_id]


async def test_create_phone_call_failing_every_retry_is_ambiguous_with_its_key(
    emu: Emulator, client: AsyncRetell
) -> None:
    emu.faults.script("createPhoneCall", [Fault.reset_after_request()] * 3)
    with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
        await place(client)
    key = info.value.idempotency_key
    assert key is not None and key in str(info.value)
    assert info.value.request.attempts == 3
    assert count(emu, "createPhoneCall") == 3
    assert emu.state.dialed_numbers() == [TO]  # three attempts, one call
    # Sent again under the key the error carries, it returns that call rather than dialing.
    call = await client.call.create_phone_call(from_number=FROM, to_number=TO, idempotency_key=key)
    assert list(emu.state.calls) == [call.call_id]
    assert emu.state.dialed_numbers() == [TO]


async def test_create_phone_call_with_the_callers_key_keeps_the_create_rule(
    emu: Emulator, client: AsyncRetell
) -> None:
    # The caller who brings a key owns its retries (the dialer resends it later, under the
    # same key, after looking the call up).
    emu.faults.script("createPhoneCall", [Fault.reset_after_request()])
    with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
        await client.call.create_phone_call(
            from_number=FROM, to_number=TO, idempotency_key="lead-42-attempt-1"
        )
    assert info.value.idempotency_key == "lead-42-attempt-1"
    assert count(emu, "createPhoneCall") == 1
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
    emu.faults.script("createWebCall", [Fault.delay(5)])
    slow = client.with_options(timeout=Timeout(read=0.2))
    with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
        await start_web_call(slow)
    assert isinstance(info.value.cause, aioretell.APITimeoutError)
    assert count(emu, "createWebCall") == 1


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
        [Fault.status(502, body=b"")],
    ],
    ids=["5xx-twice", "429", "408", "409", "empty-502"],
)
async def test_safe_read_recovers(emu: Emulator, client: AsyncRetell, faults: list[Fault]) -> None:
    emu.faults.script("getConcurrency", faults)
    limits = await client.concurrency.retrieve()
    assert limits.concurrency_limit == 500
    assert count(emu, "getConcurrency") == len(faults) + 1


async def test_safe_read_recovers_from_resets(emu: Emulator, client: AsyncRetell) -> None:
    emu.faults.script("getConcurrency", [Fault.reset_before_request()] * 2)
    await client.concurrency.retrieve()
    assert count(emu, "getConcurrency") == 3


async def test_resets_get_max_retries_and_no_more(emu: Emulator, client: AsyncRetell) -> None:
    # aiohttp would resend a GET once more by itself after each reset; max_retries=2 is three
    # requests in all.
    emu.faults.script("getConcurrency", [Fault.reset_before_request()] * 6)
    with pytest.raises(aioretell.APIConnectionError):
        await client.concurrency.retrieve()
    assert count(emu, "getConcurrency") == 3


async def test_safe_read_with_a_malformed_body_is_not_retried(
    emu: Emulator, client: AsyncRetell
) -> None:
    emu.faults.script("getConcurrency", [Fault.malformed_body()])
    with pytest.raises(aioretell.APIResponseValidationError) as info:
        await client.concurrency.retrieve()
    assert info.value.body.startswith(b"{")
    assert count(emu, "getConcurrency") == 1


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
