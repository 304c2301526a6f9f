"""FastTransport on the wire: framing, codings, keep-alive and its failures, TLS, the pool, what
it refuses. Every test talks to a real loopback server and counts what reached it.

The behaviour both transports share (faults, timeouts, retries, the key kept out of errors) is
tested on both by tests/integration (see tests/fast/transports.py); this file covers what only
this transport has to get right by itself.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import aioretell
from aioretell import AsyncRetell, Timeout
from aioretell._fast_http import loop_clock
from aioretell._fast_transport import FastTransport
from benchmarks import tls_cert

from ..integration.loopback import LoopbackServer, Received, http_response, reset
from ..integration.test_wire import (  # noqa: F401  (threaded_server: a fixture)
    API_KEY,
    assert_key_unreachable,
    threaded_server,
)

OK = b'{"concurrency_limit": 7}'


@asynccontextmanager
async def fast_client(url: str, **options: Any) -> AsyncIterator[AsyncRetell]:
    """A client on a FastTransport (built from ``options``), retries off unless asked."""
    client_options = {"max_retries": options.pop("max_retries", 0)}
    if "timeout" in options:
        client_options["timeout"] = options.pop("timeout")
    async with (
        FastTransport(**options) as transport,
        AsyncRetell(api_key=API_KEY, base_url=url, transport=transport, **client_options) as c,
    ):
        yield c


def peer(writer: asyncio.StreamWriter) -> int:
    """The client's port: which connection a request came on."""
    return int(writer.get_extra_info("peername")[1])


async def answer_ok(_: Received, writer: asyncio.StreamWriter) -> bool:
    writer.write(http_response(200, OK))
    await writer.drain()
    return True


async def get(client: AsyncRetell) -> Any:
    return await client.request("GET", "/get-concurrency")


async def no_reusable_idle_connection(client: AsyncRetell) -> None:
    """Until the client has seen its idle connections end (the server's close reached it)."""
    transport = client._shared.transport
    assert isinstance(transport, FastTransport)
    for _ in range(1000):  # a bound, so a connection wrongly kept fails instead of hanging
        if not any(c.reusable for o in transport._origins.values() for c in o.idle):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("an idle connection is still considered reusable")


# -- framing and content codings --------------------------------------------------------------


async def test_chunked_body_is_reassembled() -> None:
    async def chunked(_: Received, writer: asyncio.StreamWriter) -> bool:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (OK[:5], OK[5:9], OK[9:]))
        writer.write(head + body + b"0\r\n\r\n")
        await writer.drain()
        return True

    async with LoopbackServer(chunked) as server, fast_client(server.url) as client:
        assert await get(client) == {"concurrency_limit": 7}
        assert await get(client) == {"concurrency_limit": 7}
    assert len(server.received) == 2


def _raw_deflate(body: bytes) -> bytes:
    # zlib.compress takes wbits only from Python 3.11
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(body) + packer.flush()


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", _raw_deflate),  # no zlib header, as some servers send it
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
async def test_compressed_body_is_decoded(coding: str, encode: Any) -> None:
    async def compressed(_: Received, writer: asyncio.StreamWriter) -> bool:
        headers = {"Content-Encoding": coding}
        writer.write(http_response(200, encode(OK), headers=headers))
        await writer.drain()
        return True

    async with LoopbackServer(compressed) as server, fast_client(server.url) as client:
        assert await get(client) == {"concurrency_limit": 7}
    assert server.received[0].headers["accept-encoding"] == "gzip"


async def test_unknown_content_coding_fails_naming_it() -> None:
    async def brotli(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(http_response(200, b"\x0b\x02\x80", headers={"Content-Encoding": "br"}))
        await writer.drain()
        return True

    async with LoopbackServer(brotli) as server, fast_client(server.url) as client:
        with pytest.raises(aioretell.APIConnectionError, match="'br'"):
            await get(client)
    assert len(server.received) == 1


async def test_corrupt_gzip_body_fails() -> None:
    async def corrupt(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(http_response(200, b"not gzip", headers={"Content-Encoding": "gzip"}))
        await writer.drain()
        return True

    async with LoopbackServer(corrupt) as server, fast_client(server.url) as client:
        with pytest.raises(aioretell.APIConnectionError, match="corrupt encoding 'gzip'"):
            await get(client)


async def test_body_delimited_by_close() -> None:
    async def until_close(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + OK)
        await writer.drain()
        return False  # the server closes: that ends the body

    async with LoopbackServer(until_close) as server, fast_client(server.url) as client:
        assert await get(client) == {"concurrency_limit": 7}
        assert await get(client) == {"concurrency_limit": 7}  # on a new connection
    assert len(server.received) == 2


async def test_interim_100_continue_is_skipped() -> None:
    async def with_continue(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + http_response(200, OK))
        await writer.drain()
        return True

    async with LoopbackServer(with_continue) as server, fast_client(server.url) as client:
        assert await get(client) == {"concurrency_limit": 7}
        assert await get(client) == {"concurrency_limit": 7}


async def test_head_answer_has_no_body_and_its_connection_is_not_reused() -> None:
    ports: list[int] = []

    async def answer(received: Received, writer: asyncio.StreamWriter) -> bool:
        ports.append(peer(writer))
        # A HEAD answer announces the length of the body it does not send.
        response = http_response(200, OK)
        writer.write(response[: -len(OK)] if received.method == "HEAD" else response)
        await writer.drain()
        return True

    async with LoopbackServer(answer) as server, fast_client(server.url) as client:
        assert await client.request("HEAD", "/get-concurrency") is None
        assert await get(client) == {"concurrency_limit": 7}
    assert [r.method for r in server.received] == ["HEAD", "GET"]
    assert ports[0] != ports[1]


async def test_redirect_is_returned_not_followed() -> None:
    async def redirect(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(http_response(302, b"", headers={"Location": "/elsewhere"}))
        await writer.drain()
        return True

    async with LoopbackServer(redirect) as server, fast_client(server.url) as client:
        with pytest.raises(aioretell.APIStatusError) as info:
            await get(client)
    assert info.value.status_code == 302
    assert info.value.headers["location"] == "/elsewhere"  # any case: the mapping ignores it
    assert [r.path for r in server.received] == ["/get-concurrency"]


# -- keep-alive: reuse, and connections the server ended -------------------------------------


async def test_sequential_requests_share_one_connection() -> None:
    ports: list[int] = []

    async def answer(received: Received, writer: asyncio.StreamWriter) -> bool:
        ports.append(peer(writer))
        return await answer_ok(received, writer)

    async with LoopbackServer(answer) as server, fast_client(server.url) as client:
        for _ in range(5):
            await get(client)
    assert len(set(ports)) == 1


@pytest.mark.parametrize("how", ["close", "reset", "connection-close-header"])
async def test_connection_the_server_ended_is_not_reused(how: str) -> None:
    ports: list[int] = []

    async def answer_then_end(received: Received, writer: asyncio.StreamWriter) -> bool:
        ports.append(peer(writer))
        headers = {"Connection": "close"} if how == "connection-close-header" else {}
        writer.write(http_response(200, OK, headers=headers))
        await writer.drain()
        if how == "reset":
            await asyncio.sleep(0)
            reset(writer)
        return False  # the server closes after answering

    async with LoopbackServer(answer_then_end) as server, fast_client(server.url) as client:
        assert await get(client) == {"concurrency_limit": 7}
        await no_reusable_idle_connection(client)
        # Never written into the dead connection: no failure, and one request on a new one.
        assert await get(client) == {"concurrency_limit": 7}
    assert len(server.received) == 2
    assert ports[0] != ports[1]


async def test_bytes_after_the_response_poison_the_connection() -> None:
    ports: list[int] = []

    async def answer_twice(received: Received, writer: asyncio.StreamWriter) -> bool:
        ports.append(peer(writer))
        writer.write(http_response(200, OK) * 2)  # one response too many
        await writer.drain()
        return True

    async with LoopbackServer(answer_twice) as server, fast_client(server.url) as client:
        assert await get(client) == {"concurrency_limit": 7}
        await no_reusable_idle_connection(client)
        assert await get(client) == {"concurrency_limit": 7}
    assert ports[0] != ports[1]


async def test_connection_idle_past_keepalive_timeout_is_not_reused() -> None:
    ports: list[int] = []

    async def answer(received: Received, writer: asyncio.StreamWriter) -> bool:
        ports.append(peer(writer))
        return await answer_ok(received, writer)

    # A zero keep-alive: every idle connection has outlived it (no clock needed).
    pool = {"keepalive_timeout": 0.0}
    async with LoopbackServer(answer) as server, fast_client(server.url, **pool) as client:
        await get(client)
        await get(client)
    assert len(set(ports)) == 2


# -- the pool ----------------------------------------------------------------------------------


async def test_pool_limit_bounds_connections() -> None:
    ports: list[int] = []
    open_now = peak = 0

    async def answer(received: Received, writer: asyncio.StreamWriter) -> bool:
        nonlocal open_now, peak
        if peer(writer) not in ports:
            open_now += 1
            peak = max(peak, open_now)
        ports.append(peer(writer))
        await asyncio.sleep(0.01)
        return await answer_ok(received, writer)

    pool = {"connection_limit": 3}
    async with LoopbackServer(answer) as server, fast_client(server.url, **pool) as client:
        results = await asyncio.gather(*(get(client) for _ in range(20)))
    assert results == [{"concurrency_limit": 7}] * 20
    assert len(set(ports)) == 3
    assert peak == 3


async def test_cancelled_while_queued_gives_its_turn_back() -> None:
    release = asyncio.Event()

    async def hold(received: Received, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        return await answer_ok(received, writer)

    pool = {"connection_limit": 1}
    async with LoopbackServer(hold) as server, fast_client(server.url, **pool) as client:
        hog = asyncio.create_task(get(client))
        while not server.received:
            await asyncio.sleep(0.01)
        queued = asyncio.create_task(get(client))
        await asyncio.sleep(0.01)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        assert await hog == {"concurrency_limit": 7}
        assert await get(client) == {"concurrency_limit": 7}  # the one slot is still there
    assert len(server.received) == 2


async def test_cancelled_mid_response_drops_the_connection() -> None:
    ports: list[int] = []
    first = asyncio.Event()

    async def slow_first(received: Received, writer: asyncio.StreamWriter) -> bool:
        ports.append(peer(writer))
        if len(ports) == 1:
            first.set()
            await asyncio.sleep(30)  # never answers in time; the client gives up
            return False
        return await answer_ok(received, writer)

    async with LoopbackServer(slow_first) as server, fast_client(server.url) as client:
        task = asyncio.create_task(get(client))
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await get(client) == {"concurrency_limit": 7}
    # A late answer to the first request can never be read as the second's.
    assert ports[0] != ports[1]


async def test_closing_fails_requests_in_flight_and_queued() -> None:
    async def never(_: Received, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(30)
        return False

    async with LoopbackServer(never) as server:
        transport = FastTransport(connection_limit=1)
        client = AsyncRetell(api_key=API_KEY, base_url=server.url, transport=transport)
        client = client.with_options(max_retries=0)
        in_flight = asyncio.create_task(get(client))
        while not server.received:
            await asyncio.sleep(0.01)
        queued = asyncio.create_task(get(client))
        await asyncio.sleep(0.01)
        await transport.aclose()
        with pytest.raises(aioretell.APIConnectionError) as sent:
            await in_flight
        with pytest.raises(aioretell.APIConnectionError) as unsent:
            await queued
        await client.close()
    assert sent.value.request_sent is True
    assert unsent.value.request_sent is False
    assert len(server.received) == 1


# -- TLS -----------------------------------------------------------------------------------------


class TLSLoopbackServer(LoopbackServer):
    """The loopback server behind TLS with a certificate from a throwaway authority."""

    def __init__(self, answer: Any, context: ssl.SSLContext) -> None:
        super().__init__(answer)
        self.context = context

    @property
    def url(self) -> str:
        return super().url.replace("http://", "https://")

    async def __aenter__(self) -> TLSLoopbackServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        return self


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tls_cert.Certificates:
    return tls_cert.make(Path(tmp_path_factory.mktemp("tls")))


async def test_tls_with_a_trusted_authority(certificates: tls_cert.Certificates) -> None:
    async with (
        TLSLoopbackServer(answer_ok, certificates.server_context()) as server,
        fast_client(server.url, ssl=certificates.client_context()) as client,
    ):
        assert await get(client) == {"concurrency_limit": 7}
        assert await get(client) == {"concurrency_limit": 7}
    assert len(server.received) == 2


async def test_tls_verifies_certificates_by_default(certificates: tls_cert.Certificates) -> None:
    async with (
        TLSLoopbackServer(answer_ok, certificates.server_context()) as server,
        fast_client(server.url) as client,
    ):
        with pytest.raises(aioretell.APIConnectionError, match="certificate verify failed") as e:
            await get(client)
    assert e.value.request_sent is False
    assert server.received == []
    assert_key_unreachable(e.value)


async def test_tls_verifies_the_host_name(tmp_path: Path) -> None:
    # A certificate from a trusted authority, but for another name than the one dialled.
    other = tls_cert.make(tmp_path, hostnames=("elsewhere.invalid",), addresses=())
    async with (
        TLSLoopbackServer(answer_ok, other.server_context()) as server,
        fast_client(server.url, ssl=other.client_context()) as client,
    ):
        with pytest.raises(aioretell.APIConnectionError, match="mismatch") as e:
            await get(client)
    assert e.value.request_sent is False
    assert server.received == []


async def test_tls_handshake_that_never_ends_is_a_connect_timeout() -> None:
    ended = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the ClientHello, answers nothing, until the client leaves
        writer.close()
        ended.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with fast_client(f"https://127.0.0.1:{port}", timeout=Timeout(connect=0.2)) as client:
            with pytest.raises(aioretell.APITimeoutError) as e:
                await get(client)
        await ended.wait()  # the client hung up (so the server's side can close in its loop)
    finally:
        server.close()
        await server.wait_closed()
    assert e.value.request_sent is False


# -- what it refuses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "what"),
    [
        ({"proxy": "http://proxy.example:3128"}, "proxy"),
        ({"http2": True}, "HTTP/1.1 only"),
        ({"follow_redirects": True}, "does not follow redirects"),
        ({"accept_encoding": "gzip, br"}, "'br'"),
    ],
)
def test_unsupported_options_fail_at_construction(options: dict[str, Any], what: str) -> None:
    with pytest.raises(ValueError, match="AiohttpTransport") as info:
        FastTransport(**options)
    assert what in str(info.value)


async def test_a_header_asking_for_an_unsupported_coding_fails_before_sending() -> None:
    async with (
        LoopbackServer(answer_ok) as server,
        FastTransport() as transport,
        AsyncRetell(
            api_key=API_KEY,
            base_url=server.url,
            transport=transport,
            default_headers={"Accept-Encoding": "zstd"},
        ) as client,
    ):
        with pytest.raises(ValueError, match="AiohttpTransport"):
            await get(client)
    assert server.received == []


async def test_a_header_with_a_line_break_fails_before_sending_without_its_value() -> None:
    async with (
        LoopbackServer(answer_ok) as server,
        FastTransport() as transport,
        AsyncRetell(
            api_key=API_KEY,
            base_url=server.url,
            transport=transport,
            default_headers={"X-Trace": "secret-value\r\nX-Injected: 1"},
        ) as client,
    ):
        with pytest.raises(ValueError, match="X-Trace") as info:
            await get(client)
    assert "secret-value" not in str(info.value)
    assert server.received == []


async def test_url_credentials_are_refused() -> None:
    async with LoopbackServer(answer_ok) as server:
        url = server.url.replace("http://", "http://user:pw@")
        async with fast_client(url) as client:
            with pytest.raises(ValueError, match="credentials"):
                await get(client)
    assert server.received == []


def test_repr_shows_no_credentials() -> None:
    transport = FastTransport()
    assert repr(transport) == "FastTransport(limit=100, 0 connections)"


# -- timeouts: one watchdog timer per connection --------------------------------------------


async def test_read_timeout_is_silence_not_duration() -> None:
    async def trickle(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for byte in OK:  # the body over about 1.5 s, a byte per 0.06 s: never 0.5 s silent
            writer.write(b"1\r\n%c\r\n" % byte)
            await writer.drain()
            await asyncio.sleep(0.06)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async with (
        LoopbackServer(trickle) as server,
        fast_client(server.url, timeout=Timeout(read=0.5)) as client,
    ):
        assert await get(client) == {"concurrency_limit": 7}


async def test_a_shorter_timeout_on_a_reused_connection_is_honoured() -> None:
    stall = asyncio.Event()
    done = asyncio.Event()

    async def answer(received: Received, writer: asyncio.StreamWriter) -> bool:
        if stall.is_set():
            await done.wait()  # the second request gets no answer
            return False
        return await answer_ok(received, writer)

    async with LoopbackServer(answer) as server, fast_client(server.url) as client:
        await get(client)  # the connection's timer is armed for the default 60 s read timeout
        stall.set()
        hurried = client.with_options(timeout=Timeout(read=0.2))
        try:
            with pytest.raises(aioretell.APITimeoutError) as info:
                # A bound far above 0.2 s, so a timer left at 60 s fails instead of hanging.
                await asyncio.wait_for(get(hurried), 20)
        finally:
            done.set()
    assert info.value.request_sent is True
    assert "no response data for 0.2 s" in str(info.value)


async def test_total_timeout_after_sending() -> None:
    done = asyncio.Event()

    async def late(_: Received, writer: asyncio.StreamWriter) -> bool:
        await done.wait()
        return False

    async with (
        LoopbackServer(late) as server,
        fast_client(server.url, timeout=Timeout(total=0.2, read=None)) as client,
    ):
        try:
            with pytest.raises(aioretell.APITimeoutError, match="total timeout") as info:
                await asyncio.wait_for(get(client), 20)
        finally:
            done.set()
    assert info.value.request_sent is True
    assert len(server.received) == 1


# -- uvloop ------------------------------------------------------------------------------------


def test_on_uvloop(certificates: tls_cert.Certificates) -> None:
    uvloop = pytest.importorskip("uvloop")  # an optional speed-up, not on Windows

    async def garbage_once(received: Received, writer: asyncio.StreamWriter) -> bool:
        if len(server.received) == 1:
            writer.write(b"SPAM\r\n\r\n")
            await writer.drain()
            return False
        return await answer_ok(received, writer)

    async def scenario() -> list[Any]:
        nonlocal server
        results: list[Any] = []
        async with LoopbackServer(garbage_once) as server, fast_client(server.url) as client:
            with pytest.raises(aioretell.APIConnectionError, match="SPAM"):
                await get(client)
            results += await asyncio.gather(*(get(client) for _ in range(10)))
        async with (
            TLSLoopbackServer(answer_ok, certificates.server_context()) as tls,
            fast_client(tls.url, ssl=certificates.client_context()) as client,
        ):
            results.append(await get(client))
        return results

    server: LoopbackServer
    # Like asyncio.run: what is left of the servers' tasks is cancelled before the loop closes.
    assert uvloop.run(scenario()) == [{"concurrency_limit": 7}] * 11


class _SkewedLoop(asyncio.SelectorEventLoop):
    def time(self) -> float:
        return super().time() + 1000.0


@pytest.mark.parametrize(
    "make",
    [asyncio.SelectorEventLoop, _SkewedLoop, "uvloop"],
    ids=["asyncio", "own-time", "uvloop"],
)
def test_the_transport_reads_its_loop_s_clock(make: Any) -> None:
    if make == "uvloop":
        make = pytest.importorskip("uvloop").new_event_loop
    loop = make()
    try:
        clock = loop_clock(loop)
        if type(loop).time is asyncio.BaseEventLoop.time:
            assert clock is time.monotonic  # all asyncio's loop.time does, without the call
        else:
            assert clock == loop.time
        assert abs(clock() - loop.time()) < 1.0
    finally:
        loop.close()


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"connection_limit": 0}, ValueError, "connection_limit"),
        ({"connection_limit": True}, TypeError, "connection_limit"),
        ({"connection_limit": 2.5}, TypeError, "connection_limit"),
        ({"keepalive_timeout": -1}, ValueError, "keepalive_timeout"),
        ({"keepalive_timeout": float("nan")}, ValueError, "keepalive_timeout"),
        ({"keepalive_timeout": "15"}, TypeError, "keepalive_timeout"),
        ({"ssl": True}, TypeError, "ssl"),
    ],
)
def test_bad_settings_name_the_parameter(
    options: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        FastTransport(**options)


def test_without_httptools_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    for module in ("aioretell._fast_transport", "aioretell._fast_http"):
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "httptools", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'aioretell\[fast\]'"):
        aioretell.FastTransport  # noqa: B018
    # monkeypatch puts the modules back, so the classes the other tests hold stay the same.


def test_import_aioretell_does_not_import_httptools() -> None:
    import subprocess
    import sys

    code = "import sys, aioretell; print('httptools' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_closed_from_another_loop_after_its_loop_closed(threaded_server: str) -> None:  # noqa: F811
    # Its loop closed without shutdown_asyncgens (no asyncio.run) while a connection sat idle:
    # closing the transport later from another loop must not raise. (The socket it can no
    # longer close is the garbage collector's to report.)
    import gc
    import warnings

    transport = FastTransport()

    async def use() -> None:
        client = AsyncRetell(api_key=API_KEY, base_url=threaded_server, transport=transport)
        assert (await client.concurrency.retrieve()).concurrency_limit == 3

    loop = asyncio.new_event_loop()
    loop.run_until_complete(use())
    assert len(transport._connections) == 1  # idle, open
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        loop.close()  # no shutdown_asyncgens: the transport's closer never ran
        asyncio.run(transport.aclose())
        del loop
        gc.collect()
    assert transport._connections == set()


def test_response_headers_are_a_case_insensitive_mapping_decoded_on_demand() -> None:
    from multidict import CIMultiDict

    from aioretell._fast_http import ResponseHeaders

    raw = [(b"Retry-After", b"2"), (b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2")]
    headers = ResponseHeaders(raw)
    assert headers._decoded is None  # nothing decoded until looked at
    assert headers["retry-after"] == "2" and headers.get("RETRY-AFTER") == "2"
    assert headers.get("missing", "x") == "x" and "Set-Cookie" in headers
    assert headers.getall("SET-COOKIE") == ["a=1", "b=2"]
    # Counted and iterated as the aiohttp transport's headers are.
    same = CIMultiDict((n.decode(), v.decode()) for n, v in raw)
    assert len(headers) == len(same) and list(headers) == list(same)
    assert "Retry-After" in repr(headers)
