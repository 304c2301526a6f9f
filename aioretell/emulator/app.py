"""The aiohttp application: one route per operation of the API, one request pipeline.

Per request: auth -> record -> rate limit -> fault -> read and validate the parameters and body
against the spec -> check the objects the body names exist -> handler -> conform the answer to
the response type.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

import msgspec
from aiohttp import web

from aioretell._operation import Operation
from aioretell._operation_table import OPERATIONS

from . import handlers as _handlers  # noqa: F401  (registers the handlers)
from .config import EmulatorConfig
from .conform import conform
from .faults import Fault, FaultInjector, FaultKind
from .multipart import Form, read_form
from .ratelimit import RateLimiter, WindowLimiter
from .references import check_references
from .registry import HANDLERS, SHAPED, ApiError, Handler, Reply
from .registry import Request as HandlerRequest
from .state import EmulatorState
from .validation import check_params, decode_body, decode_form

_JSON = "application/json"
_encode = msgspec.json.Encoder().encode


@dataclass
class EmulatorContext:
    """Everything one emulator instance holds, stored on its application."""

    config: EmulatorConfig
    state: EmulatorState
    faults: FaultInjector
    limiter: RateLimiter | None
    #: ``(operation_id, method, path)`` of every authenticated request, in order.
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    #: ``create_rate_limit_cps`` as a sliding window, when set.
    create_limiter: WindowLimiter | None = None
    #: ``(clock time, operation_id, status)`` of every authenticated request answered.
    timeline: list[tuple[float, str, int]] = field(default_factory=list)


CONTEXT = web.AppKey("aioretell_emulator", EmulatorContext)


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = _encode({"status": "error", "message": message})
    return web.Response(status=status, body=body, content_type=_JSON, headers=headers)


def _number(value: float) -> str:
    return f"{value:g}"


def _fault_response(fault: Fault) -> web.Response:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = _number(fault.retry_after)
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = _number(fault.retry_after_ms)
    code = fault.status_code
    if fault.body is None:
        return error_response(code, f"{HTTPStatus(code).phrase} (emulated fault)", headers)
    content_type = "text/html" if fault.body.lstrip().startswith(b"<") else _JSON
    return web.Response(status=code, body=fault.body, content_type=content_type, headers=headers)


def _drop(request: web.Request) -> web.Response:
    """Close the connection; aiohttp then finds the transport closing and writes nothing."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)  # never sent


def _truncated(response: web.Response) -> web.Response:
    """The same answer with its JSON cut in half (204 becomes 200 with a cut-off object)."""
    body = response.body if isinstance(response.body, bytes) else b""
    status = response.status if body else 200
    payload = body or b'{"status": "ok"}'
    return web.Response(status=status, body=payload[: len(payload) // 2], content_type=_JSON)


def _reply_response(reply: Reply) -> web.Response:
    if reply.body is None:
        return web.Response(status=reply.status)
    return web.Response(status=reply.status, body=_encode(reply.body), content_type=_JSON)


def _authorized(header: str | None, api_key: str) -> bool:
    if header is None:
        return False
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), api_key.encode()
    )


Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _endpoint(ctx: EmulatorContext, op: Operation) -> Endpoint:
    operation_id = op.operation_id
    handler = HANDLERS.get(operation_id)
    starts_conversation = op.starts_conversation

    async def endpoint(request: web.Request) -> web.StreamResponse:
        if not _authorized(request.headers.get("Authorization"), ctx.config.api_key):
            return error_response(401, "Missing or invalid API key.")
        # The timeline records when a request arrived, the moment its rate limits judge it
        # (an answer may leave much later: a delay fault, or the first request of a kind,
        # whose schema is loaded then).
        arrived = ctx.config.clock()
        ctx.requests.append((operation_id, request.method, request.path))
        if ctx.limiter is not None:
            wait = ctx.limiter.acquire(ctx.config.api_key)
            if wait > 0:
                headers = {
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "retry-after-ms": str(math.ceil(wait * 1000)),
                }
                return _logged(ctx, arrived, operation_id, error_response(429, _SLOW_DOWN, headers))
        if starts_conversation and ctx.create_limiter is not None:
            wait = ctx.create_limiter.acquire()
            if wait > 0:
                headers = {
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "retry-after-ms": str(math.ceil(wait * 1000)),
                }
                return _logged(ctx, arrived, operation_id, error_response(429, _CPS, headers))
        fault = ctx.faults.next_fault(operation_id)
        kind = fault.kind
        if kind is FaultKind.STATUS:
            return _logged(ctx, arrived, operation_id, _fault_response(fault))
        if kind is FaultKind.RESET_BEFORE_REQUEST:
            return _drop(request)
        if kind is FaultKind.DELAY:
            await asyncio.sleep(fault.seconds)
        try:
            payload = await _read_payload(op, request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message)
        else:
            response = _handle(ctx, op, handler, request, payload)
        if kind is FaultKind.RESET_AFTER_REQUEST:
            return _drop(request)
        if kind is FaultKind.MALFORMED_BODY:
            return _truncated(response)
        return _logged(ctx, arrived, operation_id, response)

    return endpoint


_SLOW_DOWN = "Rate limit exceeded, please slow down."
_CPS = "Calls per second limit exceeded, please slow down."


def _logged(
    ctx: EmulatorContext, arrived: float, operation_id: str, response: web.Response
) -> web.Response:
    ctx.timeline.append((arrived, operation_id, response.status))
    return response


async def _read_payload(op: Operation, request: web.Request) -> bytes | Form:
    if op.body_kind == "multipart":
        return await read_form(request)
    return await request.read() if op.body_kind is not None else b""


def _handle(
    ctx: EmulatorContext,
    op: Operation,
    handler: Handler | None,
    request: web.Request,
    payload: bytes | Form,
) -> web.Response:
    try:
        check_params(op, request.match_info, request.query)
        body = decode_form(op, payload) if isinstance(payload, Form) else decode_body(op, payload)
        if handler is None:
            raise ApiError(501, f"The emulator does not implement {op.operation_id} yet.")
        check_references(op.operation_id, ctx.state, body)
        reply = handler(HandlerRequest(ctx.state, request.match_info, body, request.query))
    except ApiError as exc:
        return error_response(exc.status, exc.message)
    if reply.body is not None and op.operation_id not in SHAPED:
        reply = Reply(
            reply.status, conform(op.response_type, reply.body, now_ms=ctx.state.now_ms())
        )
    return _reply_response(reply)


@web.middleware
async def _json_errors(request: web.Request, handler: Endpoint) -> web.StreamResponse:
    """Routing errors (unknown path, wrong method, body too large) in Retell's error shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(
            exc.status,
            exc.reason,
            {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None,
        )


def create_app(
    config: EmulatorConfig, operations: Mapping[str, Operation] | None = None
) -> web.Application:
    """A fresh emulated account served by one ``web.Application``.

    ``operations`` defaults to the whole API (``aioretell._operation_table.OPERATIONS``).
    """
    if operations is None:
        operations = OPERATIONS
    limiter = None
    if config.rate_limit_rps is not None:
        limiter = RateLimiter(config.rate_limit_rps, config.clock)
    ctx = EmulatorContext(config, EmulatorState(config), FaultInjector(config.seed), limiter)
    if config.create_rate_limit_cps is not None:
        ctx.create_limiter = WindowLimiter(config.create_rate_limit_cps, config.clock)
    app = web.Application(middlewares=[_json_errors])
    app[CONTEXT] = ctx
    for op in operations.values():
        app.router.add_route(op.http_method, op.path, _endpoint(ctx, op))
    return app


def context(app: web.Application) -> EmulatorContext:
    return app[CONTEXT]
