"""How aiohttp's exceptions become ours, without sockets (tests/integration/test_wire.py has the
same over a real loopback server)."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from aioretell import _exceptions as E
from aioretell._sansio import HTTPRequest, HTTPResponse
from aioretell._transport import AiohttpTransport, PoolConfig, describe_failure, direct_exchange

INFO = E.RequestInfo("getCall", "GET", "http://x/v2/get-call/c")
KEY = "key_unit_secret"


def test_aiohttp_still_has_the_switch_for_its_own_resend() -> None:
    # The transport turns aiohttp's hidden resend off through this attribute; if a release
    # renames it, max_retries no longer bounds the requests on the wire.
    assert "_retry_connection" in aiohttp.ClientSession.ATTRS


def test_aiohttp_still_has_the_request_coroutine_the_direct_path_calls() -> None:
    # ``session.request(...)`` wraps ``session._request(...)`` in a context manager; the
    # client awaits ``_request`` itself, with these options.
    request = aiohttp.ClientSession._request
    assert inspect.iscoroutinefunction(request)
    options = inspect.signature(request).parameters
    assert {"data", "params", "headers", "timeout"} <= set(options)


def test_aiohttp_connect_is_where_a_pool_wait_happens() -> None:
    # Whether a cancelled attempt was written is read from whether aiohttp's connect is in the
    # cancellation's traceback; the queue for a pooled connection must be inside it.
    source = inspect.getsource(aiohttp.BaseConnector.connect)
    assert "_wait_for_available_connection" in source and "_create_connection" in source


def test_an_aiohttp_error_holding_the_key_is_described_not_kept() -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {KEY}"}))
    url = URL(INFO.url)
    request_info = aiohttp.RequestInfo(url, "GET", headers, url)
    cause = aiohttp.ClientResponseError(request_info, (), status=400, message="Bad status line")
    error = describe_failure(cause, INFO)
    assert isinstance(error, E.APIConnectionError)
    assert "ClientResponseError" in str(error) and "Bad status line" in str(error)
    assert error.__cause__ is None and error.__context__ is None
    assert KEY not in repr(vars(error)) and KEY not in str(error)


def _total_timeout(cancelled: BaseException) -> asyncio.TimeoutError:
    """What aiohttp's total timeout raises: a TimeoutError from the cancellation it caused."""
    try:
        raise asyncio.TimeoutError from cancelled
    except asyncio.TimeoutError as exc:
        return exc


class _QueuedForAConnection:
    """Stands in for a connector whose pool is full: aiohttp's own ``connect`` runs on it and
    is cancelled where it waits."""

    async def _get(self, key: object, traces: object) -> None:
        raise asyncio.CancelledError


async def _cancelled_inside_connect() -> BaseException:
    request = SimpleNamespace(connection_key="k", proxy=None)
    try:
        await aiohttp.BaseConnector.connect(
            _QueuedForAConnection(),  # type: ignore[arg-type]
            request,  # type: ignore[arg-type]
            [],
            aiohttp.ClientTimeout(),
        )
    except asyncio.CancelledError as exc:
        return exc
    raise AssertionError("connect was not cancelled")


async def _cancelled_after_connect() -> BaseException:
    async def reading_the_answer() -> None:
        raise asyncio.CancelledError

    try:
        await reading_the_answer()
    except asyncio.CancelledError as exc:
        return exc
    raise AssertionError("not cancelled")


async def test_total_timeout_while_connecting_was_never_sent() -> None:
    error = describe_failure(_total_timeout(await _cancelled_inside_connect()), INFO)
    assert isinstance(error, E.APITimeoutError)
    assert error.request_sent is False
    assert "nothing was sent" in str(error)


async def test_total_timeout_after_connecting_may_have_been_sent() -> None:
    error = describe_failure(_total_timeout(await _cancelled_after_connect()), INFO)
    assert isinstance(error, E.APITimeoutError)
    assert error.request_sent is True
    bare = describe_failure(_total_timeout(asyncio.CancelledError()), INFO)
    assert bare.request_sent is True  # no traceback: nothing proves it was not written


@pytest.mark.parametrize(
    ("cause", "kind", "sent"),
    [
        (aiohttp.ServerDisconnectedError(), E.APIConnectionError, True),
        (aiohttp.ServerTimeoutError("read"), E.APITimeoutError, True),
        (aiohttp.ConnectionTimeoutError("pool"), E.APITimeoutError, False),
        (aiohttp.ClientPayloadError("cut off"), E.APIConnectionError, True),
    ],
)
def test_translation(cause: BaseException, kind: type[E.APIError], sent: bool) -> None:
    error = describe_failure(cause, INFO)
    assert type(error) is kind
    assert isinstance(error, E.APIConnectionError) and error.request_sent is sent
    assert error.request is INFO


# -- which transports the client's first attempt may call directly ------------------------------


class _Counting(AiohttpTransport):
    """Overrides ``send``: it must see every request."""

    async def send(
        self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: E.RequestInfo
    ) -> HTTPResponse:
        return await super().send(request, timeout, info)


class _ExchangeOnly(AiohttpTransport):
    """Overrides ``exchange`` alone: the inherited ``send`` calls it too."""

    async def exchange(self, *parts: Any) -> HTTPResponse:
        return HTTPResponse(200, {}, b"{}")


class _SendOnly:
    async def send(self, request: Any, timeout: Any, info: Any) -> HTTPResponse:
        return HTTPResponse(200, {}, b"{}")

    async def exchange(self, *parts: Any) -> HTTPResponse:
        return HTTPResponse(200, {}, b"{}")  # not an ExchangeTransport: never called

    async def aclose(self) -> None:
        return None


def test_direct_exchange_only_where_send_is_the_exchange_s_own() -> None:
    plain = AiohttpTransport(PoolConfig())
    assert direct_exchange(plain) == plain.exchange
    assert direct_exchange(_Counting(PoolConfig())) is None
    own = _ExchangeOnly(PoolConfig())
    assert direct_exchange(own) == own.exchange
    assert direct_exchange(_SendOnly()) is None
    patched = AiohttpTransport(PoolConfig())
    patched.send = _SendOnly().send  # type: ignore[method-assign,assignment]
    assert direct_exchange(patched) is None


def test_direct_exchange_of_the_fast_transport() -> None:
    from aioretell._fast_transport import FastTransport

    fast = FastTransport()
    assert direct_exchange(fast) == fast.exchange
