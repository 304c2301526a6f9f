"""The one I/O seam: send an :class:`HTTPRequest`, get an :class:`HTTPResponse`.

:class:`AiohttpTransport` owns the pooled ``aiohttp.ClientSession`` and turns aiohttp's
exceptions into ours, recording whether the request can have reached the server. Cancellation
passes through untouched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from ._exceptions import APIConnectionError, APITimeoutError, ClientClosedError, RequestInfo
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
    """Anything that can send a request. Tests and benchmarks may provide their own."""

    async def send(
        self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: RequestInfo
    ) -> HTTPResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """A transport over one pooled ``aiohttp.ClientSession``, created inside the running loop."""

    def __init__(self, pool: PoolConfig) -> None:
        self._pool = pool
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("This AsyncRetell client is closed; create a new one.")
        connector = aiohttp.TCPConnector(
            limit=self._pool.limit,
            keepalive_timeout=self._pool.keepalive_timeout,
            ttl_dns_cache=self._pool.dns_cache_ttl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            raise_for_status=False,
            # Our own Authorization header is the only credential; never read ~/.netrc.
            trust_env=False,
        )
        return self._session

    async def send(
        self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: RequestInfo
    ) -> HTTPResponse:
        session = self._session or self._open()
        started = time.perf_counter()
        try:
            async with session.request(
                request.method,
                request.url,
                data=request.body,
                params=request.params,
                headers=request.headers,
                timeout=timeout,
            ) as resp:
                body = await resp.read()
                response = HTTPResponse(resp.status, resp.headers, body)
        except aiohttp.ConnectionTimeoutError as exc:
            # Raised while acquiring a pooled connection or connecting: nothing was written.
            raise APITimeoutError(
                f"Timed out connecting to {info.url}", request=info, request_sent=False
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            # DNS failure, refused, TLS handshake: the request never left.
            raise APIConnectionError(
                f"Could not connect for {info.operation_id}: {exc.os_error}",
                request=info,
                request_sent=False,
            ) from exc
        except aiohttp.ServerTimeoutError as exc:
            raise APITimeoutError(
                f"Timed out reading the response of {info.operation_id}", request=info
            ) from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(
                f"Connection failed during {info.operation_id}: {type(exc).__name__}: {exc}",
                request=info,
            ) from exc
        except asyncio.TimeoutError as exc:
            raise APITimeoutError(
                f"{info.operation_id} exceeded its total timeout", request=info
            ) from exc
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %d in %.1f ms",
                request.method,
                request.url,
                response.status,
                (time.perf_counter() - started) * 1000,
            )
        return response

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
