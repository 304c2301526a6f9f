"""The one I/O seam: send an :class:`HTTPRequest`, get an :class:`HTTPResponse`.

:class:`AiohttpTransport` owns the pooled ``aiohttp.ClientSession`` and turns aiohttp's
exceptions into ours, recording whether the request can have reached the server. Cancellation
passes through untouched. aiohttp's exceptions are described in ours, never chained to them:
some hold the request's headers, API key included (``ClientResponseError.request_info``).

It spends as little per request as aiohttp allows: the client's fixed headers (credentials
included) are the session's defaults, read deadlines are kept by one watchdog task per pool
(:mod:`aioretell._read_watchdog`) instead of a timer per read, the response is awaited, read
and released without a context manager, and whether a timed-out attempt was ever written is
read from its traceback when it fails rather than tracked for every request.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import logging
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ClientClosedError,
    RequestInfo,
    WrongEventLoopError,
)
from ._read_watchdog import ReadWatchdog, WatchedHandler
from ._sansio import HTTPRequest, HTTPResponse

log = logging.getLogger("aioretell")


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timeouts in seconds; ``None`` disables one.

    ``connect``: opening a TCP/TLS connection. ``pool``: waiting for a free pooled connection.
    ``read``: silence between two reads of the response. ``total``: the whole attempt.

    ``pool`` is unset by default: under high concurrency, waiting for a pooled connection is
    queueing, not a fault (set ``total`` to bound it). It also spares aiohttp a timer per request.
    """

    connect: float | None = 10.0
    read: float | None = 60.0
    pool: float | None = None
    total: float | None = None

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        # aiohttp's ``connect`` bounds pool acquire plus connecting; ``sock_connect`` the connect.
        acquire = None if self.pool is None else self.pool + (self.connect or 0.0)
        return aiohttp.ClientTimeout(
            total=self.total, connect=acquire, sock_connect=self.connect, sock_read=self.read
        )


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Connection pool settings. A dialer wants ``limit`` in the hundreds."""

    limit: int = 100
    #: Shorter than the idle timeout of typical servers and load balancers (60 s), so we drop an
    #: idle connection before the server does and rarely write into a closed one.
    keepalive_timeout: float = 15.0
    dns_cache_ttl: int = 300


class Transport(Protocol):
    """Anything that can send a request. Tests and benchmarks may provide their own.

    ``request.headers`` are all the headers of the request (credentials included), except
    when the client built the transport itself with its fixed headers (see
    :class:`AiohttpTransport`): then they are only the request's own (its Content-Type).
    """

    async def send(
        self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: RequestInfo
    ) -> HTTPResponse: ...

    async def aclose(self) -> None: ...


#: A bound :meth:`ExchangeTransport.exchange`.
Exchange = Callable[..., Coroutine[Any, Any, HTTPResponse]]


class ExchangeTransport(abc.ABC):
    """A :class:`Transport` whose ``send`` is its :meth:`exchange`: the request given as its
    parts. The client calls ``exchange`` itself for a request with nothing to pace, so that
    it is sent without its :class:`HTTPRequest` and :class:`RequestInfo` being built first
    (see :func:`direct_exchange`). Both of aioretell's transports are one.
    """

    def send(
        self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: RequestInfo
    ) -> Coroutine[Any, Any, HTTPResponse]:
        """:meth:`exchange` of ``request`` (its errors describe it as ``info`` does)."""
        return self.exchange(
            info.operation_id,
            request.method,
            request.url,
            request.headers,
            request.body,
            request.params,
            timeout,
        )

    @abc.abstractmethod
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
        """Send one request, given as its parts. It raises what ``send`` raises, with
        ``RequestInfo(operation_id, method, url)`` built only then."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...


def direct_exchange(transport: object) -> Exchange | None:
    """``transport.exchange`` when the client may call it instead of ``send``, else None.

    Only when ``send`` is :class:`ExchangeTransport`'s own: a subclass (or an instance) whose
    ``send`` was replaced, to count, delay or fail requests, still sees every request; one
    that overrides ``exchange`` is called through it anyway.
    """
    if (
        isinstance(transport, ExchangeTransport)
        and type(transport).send is ExchangeTransport.send
        and "send" not in getattr(transport, "__dict__", ())
    ):
        return transport.exchange
    return None


class _Connector(aiohttp.TCPConnector):
    """aiohttp's TCP pool, its connections' read deadlines kept by a :class:`ReadWatchdog`."""

    def __init__(self, *, watchdog: ReadWatchdog, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory = functools.partial(  # type: ignore[assignment]  # a subclass
            WatchedHandler, loop=self._loop, watchdog=watchdog
        )


#: The code of aiohttp's ``BaseConnector.connect``: queueing for a pooled connection, resolving
#: and connecting all happen inside it, and it returns only with a connection.
_CONNECT_CODE = aiohttp.BaseConnector.connect.__code__


def _cut_short_connecting(cancelled: BaseException | None) -> bool:
    """Whether the cancellation ``cancelled`` hit the attempt inside ``connect``, before it
    held a connection: then nothing was written. Told from its traceback, on the error path
    only, so that a request pays nothing for it."""
    tb = None if cancelled is None else cancelled.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is _CONNECT_CODE:
            return True
        tb = tb.tb_next
    return False


async def _closed_with_its_loop(
    session: aiohttp.ClientSession, watchdog: ReadWatchdog
) -> AsyncGenerator[None, None]:
    """Closes ``session`` and stops its watchdog once closed itself: by
    :meth:`AiohttpTransport.aclose`, or else by the event loop's shutdown, which closes every
    async generator started in it (``asyncio.run`` does). A client left open still closes its
    connections in their own loop.
    """
    try:
        yield
    finally:
        await watchdog.stop()
        await session.close()


class AiohttpTransport(ExchangeTransport):
    """A transport over one pooled ``aiohttp.ClientSession``, created inside the running loop.

    ``headers`` are sent with every request as the session's defaults: the client that builds
    its own transport gives its fixed headers (key included) here once, and its requests then
    carry only their own. The session belongs to the loop of the first request; using it from
    another loop raises :class:`WrongEventLoopError`.
    """

    def __init__(self, pool: PoolConfig, *, headers: Mapping[str, str] | None = None) -> None:
        self._pool = pool
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncGenerator[None, None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._pool!r})"  # never the headers: they hold the key

    async def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("This AsyncRetell client is closed; create a new one.")
        watchdog = ReadWatchdog()
        connector = _Connector(
            watchdog=watchdog,
            limit=self._pool.limit,
            keepalive_timeout=self._pool.keepalive_timeout,
            ttl_dns_cache=self._pool.dns_cache_ttl,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            raise_for_status=False,
            # Our own Authorization header is the only credential; never read ~/.netrc.
            trust_env=False,
            # An API client keeps no state between requests: no cookie is stored or replayed.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        # aiohttp resends a GET, PUT or DELETE once by itself when the connection drops after
        # the request was written, unseen by our retry loop (max_retries=0 would still send
        # twice). There is no public switch; this is the flag aiohttp's own test client clears.
        session._retry_connection = False
        self._session, self._loop = session, asyncio.get_running_loop()
        self._closer = _closed_with_its_loop(session, watchdog)
        await anext(self._closer)
        return session

    def _wrong_loop(self, loop: asyncio.AbstractEventLoop) -> WrongEventLoopError:
        state = "has since closed" if loop.is_closed() else "is another one"
        return WrongEventLoopError(
            f"This AsyncRetell client was used from an event loop other than the one it first "
            f"sent a request in (which {state}); its connection pool belongs to that loop. "
            "Create the client inside the loop that uses it, e.g. in the coroutine given to "
            "asyncio.run(), one client per loop."
        )

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
        session = self._session
        if session is None:
            session = await self._open()
        elif self._loop is not asyncio.get_running_loop():
            assert self._loop is not None
            raise self._wrong_loop(self._loop)
        debug = log.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        try:
            # ``session.request`` is ``_request`` wrapped in a context manager we do not use
            # (tests/unit/test_transport.py checks that aiohttp still has it).
            resp = await session._request(
                method, url, data=body, params=params, headers=headers, timeout=timeout
            )
            try:
                data = await resp.read()
            finally:
                resp.release()
        except ERRORS as exc:
            error = describe_failure(exc, RequestInfo(operation_id, method, url))
        else:
            if debug:
                log.debug(
                    "%s %s -> %d in %.1f ms",
                    method,
                    url,
                    resp.status,
                    (time.perf_counter() - started) * 1000,
                )
            return HTTPResponse(resp.status, resp.headers, data)
        # Raised outside the except block, so aiohttp's exception is not its __context__ either
        # (on Python 3.10 a parser error aiohttp handled can still be: ``from None`` hides it).
        raise error from None

    async def aclose(self) -> None:
        self._closed = True
        closer, self._closer = self._closer, None
        self._session = None
        self._headers.clear()  # the key goes with the pool
        # From another loop the session cannot be closed safely; its own loop's shutdown does.
        if closer is not None and self._loop is asyncio.get_running_loop():
            await closer.aclose()


#: What an aiohttp exchange raises when it fails (cancellation aside).
ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def describe_failure(exc: BaseException, info: RequestInfo) -> APIError:
    """Our exception for aiohttp's ``exc``, which it describes but does not reference.

    Raise it outside the ``except`` block that caught ``exc``, so that ``exc`` is not its
    ``__context__`` either.
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        # Raised while acquiring a pooled connection or connecting: nothing was written.
        return APITimeoutError(
            f"Timed out connecting to {info.url}", request=info, request_sent=False
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        # DNS failure, refused, TLS handshake: the request never left.
        return APIConnectionError(
            f"Could not connect for {info.operation_id}: {exc.os_error}",
            request=info,
            request_sent=False,
        )
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return APITimeoutError(
            f"Timed out reading the response of {info.operation_id}", request=info
        )
    if isinstance(exc, aiohttp.ClientError):
        return APIConnectionError(
            f"Connection failed during {info.operation_id}: {type(exc).__name__}: {exc}",
            request=info,
        )
    # aiohttp's total timeout cancels the attempt wherever it is and raises TimeoutError from
    # that cancellation.
    if _cut_short_connecting(exc.__cause__ or exc.__context__):
        return APITimeoutError(
            f"{info.operation_id} exceeded its total timeout before it had a connection; "
            "nothing was sent",
            request=info,
            request_sent=False,
        )
    return APITimeoutError(f"{info.operation_id} exceeded its total timeout", request=info)
