"""``AsyncRetell``: the session manager and the one pipeline every operation goes through."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import aiohttp
import msgspec
from msgspec import UNSET

from ._exceptions import (
    AmbiguousOutcomeError,
    APIConnectionError,
    APIError,
    ClientClosedError,
    RequestInfo,
)
from ._idempotency import new_idempotency_key
from ._operation import Operation, RetrySafety
from ._pacing import Pacer, Pacing
from ._resources import Resources
from ._retry import Decision, RetryPolicy, decide, log_first_retry
from ._sansio import (
    HTTPRequest,
    body_decoder,
    decode_success,
    encode_json,
    encode_query,
    invalid_body,
    render_path,
    status_error,
)
from ._transport import AiohttpTransport, PoolConfig, Timeout, Transport, direct_exchange
from ._validation import resolve_api_key
from ._version import __version__

if TYPE_CHECKING:
    from ._multipart import Form

DEFAULT_BASE_URL = "https://api.retellai.com"

_NOT_GIVEN: Any = object()
T = TypeVar("T")

#: Methods that ``request`` repeats after an ambiguous failure unless told otherwise.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_METHODS = _IDEMPOTENT_METHODS | {"POST", "PATCH"}
_PACING_METHODS = (
    "try_reserve",
    "reserve",
    "on_response",
    "on_unpaced_response",
    "release",
    "set_time",
)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a view of the client may change. Frozen: a view gets its own copy."""

    base_url: str
    timeout: Timeout
    retry: RetryPolicy
    aiohttp_timeout: aiohttp.ClientTimeout


class _Shared:
    """What every view of one client shares: the transport, the pacer, the request headers."""

    __slots__ = (
        "closed",
        "exchange",
        "headers",
        "json_headers",
        "owns_transport",
        "pacer",
        "transport",
    )

    def __init__(
        self, transport: Transport, headers: dict[str, str], owns: bool, pacer: Pacing[Any]
    ) -> None:
        self.transport = transport
        #: the transport's ``exchange``, which a first attempt with nothing to pace calls
        #: instead of ``send`` (see ``AsyncRetell._request``); None when it has none
        self.exchange = direct_exchange(transport)
        #: What a request without a body sends besides the transport's own headers:
        #: nothing when the client built the transport with its fixed headers, else all of
        #: them. ``json_headers`` add the body's Content-Type.
        self.headers = headers
        self.json_headers = {**headers, "Content-Type": "application/json"}
        self.owns_transport = owns
        self.pacer = pacer
        self.closed = False


def _timeout(value: float | Timeout | None) -> Timeout:
    if isinstance(value, Timeout):
        return value
    if value is None:
        return Timeout()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or a Timeout, not {value!r}")
    if value <= 0:
        raise ValueError(f"timeout must be positive, got {value}")
    return replace(Timeout(), total=float(value))


class AsyncRetell(Resources):
    """An asyncio client for the Retell API.

    Use it as ``async with AsyncRetell() as client:`` so the connection pool is opened in the
    running loop and closed on exit. The API key comes from ``api_key`` or ``$RETELL_API_KEY``;
    the base URL from ``base_url``, ``$RETELL_BASE_URL`` or the production server.
    ``pacer`` replaces the in-process pacer, e.g. with a
    :class:`~aioretell.redis_pacer.RedisPacer` shared by many processes; its owner closes it.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | Timeout | None = None,
        max_retries: int = 2,
        retry_ambiguous_creates: bool = False,
        connection_limit: int = 100,
        keepalive_timeout: float = 15.0,
        dns_cache_ttl: int = 300,
        rate_limit: float | None = None,
        create_rate_limit: float | None = None,
        max_concurrency: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        transport: Transport | Literal["aiohttp", "fast"] | None = None,
        pacer: Pacing[Any] | None = None,
    ) -> None:
        key = resolve_api_key(api_key)
        _check_transport(transport)
        if pacer is not None:
            if not all(callable(getattr(pacer, name, None)) for name in _PACING_METHODS):
                raise TypeError(
                    "pacer must implement aioretell's Pacing interface (e.g. a RedisPacer), "
                    f"not {type(pacer).__name__}"
                )
            given = [
                name
                for name, value in (
                    ("rate_limit", rate_limit),
                    ("create_rate_limit", create_rate_limit),
                    ("max_concurrency", max_concurrency),
                )
                if value is not None
            ]
            if given:
                raise ValueError(f"set {', '.join(given)} on the pacer, not with pacer=")
        url = base_url or os.environ.get("RETELL_BASE_URL") or DEFAULT_BASE_URL
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
        _check_retries(max_retries)
        if isinstance(connection_limit, bool) or not isinstance(connection_limit, int):
            raise TypeError("connection_limit must be an int")
        if connection_limit < 1:
            raise ValueError(f"connection_limit must be at least 1, got {connection_limit}")
        resolved_timeout = _timeout(timeout)
        self._config = ClientConfig(
            base_url=url.rstrip("/"),
            timeout=resolved_timeout,
            retry=RetryPolicy(
                max_retries=max_retries, retry_ambiguous_creates=retry_ambiguous_creates
            ),
            aiohttp_timeout=resolved_timeout.to_aiohttp(),
        )
        headers = {
            "Accept": "application/json",
            "User-Agent": f"aioretell/{__version__}",
            **(default_headers or {}),
            "Authorization": f"Bearer {key}",
        }
        chosen: Transport
        owns = transport is None or isinstance(transport, str)
        if transport is None or isinstance(transport, str):  # ``owns``, spelt for mypy
            # Our own transport sends the fixed headers as its session's defaults, so that
            # nothing is merged per request; a caller's transport gets them with each request.
            pool = PoolConfig(
                limit=connection_limit,
                keepalive_timeout=keepalive_timeout,
                dns_cache_ttl=dns_cache_ttl,
            )
            if transport == "fast":
                from ._fast_transport import FastTransport

                chosen = FastTransport.from_pool(pool, headers=headers)
            else:
                chosen = AiohttpTransport(pool, headers=headers)
            headers = {}
        else:
            chosen = transport
        if pacer is None:
            pacer = Pacer(
                rate_limit=rate_limit,
                create_rate_limit=create_rate_limit,
                max_concurrency=max_concurrency,
            )
        self._shared = _Shared(chosen, headers, owns, pacer)
        #: injectable so retry tests need no real time
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncRetell:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool. Views made by :meth:`with_options` share it."""
        shared = self._shared
        if shared.closed:
            return
        shared.closed = True
        shared.headers.clear()  # drop the credential with the pool
        shared.json_headers.clear()
        if shared.owns_transport:
            await shared.transport.aclose()

    aclose = close

    @property
    def is_closed(self) -> bool:
        return self._shared.closed

    def _check_open(self) -> None:
        if self._shared.closed:
            raise ClientClosedError("This AsyncRetell client is closed; create a new one.")

    def _set_time(
        self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        """Tests: drive retry waits and pacing from one fake clock instead of real time."""
        self._sleep = sleep
        self._shared.pacer.set_time(clock, sleep)

    # -- configuration ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._config.base_url

    @property
    def timeout(self) -> Timeout:
        return self._config.timeout

    @property
    def max_retries(self) -> int:
        return self._config.retry.max_retries

    def with_options(
        self,
        *,
        timeout: float | Timeout | None = _NOT_GIVEN,
        max_retries: int = _NOT_GIVEN,
        retry_ambiguous_creates: bool = _NOT_GIVEN,
    ) -> AsyncRetell:
        """A cheap view over the same connection pool with other timeouts or retries."""
        config = self._config
        retry = config.retry
        if max_retries is not _NOT_GIVEN:
            _check_retries(max_retries)
            retry = replace(retry, max_retries=max_retries)
        if retry_ambiguous_creates is not _NOT_GIVEN:
            retry = replace(retry, retry_ambiguous_creates=bool(retry_ambiguous_creates))
        config = replace(config, retry=retry)
        if timeout is not _NOT_GIVEN:
            new_timeout = _timeout(timeout)
            config = replace(config, timeout=new_timeout, aiohttp_timeout=new_timeout.to_aiohttp())
        view = object.__new__(AsyncRetell)
        view._config = config
        view._shared = self._shared
        view._sleep = self._sleep
        return view

    def __repr__(self) -> str:
        # The key stays out: only where the client points and how it retries.
        return (
            f"AsyncRetell(base_url={self._config.base_url!r}, "
            f"max_retries={self._config.retry.max_retries}, closed={self.is_closed})"
        )

    # -- endpoints newer than the generated code -------------------------------------------

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        cast_to: type[T],
        retry_safe: bool | None = None,
    ) -> T: ...

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        cast_to: None = None,
        retry_safe: bool | None = None,
    ) -> Any: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        cast_to: Any = None,
        retry_safe: bool | None = None,
    ) -> Any:
        """Call an endpoint by method and path, through the same retries and pacing.

        For endpoints newer than this release. ``json`` is the body (a mapping or a Struct),
        ``params`` the query string, ``cast_to`` the type to decode into (a msgspec Struct or
        any type msgspec decodes; plain JSON data when left out; ``None`` for an empty body).
        GET, HEAD, OPTIONS, PUT and DELETE are repeated after an ambiguous failure, POST and
        PATCH are not; ``retry_safe`` overrides that.
        """
        if not isinstance(method, str):
            raise TypeError(f"method must be a str, not {type(method).__name__}")
        verb = method.upper()
        if verb not in _METHODS:
            raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"path must start with a single '/', got {path!r}")
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping, not {type(params).__name__}")
        if retry_safe is not None and not isinstance(retry_safe, bool):
            raise TypeError(f"retry_safe must be a bool or None, not {type(retry_safe).__name__}")
        safe = verb in _IDEMPOTENT_METHODS if retry_safe is None else retry_safe
        op = Operation.custom(
            verb,
            path,
            retry=RetrySafety.SAFE if safe else RetrySafety.SIDE_EFFECT,
            has_body=json is not None,
            response_type=Any if cast_to is None else cast_to,
        )
        return await self._request(op, body=json, query=params)

    # -- the pipeline ----------------------------------------------------------------------

    async def _request(
        self,
        op: Operation,
        *,
        path: Mapping[str, str] | None = None,
        body: Any = None,
        query: Any = None,
        metadata: Any = None,
        form: Form | None = None,
    ) -> Any:
        """Send ``op`` and return its decoded response, retrying as its safety allows.

        ``body`` is sent as JSON, ``form`` (already encoded) as multipart. A body Struct is the
        caller's own for this call: the client may fill its idempotency key in place.

        The common case is one coroutine here and the transport's ``exchange``: nothing to
        pace (no rate, no concurrency cap, no 429 seen) and a transport that has one. The
        first attempt then skips ``send``, its :class:`HTTPRequest` and the pacer's turn, and
        the request's description (:class:`RequestInfo`) is only built for an error. Anything
        else goes through :meth:`_attempt` and the transport's ``send``. Tenacity takes over
        only once something failed, since building its controller costs more than the rest of
        the pipeline.
        """
        shared = self._shared
        if shared.closed:
            raise ClientClosedError("This AsyncRetell client is closed; create a new one.")
        config = self._config
        method = op.http_method
        url = config.base_url + render_path(op, path)
        idempotency_key: str | None = None
        keyed = False  # the key is ours: every attempt carries it, so repeats are harmless
        if op.idempotency_field is not None and body is not None:
            body, idempotency_key, keyed = _with_idempotency_key(op.idempotency_field, body)
        if form is not None:
            headers: Mapping[str, str] = {**shared.headers, "Content-Type": form.content_type}
            payload: bytes | None = form.body
        elif body is not None:
            headers, payload = shared.json_headers, encode_json(body)
        else:
            headers, payload = shared.headers, None
        params = None if query is None else encode_query(query)
        pacer = shared.pacer
        exchange = shared.exchange
        try:
            if exchange is None or not pacer.idle:
                request = HTTPRequest(method, url, headers, payload, params)
                info = RequestInfo(op.operation_id, method, url)
                return await self._attempt(op, request, info)
            response = await exchange(
                op.operation_id, method, url, headers, payload, params, config.aiohttp_timeout
            )
            status = response.status
            pacer.on_unpaced_response(op, status, response.headers)
            if 200 <= status < 300:
                try:
                    return body_decoder(op)(response.body)
                except msgspec.DecodeError as exc:
                    info = RequestInfo(op.operation_id, method, url)
                    raise invalid_body(op, response, info, exc) from exc
            raise status_error(response, RequestInfo(op.operation_id, method, url))
        except APIError as exc:
            info = exc.request or RequestInfo(op.operation_id, method, url)
            policy = config.retry
            if not policy.max_retries or not policy.should_retry(op, exc, keyed=keyed):
                if decide(op, exc) is Decision.AMBIGUOUS:
                    raise _ambiguous(op, exc, info, 1, metadata, idempotency_key) from exc
                raise
            first = exc
        wait = policy.wait_seconds(first, 1)
        log_first_retry(op, first, wait)
        await self._sleep(wait)
        retrying = policy.retrying(op, self._sleep, after=1, keyed=keyed)
        request = HTTPRequest(method, url, headers, payload, params)
        try:
            return await retrying(self._attempt, op, request, info)
        except APIError as exc:
            if decide(op, exc) is Decision.AMBIGUOUS:
                attempts = 1 + retrying.statistics.get("attempt_number", 1)
                raise _ambiguous(op, exc, info, attempts, metadata, idempotency_key) from exc
            raise

    async def _attempt(self, op: Operation, request: HTTPRequest, info: RequestInfo) -> Any:
        shared = self._shared
        pacer = shared.pacer
        turn = pacer.try_reserve(op)
        if turn is None:
            turn = await pacer.reserve(op)
        try:
            response = await shared.transport.send(request, self._config.aiohttp_timeout, info)
        except APIConnectionError as exc:
            pacer.release(op, turn, sent=exc.request_sent)
            raise
        except BaseException:
            pacer.release(op, turn, sent=True)  # e.g. cancelled mid-send: it may have gone out
            raise
        pacer.on_response(op, turn, response.status, response.headers)
        if 200 <= response.status < 300:
            return decode_success(op, response, info)
        raise status_error(response, info)


def _ambiguous(
    op: Operation,
    error: APIError,
    info: RequestInfo,
    attempts: int,
    metadata: Any,
    idempotency_key: str | None,
) -> AmbiguousOutcomeError:
    tried = "once" if attempts == 1 else f"{attempts} times"
    if idempotency_key is None:
        advice = "look it up before sending it again."
    else:
        advice = (
            f"sending it again with idempotency_key={idempotency_key!r} within the hour is "
            "safe (Retell answers a repeat with the first result)."
        )
    return AmbiguousOutcomeError(
        f"{op.operation_id} may have taken effect: {error}. Sent {tried}; {advice}",
        cause=error,
        request=replace(info, attempts=attempts),
        metadata=None if metadata is UNSET else metadata,
        idempotency_key=idempotency_key,
    )


def _with_idempotency_key(field: str, body: Any) -> tuple[Any, str, bool]:
    """``body`` carrying an idempotency key in ``field``: (body, key, whether the key is new).

    A caller-given key is kept. A new one (:func:`new_idempotency_key`; the spec's pattern for
    ``idempotency_key`` is ``[A-Za-z0-9_-]``, 5 to 255 long) is set in the body Struct itself
    (the resource built it for this call) or in a copy of a mapping. The body is encoded once,
    so every retry of this call sends the same key.
    """
    struct = isinstance(body, msgspec.Struct)
    given = getattr(body, field, None) if struct else body.get(field)
    if isinstance(given, str):
        return body, given, False
    key = new_idempotency_key()
    if not struct:
        return {**body, field: key}, key, True
    setattr(body, field, key)
    return body, key, True


def _check_transport(transport: object) -> None:
    if transport is None or transport in ("aiohttp", "fast"):
        return
    if isinstance(transport, str):
        raise ValueError(
            f"transport must be 'aiohttp' or 'fast' (or a transport), got {transport!r}"
        )
    if not all(callable(getattr(transport, name, None)) for name in ("send", "aclose")):
        raise TypeError(
            "transport must be 'aiohttp', 'fast' or an object with send() and aclose() "
            f"(e.g. FastTransport()), not {type(transport).__name__}"
        )


def _check_retries(max_retries: object) -> None:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise TypeError(f"max_retries must be an int, not {type(max_retries).__name__}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
