"""The client against a peer that misbehaves on the wire: what it raises, what it sends, and what
it keeps. Every test counts the requests a real loopback server read."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import types
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import aioretell
from aioretell import AsyncRetell, Timeout

from .loopback import LoopbackServer, Received, http_response, reset

API_KEY = "key_wire_secret_0123456789"

CALL_JSON = b'{"call_id": "call_1", "call_type": "web_call", "agent_id": "a"}'


async def _no_sleep(_: float) -> None:
    return None


@asynccontextmanager
async def client_for(server: LoopbackServer, **options: Any) -> AsyncIterator[AsyncRetell]:
    async with AsyncRetell(api_key=API_KEY, base_url=server.url, **options) as client:
        client._sleep = _no_sleep
        yield client


async def garbage(_: Received, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"SPAM SPAM\r\n\r\n")
    await writer.drain()
    return False


async def reset_after_reading(_: Received, writer: asyncio.StreamWriter) -> bool:
    reset(writer)
    return False


# -- the API key is reachable from no exception ----------------------------------------------


def reachable(root: object) -> Iterator[object]:
    """Every object reachable from ``root`` through data: exception links, args, attributes
    (``__dict__`` and slots), mapping keys and values, sequence items. Not code, classes or
    traceback frames (whose locals are allowed to hold the key)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, (str, bytes, bytearray, int, float, complex)):
            continue
        if isinstance(
            obj,
            (
                type,
                types.ModuleType,
                types.FunctionType,
                types.BuiltinFunctionType,
                types.MethodType,
                types.CodeType,
                types.TracebackType,
                types.FrameType,
            ),
        ):
            continue
        if isinstance(obj, BaseException):
            stack += [obj.__cause__, obj.__context__, *obj.args]
            stack += getattr(obj, "__notes__", [])
        if isinstance(obj, Mapping) or hasattr(obj, "items"):
            try:
                for key, value in obj.items():
                    stack += [key, value]
            except Exception:  # noqa: BLE001 - not a mapping after all
                pass
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack += list(obj)
        stack += list(getattr(obj, "__dict__", {}).values())
        for cls in type(obj).__mro__:
            slots = cls.__dict__.get("__slots__", ())
            for slot in (slots,) if isinstance(slots, str) else slots:
                if slot not in ("__dict__", "__weakref__"):
                    stack.append(getattr(obj, slot, None))


def assert_key_unreachable(error: BaseException) -> list[object]:
    found = []
    objects = list(reachable(error))
    for obj in objects:
        for text in (repr(obj), str(obj)):
            if API_KEY in text:
                found.append(obj)
        if isinstance(obj, (bytes, bytearray)) and API_KEY.encode() in obj:
            found.append(obj)
    assert not found, f"the API key is reachable from {type(error).__name__}: {found[0]!r}"
    return objects


@pytest.mark.parametrize("max_retries", [0, 2])
async def test_read_failing_on_a_non_http_answer_holds_no_key(max_retries: int) -> None:
    async with (
        LoopbackServer(garbage) as server,
        client_for(server, max_retries=max_retries) as client,
    ):
        with pytest.raises(aioretell.APIConnectionError) as info:
            await client.call.retrieve("call_1")
    assert len(server.received) == max_retries + 1
    assert server.received[0].headers["authorization"] == f"Bearer {API_KEY}"
    objects = assert_key_unreachable(info.value)
    assert info.value.request in objects  # the walk did go past the exception itself
    assert "SPAM" in str(info.value)  # the cause is still told, as text


async def test_ambiguous_create_on_a_non_http_answer_holds_no_key() -> None:
    async with LoopbackServer(garbage) as server, client_for(server) as client:
        with pytest.raises(aioretell.AmbiguousOutcomeError) as info:
            await client.call.create_web_call(agent_id="agent_1", metadata={"k": 1})
    assert len(server.received) == 1
    objects = assert_key_unreachable(info.value)
    assert info.value.cause in objects


def test_the_key_walk_finds_a_key_held_deep_inside() -> None:
    # The check itself must be able to fail: a key three links away, in a headers mapping.
    class Holder:
        __slots__ = ("headers",)

        def __init__(self) -> None:
            self.headers = {"Authorization": f"Bearer {API_KEY}"}

    inner = ValueError(Holder())
    outer = aioretell.APIConnectionError("x")
    outer.__context__ = inner
    with pytest.raises(AssertionError, match="reachable"):
        assert_key_unreachable(outer)


# -- max_retries bounds the requests on the wire ---------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 2])
@pytest.mark.parametrize("method", ["retrieve", "delete"])
async def test_max_retries_bounds_requests_on_the_wire(max_retries: int, method: str) -> None:
    # aiohttp by itself resends a GET/PUT/DELETE once when the connection drops after the
    # request was written; max_retries=N must still mean N + 1 requests in all.
    async with (
        LoopbackServer(reset_after_reading) as server,
        client_for(server, max_retries=max_retries) as client,
    ):
        with pytest.raises(aioretell.APIConnectionError):
            await getattr(client.call, method)("call_1")
    assert len(server.received) == max_retries + 1


# -- a total timeout spent waiting for a pooled connection ------------------------------------


async def test_total_timeout_while_waiting_for_the_pool_is_not_ambiguous() -> None:
    release = asyncio.Event()

    async def hold_first(received: Received, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        writer.write(http_response(200, b'{"concurrency_limit": 1}'))
        await writer.drain()
        return True

    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    async with (
        LoopbackServer(hold_first) as server,
        client_for(server, connection_limit=1, max_retries=1) as client,
    ):
        client._sleep = record
        hog = asyncio.create_task(client.concurrency.retrieve())
        while not server.received:
            await asyncio.sleep(0.01)
        hurried = client.with_options(timeout=Timeout(total=0.1))
        # A create with side effects and no idempotency key: only "never written" retries it.
        with pytest.raises(aioretell.APITimeoutError) as info:
            await hurried.call.create_web_call(agent_id="agent_1")
        assert info.value.request_sent is False
        assert not isinstance(info.value, aioretell.AmbiguousOutcomeError)
        assert len(slept) == 1  # retried once (max_retries=1), timing out in the queue again
        assert len(server.received) == 1  # only the hog reached the server
        release.set()
        assert (await hog).concurrency_limit == 1


# -- no cookie jar ---------------------------------------------------------------------------


async def test_cookies_are_neither_kept_nor_sent() -> None:
    async def set_cookie(_: Received, writer: asyncio.StreamWriter) -> bool:
        cookie = {"Set-Cookie": "sid=tracked; Path=/"}
        writer.write(http_response(200, b'{"concurrency_limit": 1}', headers=cookie))
        await writer.drain()
        return True

    # A host name, not an IP: aiohttp's default jar ignores cookies from IP addresses.
    async with LoopbackServer(set_cookie) as server:
        url = server.url.replace("127.0.0.1", "localhost")
        async with AsyncRetell(api_key=API_KEY, base_url=url) as client:
            await client.concurrency.retrieve()
            await client.concurrency.retrieve()
    assert len(server.received) == 2
    assert "cookie" not in server.received[1].headers


# -- a 2xx body that does not decode ---------------------------------------------------------


LONE_SURROGATE = b'{"call_id": "\\ud800", "call_type": "web_call", "agent_id": "a"}'


def test_lone_surrogate_body_is_json() -> None:
    assert json.loads(LONE_SURROGATE)["agent_id"] == "a"


@pytest.mark.parametrize("create", [False, True], ids=["read", "create"])
async def test_complete_body_that_does_not_decode_is_a_validation_error(create: bool) -> None:
    async def answer(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(http_response(200, LONE_SURROGATE))
        await writer.drain()
        return True

    async with LoopbackServer(answer) as server, client_for(server) as client:
        with pytest.raises(aioretell.APIResponseValidationError) as info:
            if create:
                await client.call.create_web_call(agent_id="a")
            else:
                await client.call.retrieve("call_1")
    assert info.value.body == LONE_SURROGATE
    assert info.value.status_code == 200
    assert len(server.received) == 1  # the server answered: nothing to retry


async def test_body_cut_off_on_the_wire_is_a_connection_failure() -> None:
    async def cut_off(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(http_response(200, CALL_JSON[:20], length=len(CALL_JSON)))
        await writer.drain()
        return False

    async with LoopbackServer(cut_off) as server, client_for(server, max_retries=1) as client:
        with pytest.raises(aioretell.APIConnectionError) as info:
            await client.call.retrieve("call_1")
        assert len(server.received) == 2  # a read: retried
        with pytest.raises(aioretell.AmbiguousOutcomeError):
            await client.call.create_web_call(agent_id="a")
    assert not isinstance(info.value, aioretell.APIResponseValidationError)
    assert len(server.received) == 3  # a create: not repeated


# -- a client used from a second event loop ---------------------------------------------------


class _ConcurrencyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"concurrency_limit": 3}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def threaded_server() -> Iterator[str]:
    """An HTTP server on its own thread, so it outlives the event loops of one test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ConcurrencyHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_client_used_from_a_second_event_loop(threaded_server: str) -> None:
    client = AsyncRetell(api_key=API_KEY, base_url=threaded_server)

    async def use(client: AsyncRetell) -> list[int | None]:
        # Concurrent requests, so the pool holds several connections.
        results = await asyncio.gather(*(client.concurrency.retrieve() for _ in range(4)))
        return [r.concurrency_limit for r in results]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(use(client)) == [3] * 4
        with pytest.raises(aioretell.RetellError, match="event loop") as info:
            asyncio.run(use(client))
        assert isinstance(info.value, aioretell.WrongEventLoopError)
        asyncio.run(client.close())
        del client
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []
