"""One HTTP/1.1 keep-alive connection of :class:`~aioretell._fast_transport.FastTransport`.

An ``asyncio.Protocol`` that writes a request and parses its response with ``httptools`` (the
llhttp binding), watching the request's read and total timeouts with one timer. It knows
nothing of pools: it resolves the waiter it was given with an :class:`HTTPResponse` or with a
:class:`Failure` (a short description, never an exception object, so nothing of the request
can hang off an error raised from it), and says whether it can carry another request.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from multidict import CIMultiDict

try:
    import httptools
except ImportError as exc:  # the optional dependency of the `fast` extra
    raise ImportError(
        "FastTransport needs httptools: pip install 'aioretell[fast]' "
        "(or keep the default AiohttpTransport)"
    ) from exc

from ._sansio import HTTPResponse


class Failure:
    """Why a connection gave no response: a description, and whether a timer ran out (then
    ``reason`` is ``"total"`` for the total timeout, else what the read timeout saw)."""

    __slots__ = ("reason", "timed_out")

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        self.reason = reason
        self.timed_out = timed_out


#: Resolved with the response, or with why there is none.
Waiter = asyncio.Future[HTTPResponse | Failure]
_Future = asyncio.Future


def loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time``, or ``time.monotonic`` itself where that is all ``loop.time`` does
    (asyncio's own loops): the same clock, read without a Python call in between."""
    if getattr(type(loop), "time", None) is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class ResponseHeaders(Mapping[str, str]):
    """The response's headers, case-insensitive, decoded only when first looked at.

    Most responses are read for their status and body alone; building a ``CIMultiDict`` for each
    would cost more than the rest of parsing.
    """

    __slots__ = ("_decoded", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._decoded: CIMultiDict[str] | None = None

    def _headers(self) -> CIMultiDict[str]:
        decoded = self._decoded
        if decoded is None:
            decoded = self._decoded = CIMultiDict(
                (name.decode("latin-1"), value.decode("latin-1")) for name, value in self._raw
            )
        return decoded

    def __getitem__(self, key: str) -> str:
        return self._headers()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._headers().get(key, default)

    def getall(self, key: str) -> list[str]:
        return self._headers().getall(key, [])

    def __contains__(self, key: object) -> bool:
        return key in self._headers()

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers())

    def __len__(self) -> int:
        return len(self._headers())  # as aiohttp's own headers count

    def __repr__(self) -> str:
        return f"<ResponseHeaders({list(self._headers().items())!r})>"


#: Content codings we decode; we ask for gzip only, but deflate costs nothing to accept.
_DECODERS = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS, b"deflate": 0}


def _decode_body(coding: bytes, body: bytes) -> bytes | None:
    """``body`` without its content coding, or None when the coding is unknown or corrupt."""
    coding = coding.strip().lower()
    if coding in (b"", b"identity"):
        return body
    wbits = _DECODERS.get(coding)
    if wbits is None:
        return None
    try:
        if wbits:
            return zlib.decompress(body, wbits)
        try:
            return zlib.decompress(body)  # deflate as the RFC means it: zlib-wrapped
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except zlib.error:
        return None


class Connection(asyncio.Protocol):
    """A keep-alive connection to one origin, carrying one request at a time.

    Read and total timeouts are watched by one timer per connection, not one per request: it
    is armed for the earliest moment the request in flight could time out and, when it fires
    early (bytes arrived meanwhile, or the request finished and another began), re-armed for
    the next such moment. A request that ends in time leaves the timer alone.
    """

    __slots__ = (
        "_body",
        "_clock",
        "_coding",
        "_deadline",
        "_framed",
        "_head_only",
        "_headers",
        "_parser",
        "_read_timeout",
        "_status",
        "_timer",
        "_timer_when",
        "_until_eof",
        "_waiter",
        "closed",
        "key",
        "last_read",
        "loop",
        "reusable",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, key: Any) -> None:
        self.loop = loop
        self._clock = loop_clock(loop)
        #: the pool's key for this connection's origin
        self.key = key
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: Waiter | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._coding = b""
        self._status = 0
        self._framed = False  # a Content-Length or Transfer-Encoding header came
        self._head_only = False
        #: the response ends when the server closes (no Content-Length, not chunked)
        self._until_eof = False
        #: False once the connection can carry no further request (closed, half-closed by the
        #: peer, out of step with it, or told ``Connection: close``)
        self.reusable = True
        self.closed = False
        #: loop time of the last bytes received (or of the request written): read timeouts and
        #: keep-alive expiry count from it
        self.last_read = 0.0
        self._read_timeout: float | None = None
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0

    # -- the pool's side ---------------------------------------------------------------------

    def start(
        self,
        data: bytes,
        now: float,
        read_timeout: float | None,
        deadline: float | None,
        head: bool,
    ) -> Waiter:
        """Write one request; the future returned resolves to its response (or failure).

        ``read_timeout``: longest silence while waiting for the response; ``deadline``: loop
        time by which it must be complete. Either may be None.
        """
        # The future itself rather than ``loop.create_future()``: asyncio's is a Python method
        # around it (uvloop's makes the same class).
        waiter: Waiter = _Future(loop=self.loop)
        self._waiter = waiter
        self._head_only = head
        self._headers = []
        self._body = []
        self._coding = b""
        self._framed = self._until_eof = False
        self.last_read = now
        self._read_timeout = read_timeout
        self._deadline = deadline
        if read_timeout is not None or deadline is not None:
            due = now + read_timeout if read_timeout is not None else deadline
            if deadline is not None and deadline < due:  # type: ignore[operator]
                due = deadline
            timer = self._timer
            if timer is None or self._timer_when > due:  # type: ignore[operator]
                if timer is not None:
                    timer.cancel()
                self._arm(due)  # type: ignore[arg-type]
        self.transport.write(data)  # type: ignore[union-attr]
        return waiter

    def close(self) -> None:
        """Close now; a response still awaited is dropped (its waiter is left to its owner)."""
        self._waiter = None
        self.reusable = False
        self.closed = True
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        transport = self.transport
        # A transport of a loop closed without shutting down (so without closing us) cannot
        # be closed from another: leave it to the garbage collector, which warns.
        if transport is not None and not self.loop.is_closed():
            transport.abort()

    def fail(self, reason: str, *, timed_out: bool = False) -> None:
        """End the request in flight (if any) with ``reason``; the connection is closed."""
        waiter = self._waiter
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(Failure(reason, timed_out=timed_out))

    # -- the timeout watchdog ----------------------------------------------------------------

    def _arm(self, when: float) -> None:
        self._timer_when = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._waiter is None:
            return  # idle, or closed: nothing to watch until the next request
        now = self._clock()
        deadline, read = self._deadline, self._read_timeout
        if deadline is not None and now >= deadline:
            self.fail("total", timed_out=True)
            return
        if read is not None:
            silent_until = self.last_read + read
            if now >= silent_until:
                self.fail(f"no response data for {read:g} s", timed_out=True)
                return
            if deadline is None or silent_until < deadline:
                deadline = silent_until
        if deadline is not None:
            self._arm(deadline)

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for: the peer is out of step with us; never reuse this.
            self.close()
            return
        self.last_read = self._clock()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail("the server switched protocols")
        except httptools.HttpParserError as exc:
            # What was wrong, and the start of what came (the first line only, so that even a
            # peer echoing our request back could not put a header of ours in the message).
            start = data.split(b"\n", 1)[0][:60].decode("latin-1")
            self.fail(f"invalid HTTP response ({type(exc).__name__}: {exc}; it began {start!r})")

    def eof_received(self) -> bool:
        self.closed = True
        self.reusable = False
        if self._waiter is not None:
            if self._until_eof:
                self._complete()
            else:
                self.fail("the server closed the connection before the response was complete")
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._waiter is not None:
            if exc is None and self._until_eof:
                self._complete()
                return
            what = "closed" if exc is None else f"lost ({type(exc).__name__}: {exc})"
            self.fail(f"the connection was {what} before the response was complete")

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            # A second response in the bytes that ended the first: out of step, never reuse.
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        if len(name) > 13:  # the three we look at are 14, 16 and 17 long
            lowered = name.lower()
            if lowered == b"content-length" or lowered == b"transfer-encoding":
                self._framed = True
            elif lowered == b"content-encoding":
                self._coding = value

    def on_headers_complete(self) -> None:
        status = self._status = self._parser.get_status_code()
        if status < 200:
            return  # an interim response (100 Continue): the real one follows
        if self._head_only:
            # llhttp cannot be told a HEAD answer has no body: finish here, never reuse.
            self.reusable = False
            self._complete()
        elif not self._framed and status != 204 and status != 304:
            self._until_eof = True  # neither length nor chunks: the body ends at close

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:
            self._headers = []  # the interim response's; the real one's follow
            self._framed = False
            self._coding = b""
            return
        if not self._parser.should_keep_alive():
            self.reusable = False
        self._complete()

    # -- resolving the waiter ----------------------------------------------------------------

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        self._waiter = None
        chunks = self._body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self._coding:
            decoded = _decode_body(self._coding, body)
            if decoded is None:
                coding = self._coding.decode("latin-1")
                self.close()
                waiter.set_result(Failure(f"a body in an unknown or corrupt encoding {coding!r}"))
                return
            body = decoded
        if not waiter.done():
            waiter.set_result(HTTPResponse(self._status, ResponseHeaders(self._headers), body))
