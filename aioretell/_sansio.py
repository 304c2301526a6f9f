"""The pure half of a request: build it, read the answer. No I/O and no aiohttp here.

Everything in this module is a plain function of its inputs, so it is tested from recorded
bodies without an event loop.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
from collections.abc import Callable, Mapping
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


# Request and response are immutable msgspec Structs rather than dataclasses: built once per
# request each, they cost a tenth of a frozen dataclass. Not tracked by the GC (no cycles).


class HTTPRequest(msgspec.Struct, frozen=True, gc=False):
    """One request, ready for the transport. ``headers`` may hold the key: repr leaves them out.

    ``headers`` are what the transport sends besides its own default headers, if it has any
    (see :class:`aioretell._transport.Transport`).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    params: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        return f"HTTPRequest(method={self.method!r}, url={self.url!r})"


class HTTPResponse(msgspec.Struct, frozen=True, gc=False):
    """What came back: status, headers (case-insensitive mapping) and the raw body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


#: Whether a path value is made only of characters that need no percent-encoding (ids are).
_unreserved = re.compile(r"[A-Za-z0-9_.~-]+").fullmatch
_PIECES = "path_pieces"


def _path_pieces(op: Operation) -> tuple[str, ...]:
    """``/a/{x}/b/{y}`` -> ``("/a/", "/b/", "")``: the text around each parameter, in order;
    kept in the operation's own cache."""
    pieces: tuple[str, ...] | None = op._types.get(_PIECES)
    if pieces is None:
        found = []
        rest = op.path
        for name in op.path_params:
            before, _, rest = rest.partition("{" + name + "}")
            found.append(before)
        pieces = op._types[_PIECES] = (*found, rest)
    return pieces


def path_segment(value: str) -> str:
    """``value`` as one path segment, percent-encoded unless it needs no encoding."""
    return value if _unreserved(value) else quote(value, safe="")


def render_path(op: Operation, path_values: Mapping[str, str] | None) -> str:
    """Fill the operation's path template; each value is percent-encoded as one segment."""
    names = op.path_params
    if not names:
        return op.path
    assert path_values is not None
    pieces = op._types.get(_PIECES) or _path_pieces(op)
    if len(names) == 1:
        value = path_values[names[0]]
        return pieces[0] + (value if _unreserved(value) else quote(value, safe="")) + pieces[1]
    out = [pieces[0]]
    for name, after in zip(names, pieces[1:], strict=True):
        out += (path_segment(path_values[name]), after)
    return "".join(out)


#: Encodes a request body (a Struct drops its unset fields); the encoder's own method, so no
#: call of ours stands between the pipeline and msgspec.
encode_json: Callable[[Any], bytes] = _encoder.encode


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


def _decoder_of(response_type: Any) -> Callable[[bytes], Any]:
    if response_type is None:
        return _no_body
    if response_type is Any:
        return _any_json
    return msgspec.json.Decoder(response_type).decode


def _no_body(_: bytes) -> None:
    return None


_decode_any = msgspec.json.Decoder().decode


def _any_json(body: bytes) -> Any:
    # ``client.request`` without ``cast_to``: an empty answer (204) is ``None``.
    return _decode_any(body) if body else None


def body_decoder(op: Operation) -> Callable[[bytes], Any]:
    """Decodes a 2xx body of ``op`` into its response type (``None`` when it has none).

    Built on first use and kept in the operation's own cache (a custom operation of
    ``client.request`` has its own ``cast_to``, so the operation, not its name, is the key).
    """
    decode: Callable[[bytes], Any] | None = op._types.get(_DECODE)
    if decode is None:
        decode = op._types[_DECODE] = _decoder_of(op.response_type)
    return decode


_DECODE = "decode"


def decode_success(op: Operation, response: HTTPResponse, request: RequestInfo) -> Any:
    """Decode a 2xx body into the operation's response type (``None`` when it has none).

    The body is complete (the transport reports one cut off on the wire as a connection
    failure), so one that does not decode is the server's answer, not a transport fault: it
    raises :class:`APIResponseValidationError` with the raw bytes, and is never retried.
    """
    try:
        return body_decoder(op)(response.body)
    except msgspec.DecodeError as exc:  # also ValidationError: valid JSON of the wrong shape
        raise invalid_body(op, response, request, exc) from exc


def invalid_body(
    op: Operation, response: HTTPResponse, request: RequestInfo, error: msgspec.DecodeError
) -> APIResponseValidationError:
    """The error for a complete 2xx body that did not decode into ``op``'s type."""
    invalid = isinstance(error, msgspec.ValidationError)  # valid JSON of the wrong shape
    what = "did not match its type" if invalid else "did not decode"
    return APIResponseValidationError(
        f"Response of {op.operation_id} {what}: {error}",
        status_code=response.status,
        body=response.body,
        headers=response.headers,
        request=request,
    )


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
