"""``FastTransport``: an opt-in transport on ``asyncio.Protocol`` and ``httptools``.

It does the one thing this client needs, HTTP/1.1 requests with JSON bodies over a keep-alive
pool, in a fraction of aiohttp's CPU time: the header block of each distinct set of headers is
encoded once and kept, responses are parsed by llhttp (``httptools``) straight from the
protocol's ``data_received``, response headers are decoded only when read, and each request
costs one future and at most one timer.

Its semantics match :class:`~aioretell._transport.AiohttpTransport`'s or are stricter:

* ``request_sent`` is False only when no byte of the request was written: a failure while
  waiting for a pooled connection, resolving, connecting or in the TLS handshake;
* connect, pool, read and total timeouts as in ``aiohttp.ClientTimeout`` (non-positive values
  disable one), raised as :class:`APITimeoutError`;
* no request is ever sent twice: a failure is raised, never retried here;
* a pooled connection that the server closed, half-closed, or wrote to out of turn is
  dropped before it is reused; one idle for ``keepalive_timeout`` is dropped too;
* errors are described in text, never chained: no object reachable from a raised exception
  holds the request (or its ``Authorization`` header).

Asking for what it does not do (a proxy, HTTP/2, following redirects, content codings other
than gzip and deflate) makes construction fail with a ``ValueError`` that names
``AiohttpTransport``; nothing falls back silently in the middle of a request. A redirect is
returned as the answer, like any other status.
"""

from __future__ import annotations

import asyncio
import collections
import math
import ssl as ssl_module
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    RequestInfo,
    WrongEventLoopError,
)
from ._fast_http import Connection, Failure, loop_clock
from ._sansio import HTTPResponse
from ._transport import ExchangeTransport, PoolConfig

if TYPE_CHECKING:
    import aiohttp

__all__ = ["FastTransport"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Methods whose empty body is still announced with ``Content-Length: 0`` (as aiohttp does).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Characters a request target may carry as they are; anything else is percent-encoded.
_TARGET_SAFE = "/?&=%:@!$'()*+,;~-._[]"
#: Content codings this transport decodes; any other asked for in a header fails up front.
_CODINGS = frozenset({"gzip", "x-gzip", "deflate", "identity"})
#: The header blocks kept at once (one per distinct header set: in practice a handful).
_MAX_HEADER_BLOCKS = 256
#: How long to wait for an IPv6 attempt before racing IPv4 (RFC 8305's recommendation).
_HAPPY_EYEBALLS_DELAY = 0.25

_EXPIRED: Any = object()  # a pool waiter's future result: its wait ran out
_CLOSING: Any = object()  # a pool waiter's future result: the transport was closed


def _limit(value: float | None) -> float | None:
    """A timeout in seconds, or None when unset or non-positive (aiohttp's reading of 0)."""
    return value if value is not None and value > 0 else None


class _Origin:
    """Where requests to one ``scheme://host:port`` go, and its idle connections."""

    __slots__ = ("host", "host_header", "idle", "port", "prefix", "server_hostname", "tls")

    def __init__(self, prefix: str, tls: ssl_module.SSLContext | None) -> None:
        parts = urlsplit(prefix)
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "FastTransport does not send credentials written into the URL; put them in a "
                "header, or use AiohttpTransport"
            )
        host = parts.hostname
        if not host:
            raise ValueError("the request URL has no host")
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        self.prefix = prefix
        self.host = host
        self.port = port
        self.tls = tls
        self.server_hostname = host if tls is not None else None
        shown = f"[{host}]" if ":" in host else host
        if port != _DEFAULT_PORTS[parts.scheme]:
            shown = f"{shown}:{port}"
        self.host_header = shown.encode("idna" if not shown.isascii() else "ascii")
        #: idle keep-alive connections, the most recently used last
        self.idle: list[Connection] = []


class FastTransport(ExchangeTransport):
    """HTTP/1.1 over a keep-alive pool on ``asyncio.Protocol``, parsed with ``httptools``.

    ``connection_limit`` and ``keepalive_timeout`` mean what they mean to ``AsyncRetell``;
    ``headers`` are sent with every request, beneath its own (as ``AiohttpTransport``'s are).
    ``ssl`` is the context for ``https://`` URLs, by default ``ssl.create_default_context()``
    (certificates and host names verified). Names are resolved by the event loop whenever a
    connection is opened (no DNS cache: a keep-alive pool rarely opens one). The pool serves the
    event loop of its first request only.

    The client does not close a transport it was given, so open both together::

        async with FastTransport() as transport, AsyncRetell(transport=transport) as client:
            ...

    ``proxy``, ``http2``, ``follow_redirects`` and ``accept_encoding`` (beyond gzip and deflate)
    exist to fail loudly: asking for them raises ``ValueError`` naming ``AiohttpTransport``.
    """

    @classmethod
    def from_pool(
        cls, pool: PoolConfig, *, headers: Mapping[str, str] | None = None
    ) -> FastTransport:
        """The transport a client builds from its :class:`PoolConfig` and fixed headers, as
        it builds an ``AiohttpTransport`` (``dns_cache_ttl`` is not used)."""
        return cls(
            connection_limit=pool.limit, keepalive_timeout=pool.keepalive_timeout, headers=headers
        )

    def __init__(
        self,
        *,
        connection_limit: int = 100,
        keepalive_timeout: float = 15.0,
        headers: Mapping[str, str] | None = None,
        ssl: ssl_module.SSLContext | None = None,
        proxy: str | None = None,
        http2: bool = False,
        follow_redirects: bool = False,
        accept_encoding: str = "gzip",
    ) -> None:
        if isinstance(connection_limit, bool) or not isinstance(connection_limit, int):
            raise TypeError(
                f"connection_limit must be an int, not {type(connection_limit).__name__}"
            )
        if connection_limit < 1:
            raise ValueError(f"connection_limit must be at least 1, got {connection_limit}")
        keepalive = keepalive_timeout
        if isinstance(keepalive, bool) or not isinstance(keepalive, (int, float)):
            raise TypeError(f"keepalive_timeout must be a number, not {type(keepalive).__name__}")
        if not math.isfinite(keepalive) or keepalive < 0:
            raise ValueError(f"keepalive_timeout must be finite seconds >= 0, got {keepalive}")
        if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
            raise TypeError(f"ssl must be an ssl.SSLContext or None, not {type(ssl).__name__}")
        if proxy is not None:
            raise ValueError(
                "FastTransport does not connect through a proxy (proxy=...); aiohttp, under "
                "the default AiohttpTransport, can"
            )
        if http2 is not False:
            raise ValueError(
                "FastTransport speaks HTTP/1.1 only (http2=True), as does the default "
                "AiohttpTransport"
            )
        if follow_redirects is not False:
            raise ValueError(
                "FastTransport does not follow redirects (follow_redirects=True); the default "
                "AiohttpTransport does"
            )
        _check_codings("accept_encoding", accept_encoding)
        #: sent with every request, beneath the request's own headers
        self._headers = dict(headers or {})
        self._limit = connection_limit
        self._keepalive = float(keepalive)
        self._accept_encoding = accept_encoding.encode("ascii")
        self._ssl = ssl
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the loop's clock (see :func:`loop_clock`), set with ``_loop``
        self._clock: Callable[[], float] = time.monotonic
        self._closer: AsyncGenerator[None, None] | None = None
        self._closed = False
        #: connections open, being opened, or promised to a waiter (never above ``_limit``)
        self._count = 0
        self._connections: set[Connection] = set()
        self._waiters: collections.deque[tuple[asyncio.Future[Any], _Origin]] = collections.deque()
        self._origins: dict[str, _Origin] = {}
        self._blocks: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
        self._blocks_by_id: dict[int, tuple[Any, _Origin, int, bytes]] = {}
        #: the last timeout seen, and its (total, read) limits
        self._timeout: Any = None
        self._limits: tuple[float | None, float | None] = (None, None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._connections)} connections"
        return f"FastTransport(limit={self._limit}, {state})"

    async def __aenter__(self) -> FastTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- building the request ----------------------------------------------------------------

    def _origin(self, prefix: str) -> _Origin:
        origin = self._origins.get(prefix)
        if origin is None:
            scheme = prefix.partition(":")[0].lower()
            if scheme not in _DEFAULT_PORTS:
                raise ValueError(f"FastTransport speaks http and https, not {scheme!r}")
            tls = None
            if scheme == "https":
                if self._ssl is None:
                    self._ssl = ssl_module.create_default_context()
                tls = self._ssl
            origin = self._origins[prefix] = _Origin(prefix, tls)
        return origin

    def _header_block(self, origin: _Origin, headers: Any) -> bytes:
        """``Host`` and ``headers`` encoded once per distinct set (the key among them).

        A request's headers are an immutable part of it (``HTTPRequest`` is frozen), and a
        client sends the same mapping object with each request, so the block is found by the
        mapping's identity first: the entry keeps the mapping alive (its id cannot be reused)
        and its length (a mapping cleared at close does not match). By content otherwise.
        """
        seen = self._blocks_by_id.get(id(headers))
        if (
            seen is not None
            and seen[0] is headers
            and seen[1] is origin
            and seen[2] == len(headers)
        ):
            return seen[3]
        block = self._encode_headers(origin, headers)
        if len(self._blocks_by_id) >= _MAX_HEADER_BLOCKS:
            self._blocks_by_id.clear()
        self._blocks_by_id[id(headers)] = (headers, origin, len(headers), block)
        return block

    def _encode_headers(self, origin: _Origin, headers: Any) -> bytes:
        key = (origin.prefix, tuple(headers.items()))
        block = self._blocks.get(key)
        if block is None:
            # The transport's own headers, unless the request gives one of the same name.
            own = {name.lower() for name in headers if isinstance(name, str)}
            merged = [(n, v) for n, v in self._headers.items() if n.lower() not in own]
            lines = [b"Host: " + origin.host_header]
            names = set()
            for name, value in (*merged, *key[1]):
                if not isinstance(name, str) or not isinstance(value, str):
                    raise TypeError("header names and values must be str")
                lowered = name.lower()
                if "\r" in name or "\n" in name or ":" in name or not name.strip():
                    raise ValueError(f"invalid header name {name!r}")
                if "\r" in value or "\n" in value:
                    # The value is not shown: it may be a credential.
                    raise ValueError(f"the value of header {name!r} contains a line break")
                if lowered in ("host", "content-length", "transfer-encoding", "connection"):
                    raise ValueError(f"header {name!r} is set by the transport")
                if lowered == "accept-encoding":
                    _check_codings("the Accept-Encoding header", value)
                names.add(lowered)
                lines.append(name.encode("ascii") + b": " + value.encode("utf-8"))
            if "accept-encoding" not in names:
                lines.append(b"Accept-Encoding: " + self._accept_encoding)
            block = b"\r\n".join(lines) + b"\r\n"
            if len(self._blocks) >= _MAX_HEADER_BLOCKS:
                self._blocks.clear()
            self._blocks[key] = block
        return block

    def _prepare(
        self, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str]
    ) -> tuple[_Origin, str, bytes]:
        """Where a request goes: its origin, its request target, and its header block
        (checked, so a bad header fails here, before a connection is taken)."""
        end = url.find("/", 8)  # past "https://" and at least one character of host
        query = url.find("?", 8)
        if query != -1 and (end == -1 or query < end):
            end = query
        if end == -1:
            prefix, target = url, "/"
        else:
            prefix, target = url[:end], url[end:]
            if target[0] == "?":
                target = "/" + target
        origin = self._origin(prefix)
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params, quote_via=quote)
        if not (target.isascii() and target.isprintable()) or " " in target or "#" in target:
            target = quote(target.partition("#")[0], safe=_TARGET_SAFE)
        return origin, target, self._header_block(origin, headers)

    # -- sending -----------------------------------------------------------------------------

    async def exchange(
        self,
        operation_id: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        params: Mapping[str, str] | None,
        timeout: aiohttp.ClientTimeout,
        /,
    ) -> HTTPResponse:
        # Its RequestInfo is built only when it has to open a connection, or for an error.
        loop = self._loop
        if loop is None:
            loop = await self._bind()
        elif loop is not asyncio.get_running_loop():
            state = "has since closed" if loop.is_closed() else "is another one"
            raise WrongEventLoopError(
                "This AsyncRetell client was used from an event loop other than the one its "
                f"FastTransport first sent a request in (which {state}); its connections "
                "belong to that loop. Create the client inside the loop that uses it, e.g. in "
                "the coroutine given to asyncio.run(), one client per loop."
            )
        if self._closed:
            raise ClientClosedError("This AsyncRetell client is closed; create a new one.")
        origin, target, block = self._prepare(url, params, headers)
        now = self._clock()
        if timeout is not self._timeout:  # a client sends the same one with every request
            self._limits = (_limit(timeout.total), _limit(timeout.sock_read))
            self._timeout = timeout
        total, read = self._limits
        deadline = None if total is None else now + total
        conn: Connection | None = None
        idle = origin.idle
        while idle:
            candidate = idle.pop()
            if candidate.reusable and now - candidate.last_read < self._keepalive:
                conn = candidate
                break
            self._discard(candidate)
        if conn is None:
            info = RequestInfo(operation_id, method, url)
            # aiohttp's ``connect`` bounds waiting for the pool and connecting together,
            # ``sock_connect`` the connecting alone.
            acquire = _limit(timeout.connect)
            acquire_deadline = None if acquire is None else now + acquire
            if deadline is not None and (acquire_deadline is None or deadline < acquire_deadline):
                acquire_deadline = deadline
            while conn is None:
                # Queued requests wait in this coroutine, not in a helper's: a frame less for
                # each of the thousands a dialer may queue.
                queued = self._slot_or_queue(origin, acquire_deadline)
                if queued is None:
                    got = await self._connect(origin, timeout, acquire_deadline, info)
                else:
                    try:
                        got = await queued
                    except BaseException:
                        # Cancelled; what may have been handed over meanwhile goes back.
                        if queued.done() and not queued.cancelled():
                            self._give_back(queued.result())
                        raise
                    if got is None:  # a slot was handed over: open a connection in it
                        got = await self._connect(origin, timeout, acquire_deadline, info)
                if isinstance(got, Connection):
                    if got.reusable:
                        conn = got
                        now = self._clock()  # the wait for a connection took time
                    else:
                        self._discard(got)  # closed by the server before this request woke up
                else:
                    raise self._unsent(got, origin, info)
        waiter = conn.start(
            _wire(method, target, block, body), now, read, deadline, method == "HEAD"
        )
        # From here on the request may have reached the server.
        try:
            result = await waiter
        except BaseException:
            # Cancelled: the response will never be read, so the connection cannot be reused.
            self._discard(conn)
            raise
        if type(result) is HTTPResponse:
            if not conn.reusable:
                self._discard(conn)
            elif self._waiters:
                self._release(conn)
            else:
                conn.key.idle.append(conn)
            return result
        self._discard(conn)
        assert isinstance(result, Failure)
        info = RequestInfo(operation_id, method, url)
        if result.timed_out:
            # Worded as AiohttpTransport words them.
            if result.reason == "total":
                raise APITimeoutError(f"{operation_id} exceeded its total timeout", request=info)
            raise APITimeoutError(
                f"Timed out reading the response of {operation_id} ({result.reason})",
                request=info,
            )
        raise APIConnectionError(
            f"Connection failed during {operation_id}: {result.reason}", request=info
        )

    async def _bind(self) -> asyncio.AbstractEventLoop:
        """Tie the pool to the running loop, and its connections' end to the loop's end."""
        if self._closed:
            raise ClientClosedError("This AsyncRetell client is closed; create a new one.")
        loop = self._loop = asyncio.get_running_loop()
        self._clock = loop_clock(loop)
        self._closer = _closed_with_its_loop(self)
        await anext(self._closer)
        return loop

    # -- the pool ----------------------------------------------------------------------------

    def _slot_or_queue(self, origin: _Origin, deadline: float | None) -> asyncio.Future[Any] | None:
        """None when a slot is now this request's to open a connection in; else its place in
        the queue, which resolves to a handed-over connection, None (a slot), or a marker."""
        if self._count < self._limit:
            self._count += 1
            return None
        if self._evict_elsewhere(origin):
            return None
        return self._queue(origin, deadline)

    def _unsent(self, got: Any, origin: _Origin, info: RequestInfo) -> APIConnectionError:
        """The error for a request that got no connection (nothing of it was written)."""
        if isinstance(got, APIConnectionError):
            return got
        if got is _EXPIRED:
            return APITimeoutError(
                f"Timed out waiting for a connection to {origin.prefix} "
                f"({info.operation_id}); nothing was sent",
                request=info,
                request_sent=False,
            )
        return APIConnectionError(
            f"The transport was closed while {info.operation_id} waited for a connection; "
            "nothing was sent",
            request=info,
            request_sent=False,
        )

    def _queue(self, origin: _Origin, deadline: float | None) -> asyncio.Future[Any]:
        """A place in the queue for a connection; by ``deadline`` it resolves to _EXPIRED."""
        loop = self._loop
        assert loop is not None
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiters.append((waiter, origin))
        if deadline is not None:
            expiry = loop.call_at(deadline, _expire, waiter)
            waiter.add_done_callback(lambda _: expiry.cancel())
        return waiter

    def _give_back(self, got: Any) -> None:
        """What a queued request was handed but will not use (it was cancelled)."""
        if got is None:
            self._count -= 1
            self._hand_over_slot()
        elif isinstance(got, Connection):
            self._release(got)

    async def _connect(
        self,
        origin: _Origin,
        timeout: aiohttp.ClientTimeout,
        acquire_deadline: float | None,
        info: RequestInfo,
    ) -> Connection | APIConnectionError:
        """Open a connection in a slot already counted; on failure the slot is given back."""
        loop = self._loop
        assert loop is not None
        limit = _limit(timeout.sock_connect)
        if acquire_deadline is not None:
            left = max(acquire_deadline - loop.time(), 0.0)
            limit = left if limit is None else min(limit, left)
        conn = Connection(loop, origin)
        self._connections.add(conn)
        options: dict[str, Any] = {}
        if isinstance(loop, asyncio.BaseEventLoop):  # asyncio's own loops; uvloop has no such knob
            options["happy_eyeballs_delay"] = _HAPPY_EYEBALLS_DELAY
        connecting = loop.create_task(
            loop.create_connection(
                lambda: conn,
                origin.host,
                origin.port,
                ssl=origin.tls,
                server_hostname=origin.server_hostname,
                **options,
            )
        )
        try:
            await asyncio.wait((connecting,), timeout=limit)
        except BaseException:
            connecting.cancel()
            connecting.add_done_callback(_retrieve)
            self._discard(conn)
            raise
        if not connecting.done():
            connecting.cancel()
            connecting.add_done_callback(_retrieve)
            self._discard(conn)
            return APITimeoutError(
                f"Timed out connecting to {info.url}; nothing was sent",
                request=info,
                request_sent=False,
            )
        error = connecting.exception()
        if error is not None:
            self._discard(conn)
            return APIConnectionError(
                f"Could not connect for {info.operation_id}: {type(error).__name__}: {error}",
                request=info,
                request_sent=False,
            )
        if self._closed:
            self._discard(conn)
            return APIConnectionError(
                f"The transport was closed while {info.operation_id} was connecting; "
                "nothing was sent",
                request=info,
                request_sent=False,
            )
        return conn

    def _release(self, conn: Connection) -> None:
        """A reusable connection after its response: to the first waiter, else idle."""
        waiters = self._waiters
        while waiters:
            waiter, origin = waiters.popleft()
            if waiter.done():
                continue
            if origin is conn.key:
                waiter.set_result(conn)
            else:
                # The waiter wants another origin: this connection's slot is its to open.
                conn.close()
                self._connections.discard(conn)
                waiter.set_result(None)
            return
        conn.key.idle.append(conn)

    def _discard(self, conn: Connection) -> None:
        """Close ``conn`` and free its slot (for the first waiter, if any)."""
        conn.close()
        if conn in self._connections:  # not yet discarded, nor dropped by ``aclose``
            self._connections.discard(conn)
            self._count -= 1
            self._hand_over_slot()

    def _hand_over_slot(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter, _ = waiters.popleft()
            if not waiter.done():
                self._count += 1
                waiter.set_result(None)
                return

    def _evict_elsewhere(self, origin: _Origin) -> bool:
        """Close the longest-idle connection of another origin, keeping its slot; False when
        there is none. (A pool full of one origin's idle connections must not starve another.)
        """
        for other in self._origins.values():
            if other is not origin and other.idle:
                conn = other.idle.pop(0)
                self._connections.discard(conn)
                conn.close()
                return True
        return False

    async def aclose(self) -> None:
        """Close every connection; requests in flight fail, queued ones fail unsent."""
        closer, self._closer = self._closer, None
        if closer is not None and self._loop is asyncio.get_running_loop():
            await closer.aclose()  # runs _shut_down
        else:
            # Unused, or closed from another loop: its own loop's shutdown closes the rest.
            self._shut_down()

    def _shut_down(self) -> None:
        self._closed = True
        for origin in self._origins.values():
            origin.idle.clear()
        connections, self._connections = self._connections, set()
        for conn in connections:
            conn.fail("the transport was closed")  # a request in flight on it fails
        self._count = 0
        waiters, self._waiters = self._waiters, collections.deque()
        for waiter, _ in waiters:
            if not waiter.done():
                waiter.set_result(_CLOSING)
        self._blocks.clear()  # they hold the credentials
        self._blocks_by_id.clear()
        self._headers.clear()


async def _closed_with_its_loop(transport: FastTransport) -> AsyncGenerator[None, None]:
    """Shuts ``transport`` down once closed itself: by :meth:`FastTransport.aclose`, or else by
    the event loop's shutdown, which closes every async generator started in it
    (``asyncio.run`` does). A transport left open still closes its connections in their loop.
    """
    try:
        yield
    finally:
        transport._shut_down()


def _wire(method: str, target: str, block: bytes, body: bytes | None) -> bytes:
    """The request's bytes: made once it has a connection, so a queued request holds none."""
    head = (method + " " + target + " HTTP/1.1\r\n").encode("ascii")
    if body is None:
        tail = b"Content-Length: 0\r\n\r\n" if method in _BODY_METHODS else b"\r\n"
        return b"".join((head, block, tail))
    return b"".join((head, block, b"Content-Length: %d\r\n\r\n" % len(body), body))


def _check_codings(where: str, value: str) -> None:
    codings = {c.split(";")[0].strip().lower() for c in value.split(",")}
    unknown = sorted(codings - _CODINGS)
    if unknown:
        raise ValueError(
            f"FastTransport decodes gzip and deflate only ({where} asks for {unknown}); the "
            "default AiohttpTransport decodes br too, with the brotli package installed"
        )


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(_EXPIRED)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Consume the outcome of an abandoned connect, so asyncio does not log it as lost."""
    if not task.cancelled():
        transport_and_protocol = None if task.exception() else task.result()
        if transport_and_protocol is not None:
            transport_and_protocol[0].close()
