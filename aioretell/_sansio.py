"""The pure half of a request: build it, read the answer. No I/O and no aiohttp here.

Everything in this module is a plain function of its inputs, so it is tested from recorded
bodies without an event loop.
"""

from __future__ import annotations

import email.utils
import functools
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import msgspec

from ._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    RequestInfo,
    status_error_class,
)
from ._operation import Operation

#: Longest wait a server may ask of us; a longer Retry-After is clamped to this.
MAX_RETRY_AFTER_S = 60.0

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    """One request, ready for the transport. ``headers`` hold the key: keep them out of repr."""

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes | None = None
    params: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    """What came back: status, headers (case-insensitive mapping) and the raw body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def render_path(op: Operation, path_values: Mapping[str, str]) -> str:
    """Fill the operation's path template; each value is percent-encoded as one segment."""
    if not op.path_params:
        return op.path
    return op.path.format_map({k: quote(path_values[k], safe="") for k in op.path_params})


def encode_json(value: Any) -> bytes:
    """Encode a request body; Structs drop their unset fields."""
    return _encoder.encode(value)


def encode_query(query: Any) -> dict[str, str]:
    """Flatten a query Struct (or mapping) to string pairs; unset fields are dropped."""
    builtins = msgspec.to_builtins(query)
    out: dict[str, str] = {}
    for key, value in builtins.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (dict, list)):
            out[key] = _encoder.encode(value).decode()
        else:
            out[key] = str(value)
    return out


@functools.cache
def decoder_for(response_type: Any) -> msgspec.json.Decoder[Any]:
    """One Decoder per response type, built on first use and kept."""
    return msgspec.json.Decoder(response_type)


def decode_success(op: Operation, response: HTTPResponse, request: RequestInfo) -> Any:
    """Decode a 2xx body into the operation's response type (``None`` when it has none).

    The body is complete (the transport reports one cut off on the wire as a connection
    failure), so one that does not decode is the server's answer, not a transport fault: it
    raises :class:`APIResponseValidationError` with the raw bytes, and is never retried.
    """
    response_type = op.response_type
    if response_type is None:
        return None
    if not response.body and response_type is Any:
        return None  # ``client.request`` without ``cast_to`` on an empty answer (204)
    try:
        return decoder_for(response_type).decode(response.body)
    except msgspec.DecodeError as exc:  # also ValidationError: valid JSON of the wrong shape
        what = (
            "did not match its type"
            if isinstance(exc, msgspec.ValidationError)
            else "did not decode"
        )
        raise APIResponseValidationError(
            f"Response of {op.operation_id} {what}: {exc}",
            status_code=response.status,
            body=response.body,
            headers=response.headers,
            request=request,
        ) from exc


class _ErrorBody(msgspec.Struct):
    message: str | None = None
    error_message: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def error_message(status: int, body: bytes) -> str:
    """The message of an error body: ``message``, the older ``error_message``, or a default."""
    if body:
        try:
            parsed = _error_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        else:
            text = parsed.message or parsed.error_message
            if text:
                return text
        return f"HTTP {status} with a body that is not Retell's error JSON"
    return f"HTTP {status} with an empty body"


def status_error(response: HTTPResponse, request: RequestInfo) -> APIStatusError:
    """The typed exception for a non-2xx response."""
    cls = status_error_class(response.status)
    return cls(
        error_message(response.status, response.body),
        status_code=response.status,
        body=response.body,
        headers=response.headers,
        request=request,
    )


def parse_retry_after(headers: Mapping[str, str], *, now: Callable[[], float]) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date. Negative or unparsable values give ``None``;
    anything longer than :data:`MAX_RETRY_AFTER_S` is clamped to it.
    """
    seconds: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            seconds = float(raw_ms) / 1000.0
        except ValueError:
            seconds = None
    if seconds is None:
        raw = headers.get("retry-after")
        if raw is not None:
            try:
                seconds = float(raw)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(raw)
                except (TypeError, ValueError, IndexError):
                    when = None
                if when is not None and when.tzinfo is not None:
                    seconds = when.timestamp() - now()
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


def backoff_delay(
    attempt: int,
    *,
    initial: float,
    maximum: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with full jitter for retry number ``attempt`` (1-based)."""
    ceiling: float = min(maximum, initial * 2.0 ** (attempt - 1))
    return ceiling * rand()
