"""Retry decisions as tables; the tenacity loop with injected sleep and a scripted transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec
import pytest

from aioretell import AsyncRetell
from aioretell import _exceptions as E
from aioretell._operation import Operation, RetrySafety
from aioretell._retry import Decision, RetryPolicy, decide
from aioretell._sansio import HTTPRequest, HTTPResponse

SAFE = Operation("getThing", "GET", "/get-thing", (), RetrySafety.SAFE)
CREATE = Operation("createThing", "POST", "/create-thing", (), RetrySafety.SIDE_EFFECT)


def status(code: int, headers: dict[str, str] | None = None) -> E.APIStatusError:
    return E.status_error_class(code)("x", status_code=code, body=b"", headers=headers or {})


WRITTEN = E.APIConnectionError(request_sent=True)
NOT_WRITTEN = E.APIConnectionError(request_sent=False)
READ_TIMEOUT = E.APITimeoutError(request_sent=True)
POOL_TIMEOUT = E.APITimeoutError(request_sent=False)


@pytest.mark.parametrize(
    ("error", "safe", "create"),
    [
        (status(400), Decision.FAIL, Decision.FAIL),
        (status(401), Decision.FAIL, Decision.FAIL),
        (status(402), Decision.FAIL, Decision.FAIL),
        (status(404), Decision.FAIL, Decision.FAIL),
        (status(422), Decision.FAIL, Decision.FAIL),
        (status(408), Decision.RETRY, Decision.AMBIGUOUS),
        (status(409), Decision.RETRY, Decision.AMBIGUOUS),
        (status(429), Decision.RETRY, Decision.RETRY),
        (status(500), Decision.RETRY, Decision.AMBIGUOUS),
        (status(503), Decision.RETRY, Decision.AMBIGUOUS),
        (WRITTEN, Decision.RETRY, Decision.AMBIGUOUS),
        (READ_TIMEOUT, Decision.RETRY, Decision.AMBIGUOUS),
        (NOT_WRITTEN, Decision.RETRY, Decision.RETRY),
        (POOL_TIMEOUT, Decision.RETRY, Decision.RETRY),
        (ValueError("bug"), Decision.FAIL, Decision.FAIL),
        (asyncio.CancelledError(), Decision.FAIL, Decision.FAIL),
    ],
)
def test_decision_table(error: BaseException, safe: Decision, create: Decision) -> None:
    assert decide(SAFE, error) is safe
    assert decide(CREATE, error) is create


@pytest.mark.parametrize(
    ("error", "keyed", "plain"),
    [
        (status(500), True, False),
        (status(408), True, False),
        (WRITTEN, True, False),
        (READ_TIMEOUT, True, False),
        (status(429), True, True),
        (NOT_WRITTEN, True, True),
        (status(422), False, False),
        (asyncio.CancelledError(), False, False),
    ],
)
def test_a_create_carrying_the_clients_key_retries_ambiguous_failures(
    error: BaseException, keyed: bool, plain: bool
) -> None:
    policy = RetryPolicy()
    assert policy.should_retry(CREATE, error, keyed=True) is keyed
    assert policy.should_retry(CREATE, error) is plain
    # Still ambiguous in itself: the last failure, retries spent, raises AmbiguousOutcomeError.
    assert decide(CREATE, error) is not Decision.RETRY or plain


@pytest.mark.parametrize(
    ("headers", "attempt", "expected"),
    [
        ({"retry-after-ms": "1200"}, 1, 1.2),
        ({"retry-after": "2"}, 3, 2.0),
        ({"retry-after": "999"}, 1, 60.0),
    ],
)
def test_wait_prefers_server_hint(headers: dict[str, str], attempt: int, expected: float) -> None:
    assert RetryPolicy().wait_seconds(status(429, headers), attempt) == expected


def test_wait_without_hint_is_bounded_backoff() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=8.0)
    for attempt in range(1, 10):
        wait = policy.wait_seconds(status(503), attempt)
        assert 0.0 <= wait <= min(8.0, 0.5 * 2 ** (attempt - 1))


# -- the pipeline with a scripted transport -----------------------------------------------


class Reply(msgspec.Struct):
    ok: bool


Step = Callable[[], HTTPResponse]


class ScriptedTransport:
    def __init__(self, *steps: Step | BaseException) -> None:
        self.steps = list(steps)
        self.sent: list[HTTPRequest] = []
        self.closed = False

    async def send(
        self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: E.RequestInfo
    ) -> HTTPResponse:
        self.sent.append(request)
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step()

    async def aclose(self) -> None:
        self.closed = True


def ok() -> HTTPResponse:
    return HTTPResponse(200, {}, b'{"ok": true}')


def reply(code: int, headers: dict[str, str] | None = None) -> Step:
    return lambda: HTTPResponse(code, headers or {}, b'{"status":"error","message":"m"}')


SAFE_REPLY = Operation(
    "getThing",
    "GET",
    "/get-thing",
    (),
    RetrySafety.SAFE,
    response_ref="tests.unit.test_retry:Reply",
)
CREATE_REPLY = Operation(
    "createThing",
    "POST",
    "/create-thing",
    (),
    RetrySafety.SIDE_EFFECT,
    response_ref="tests.unit.test_retry:Reply",
)


class FakeTime:
    """A clock that only moves when someone sleeps, recording every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_client(transport: ScriptedTransport, **kwargs: Any) -> tuple[AsyncRetell, list[float]]:
    client = AsyncRetell(
        api_key="key_unit", base_url="http://retell.test", transport=transport, **kwargs
    )
    fake = FakeTime()
    client._set_time(fake.clock, fake.sleep)
    return client, fake.slept


async def test_safe_operation_retries_5xx_then_succeeds() -> None:
    transport = ScriptedTransport(reply(503), reply(500, {"retry-after": "1"}), ok)
    client, slept = make_client(transport)
    async with client:
        assert await client._request(SAFE_REPLY) == Reply(ok=True)
    assert len(transport.sent) == 3
    assert slept[1] == 1.0


async def test_retries_stop_at_max_retries() -> None:
    transport = ScriptedTransport(reply(503), reply(503), reply(503), ok)
    client, slept = make_client(transport, max_retries=2)
    async with client:
        with pytest.raises(E.InternalServerError):
            await client._request(SAFE_REPLY)
    assert len(transport.sent) == 3
    assert len(slept) == 2


async def test_create_retries_429_with_server_wait() -> None:
    transport = ScriptedTransport(reply(429, {"retry-after-ms": "700"}), ok)
    client, slept = make_client(transport)
    async with client:
        assert await client._request(CREATE_REPLY) == Reply(ok=True)
    assert slept == [0.7]


async def test_create_retries_when_request_never_left() -> None:
    transport = ScriptedTransport(E.APIConnectionError(request_sent=False), ok)
    client, _ = make_client(transport)
    async with client:
        assert await client._request(CREATE_REPLY) == Reply(ok=True)
    assert len(transport.sent) == 2


@pytest.mark.parametrize(
    "failure",
    [reply(500), reply(408), reply(409), E.APIConnectionError(), E.APITimeoutError()],
)
async def test_create_ambiguous_failure_is_not_retried(failure: Step | BaseException) -> None:
    transport = ScriptedTransport(failure, ok)
    client, slept = make_client(transport)
    async with client:
        with pytest.raises(E.AmbiguousOutcomeError) as info:
            await client._request(CREATE_REPLY, metadata={"lead": "7"})
    assert len(transport.sent) == 1
    assert slept == []
    assert info.value.metadata == {"lead": "7"}
    assert info.value.request.operation_id == "createThing"
    assert isinstance(info.value.cause, E.APIError)
    assert info.value.__cause__ is info.value.cause


async def test_create_ambiguous_retried_when_asked() -> None:
    transport = ScriptedTransport(reply(500), E.APIConnectionError(), ok)
    client, _ = make_client(transport, retry_ambiguous_creates=True)
    async with client:
        assert await client._request(CREATE_REPLY) == Reply(ok=True)
    assert len(transport.sent) == 3


async def test_ambiguous_after_exhausting_opt_in_retries_still_says_so() -> None:
    transport = ScriptedTransport(reply(502), reply(502))
    client, _ = make_client(transport, retry_ambiguous_creates=True, max_retries=1)
    async with client:
        with pytest.raises(E.AmbiguousOutcomeError) as info:
            await client._request(CREATE_REPLY)
    assert info.value.request.attempts == 2


async def test_client_errors_are_never_retried() -> None:
    transport = ScriptedTransport(reply(422), ok)
    client, _ = make_client(transport)
    async with client:
        with pytest.raises(E.UnprocessableEntityError):
            await client._request(SAFE_REPLY)
    assert len(transport.sent) == 1


@pytest.mark.parametrize("op", [SAFE_REPLY, CREATE_REPLY])
async def test_cancellation_is_never_retried_or_wrapped(op: Operation) -> None:
    transport = ScriptedTransport(asyncio.CancelledError(), ok)
    client, slept = make_client(transport, retry_ambiguous_creates=True)
    async with client:
        with pytest.raises(asyncio.CancelledError):
            await client._request(op)
    assert len(transport.sent) == 1
    assert slept == []


async def test_with_options_changes_retries_only_for_the_view() -> None:
    transport = ScriptedTransport(reply(503), reply(503), reply(503))
    client, _ = make_client(transport)
    async with client:
        view = client.with_options(max_retries=0)
        with pytest.raises(E.InternalServerError):
            await view._request(SAFE_REPLY)
        assert len(transport.sent) == 1
        assert client.max_retries == 2
        assert view.max_retries == 0
    assert view.is_closed
