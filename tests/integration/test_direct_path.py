"""The client's hot path over real sockets: read deadlines kept by the watchdog, and the first
attempt that a client with nothing to pace makes through its transport's ``exchange`` directly.

Every request of such a client goes the direct way, the first one (which opens the pool)
included; ``test_requests_with_nothing_to_pace_skip_send`` proves it does. Tests marked
``warm`` send one good request first, so the request under test runs on a pooled connection
rather than on one it opens.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import aioretell
from aioretell import AsyncRetell, Timeout

from .loopback import Answer, LoopbackServer, Received, http_response
from .test_wire import API_KEY, assert_key_unreachable, garbage

#: A full phone call: what create-phone-call and get-call answer.
CALL = (Path(__file__).parent.parent / "fixtures" / "create_phone_call.json").read_bytes()
CALL_ID = json.loads(CALL)["call_id"]
FROM, TO = "+14155550100", "+14155550142"


async def _no_sleep(_: float) -> None:
    return None


async def ok(_: Received, writer: asyncio.StreamWriter) -> bool:
    writer.write(http_response(200, CALL))
    await writer.drain()
    return True


class Peer:
    """Answers the first ``good`` requests well, the rest with ``then``; holds silent answers
    until the test ends (``release``)."""

    def __init__(self, then: Answer, good: int) -> None:
        self.then = then
        self.good = good
        self.seen = 0
        self.released = asyncio.Event()

    async def __call__(self, received: Received, writer: asyncio.StreamWriter) -> bool:
        self.seen += 1
        if self.seen <= self.good:
            return await ok(received, writer)
        return await self.then(received, writer)

    async def silent(self, _: Received, __: asyncio.StreamWriter) -> bool:
        await self.released.wait()
        return False


warm_and_cold = pytest.mark.parametrize("warm", [False, True], ids=["first", "warm"])


# -- read deadlines ----------------------------------------------------------------------------


@warm_and_cold
async def test_a_silent_peer_fails_a_read_at_its_deadline(warm: bool) -> None:
    peer = Peer(garbage, 0)  # replaced below: the answer needs the peer itself
    async with LoopbackServer(peer) as server:
        peer.then, peer.good = peer.silent, int(warm)
        try:
            async with AsyncRetell(
                api_key=API_KEY, base_url=server.url, timeout=Timeout(read=0.2), max_retries=0
            ) as client:
                if warm:
                    await client.call.retrieve("call_0")
                with pytest.raises(aioretell.APITimeoutError) as info:
                    await client.call.retrieve("call_1")
        finally:
            peer.released.set()
    assert info.value.request_sent is True
    assert "Timed out reading the response of getCall" in str(info.value)
    assert info.value.request is not None and info.value.request.url.endswith("/call_1")
    assert len(server.received) == 1 + int(warm)
    assert_key_unreachable(info.value)


@warm_and_cold
async def test_a_create_past_its_read_deadline_is_ambiguous(warm: bool) -> None:
    peer = Peer(garbage, int(warm))
    peer.then = peer.silent
    async with LoopbackServer(peer) as server:
        try:
            async with AsyncRetell(
                api_key=API_KEY, base_url=server.url, timeout=Timeout(read=0.2)
            ) as client:
                client._sleep = _no_sleep
                if warm:
                    await client.call.retrieve("call_0")
                with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
                    await client.call.create_web_call(agent_id="agent_1")
        finally:
            peer.released.set()
    assert isinstance(info.value.cause, aioretell.APITimeoutError)
    assert info.value.request.url.endswith("/v3/create-web-call")
    assert len(server.received) == 1 + int(warm)  # not repeated


async def test_create_phone_call_past_its_read_deadline_is_retried_under_its_key() -> None:
    peer = Peer(garbage, 1)
    answers = iter([peer.silent, ok])

    async def then(received: Received, writer: asyncio.StreamWriter) -> bool:
        return await next(answers)(received, writer)

    peer.then = then
    async with LoopbackServer(peer) as server:
        try:
            async with AsyncRetell(
                api_key=API_KEY, base_url=server.url, timeout=Timeout(read=0.2)
            ) as client:
                client._sleep = _no_sleep
                await client.call.retrieve("call_0")
                call = await client.call.create_phone_call(from_number=FROM, to_number=TO)
        finally:
            peer.released.set()
    assert call.call_id == CALL_ID
    creates = [json.loads(r.body) for r in server.received[1:]]
    assert len(creates) == 2
    assert creates[0]["idempotency_key"] == creates[1]["idempotency_key"]


async def test_a_view_with_a_shorter_read_deadline_wakes_the_watchdog_sooner() -> None:
    # The pool's watchdog sleeps towards the default 60 s deadline of a slow read; a view's
    # 0.2 s deadline must still fail on time.
    peer = Peer(garbage, 1)
    peer.then = peer.silent
    async with LoopbackServer(peer) as server:
        try:
            async with AsyncRetell(api_key=API_KEY, base_url=server.url, max_retries=0) as client:
                await client.call.retrieve("call_0")
                slow = asyncio.create_task(client.call.retrieve("call_slow"))
                while len(server.received) < 2:
                    await asyncio.sleep(0.01)
                hurried = client.with_options(timeout=Timeout(read=0.2))
                with pytest.raises(aioretell.APITimeoutError):
                    await hurried.call.retrieve("call_1")
                assert not slow.done()  # its own deadline is a minute away
                slow.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await slow
        finally:
            peer.released.set()


async def test_a_trickling_answer_is_read_to_the_end() -> None:
    # The deadline is for silence between reads, not for the whole answer: 40 pieces 0.04 s
    # apart take longer than the 1 s read timeout, and every gap is far shorter than it.
    body = CALL

    async def trickle(_: Received, writer: asyncio.StreamWriter) -> bool:
        response = http_response(200, body)
        step = max(1, len(response) // 40)
        for at in range(0, len(response), step):
            writer.write(response[at : at + step])
            await writer.drain()
            await asyncio.sleep(0.04)
        return True

    async with (
        LoopbackServer(trickle) as server,
        AsyncRetell(api_key=API_KEY, base_url=server.url, timeout=Timeout(read=1.0)) as client,
    ):
        call = await client.call.retrieve("call_1")
        again = await client.call.retrieve("call_1")  # and on the direct path
    assert call.call_id == again.call_id == CALL_ID


async def test_no_timer_is_armed_per_read() -> None:
    async with (
        LoopbackServer(ok) as server,
        AsyncRetell(api_key=API_KEY, base_url=server.url) as client,
    ):
        await client.call.retrieve("call_0")  # opens the pool and starts the watchdog
        loop = asyncio.get_running_loop()
        armed: list[str] = []
        real_call_at = loop.call_at

        def call_at(when: float, callback: Callable[..., object], *args: Any, **kw: Any) -> Any:
            armed.append(getattr(callback, "__name__", repr(callback)))
            return real_call_at(when, callback, *args, **kw)

        loop.call_at = call_at  # type: ignore[method-assign]  # call_later goes through it
        try:
            for _ in range(20):
                await client.call.retrieve("call_1")
            await client.call.create_phone_call(from_number=FROM, to_number=TO)
        finally:
            del loop.call_at  # type: ignore[method-assign]
    # aiohttp alone arms _on_read_timeout at least twice per request (42 here).
    assert "_on_read_timeout" not in armed
    assert len(armed) <= 2, armed  # at most the pool's keep-alive sweep


def _watchdogs() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "aioretell-read-watchdog"]


async def test_the_watchdog_starts_with_the_first_request_and_ends_with_the_client() -> None:
    async with LoopbackServer(ok) as server:
        client = AsyncRetell(api_key=API_KEY, base_url=server.url)
        async with client:
            assert _watchdogs() == []  # nothing runs for a client that sent nothing
            await client.call.retrieve("call_1")
            [watchdog] = _watchdogs()
        assert watchdog.done() and _watchdogs() == []
        with pytest.raises(aioretell.ClientClosedError):
            await client.call.retrieve("call_1")


# -- the direct path ---------------------------------------------------------------------------


@pytest.mark.parametrize("paced", [False, True], ids=["idle", "paced"])
async def test_requests_with_nothing_to_pace_skip_send(
    paced: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    options: dict[str, Any] = {"rate_limit": 1000.0} if paced else {}
    async with (
        LoopbackServer(ok) as server,
        AsyncRetell(api_key=API_KEY, base_url=server.url, **options) as client,
    ):
        kind = type(client._shared.transport)  # AiohttpTransport, or FastTransport
        real_send = kind.send

        def counting(self: Any, request: Any, timeout: Any, info: Any) -> Any:
            sent.append(request.url)
            return real_send(self, request, timeout, info)

        monkeypatch.setattr(kind, "send", counting)
        await client.call.retrieve("call_0")
        await client.call.retrieve("call_1")
        await client.call.create_phone_call(from_number=FROM, to_number=TO)
    assert len(server.received) == 3
    if paced:  # a turn to take: every request goes through send
        assert [url.rsplit("/", 1)[1] for url in sent] == ["call_0", "call_1", "create-phone-call"]
    else:
        assert sent == []


async def test_fixed_headers_go_with_every_request_and_content_type_with_bodies() -> None:
    async with (
        LoopbackServer(ok) as server,
        AsyncRetell(
            api_key=API_KEY, base_url=server.url, default_headers={"X-Team": "dialers"}
        ) as client,
    ):
        await client.call.retrieve("call_0")  # opens the pool
        await client.call.retrieve("call_1")  # on a pooled connection
        await client.call.create_phone_call(from_number=FROM, to_number=TO)  # a body
    for received in server.received:
        assert received.headers["authorization"] == f"Bearer {API_KEY}"
        assert received.headers["accept"] == "application/json"
        assert received.headers["user-agent"].startswith("aioretell/")
        assert received.headers["x-team"] == "dialers"
    assert [r.headers.get("content-type") for r in server.received] == [
        None,
        None,
        "application/json",
    ]


@pytest.mark.parametrize("max_retries", [0, 2])
async def test_a_warm_read_failing_on_a_non_http_answer_holds_no_key(max_retries: int) -> None:
    peer = Peer(garbage, 1)
    async with (
        LoopbackServer(peer) as server,
        AsyncRetell(api_key=API_KEY, base_url=server.url, max_retries=max_retries) as client,
    ):
        client._sleep = _no_sleep
        await client.call.retrieve("call_0")
        with pytest.raises(aioretell.APIConnectionError) as info:
            await client.call.retrieve("call_1")
    assert len(server.received) == 1 + max_retries + 1
    objects = assert_key_unreachable(info.value)
    assert info.value.request in objects
    assert info.value.__cause__ is None
    # Python 3.10 hands the coroutine the parser error aiohttp handled as its own exception
    # state, so it becomes the __context__ (suppressed, and no key reachable: checked above).
    context = info.value.__context__
    assert context is None or (sys.version_info < (3, 11) and info.value.__suppress_context__)
    assert "SPAM" in str(info.value)


async def test_a_warm_ambiguous_create_holds_no_key() -> None:
    peer = Peer(garbage, 1)
    async with (
        LoopbackServer(peer) as server,
        AsyncRetell(api_key=API_KEY, base_url=server.url) as client,
    ):
        await client.call.retrieve("call_0")
        with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
            await client.call.create_web_call(agent_id="agent_1", metadata={"k": 1})
    assert len(server.received) == 2
    objects = assert_key_unreachable(info.value)
    assert info.value.cause in objects


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, b'{"message": "no such call"}', aioretell.NotFoundError),
        (200, b'{"call_id": 5}', aioretell.APIResponseValidationError),
        (200, b"not json", aioretell.APIResponseValidationError),
    ],
    ids=["404", "wrong-shape", "not-json"],
)
async def test_a_warm_answer_that_is_an_error_is_raised_with_its_request(
    status: int, body: bytes, error: type[aioretell.APIError]
) -> None:
    async def answer(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(http_response(status, body))
        await writer.drain()
        return True

    peer = Peer(answer, 1)
    async with (
        LoopbackServer(peer) as server,
        AsyncRetell(api_key=API_KEY, base_url=server.url) as client,
    ):
        await client.call.retrieve("call_0")
        with pytest.raises(error) as info:
            await client.call.retrieve("call/1")
        url = server.url
    assert len(server.received) == 2  # neither is retried
    request = info.value.request
    assert request is not None
    assert request.operation_id == "getCall" and request.method == "GET"
    assert request.url == f"{url}/v2/get-call/call%2F1"
    assert isinstance(info.value, aioretell.APIStatusError | aioretell.APIResponseValidationError)
    assert info.value.body == body
    assert_key_unreachable(info.value)


async def test_a_warm_5xx_read_is_retried_and_a_429_ends_the_idle_pacer() -> None:
    answers = iter([503, 429, 200])

    async def answer(received: Received, writer: asyncio.StreamWriter) -> bool:
        status = next(answers)
        if status == 200:
            return await ok(received, writer)
        writer.write(http_response(status, b"{}", headers={"retry-after-ms": "1"}))
        await writer.drain()
        return True

    peer = Peer(answer, 1)
    async with (
        LoopbackServer(peer) as server,
        AsyncRetell(api_key=API_KEY, base_url=server.url) as client,
    ):
        client._sleep = _no_sleep
        await client.call.retrieve("call_0")
        pacer = client._shared.pacer
        assert pacer.idle
        call = await client.call.retrieve("call_1")
        assert not pacer.idle  # a 429 was seen: pacing from now on
        assert pacer.requests.paused_until > -1  # the 429 paused the bucket
    assert call.call_id == CALL_ID
    assert len(server.received) == 4
