"""The pure request/response functions, from recorded bodies, without an event loop."""

from __future__ import annotations

import email.utils

import msgspec
import pytest

from aioretell import _exceptions as E
from aioretell._operation import Operation, RetrySafety
from aioretell._sansio import (
    MAX_RETRY_AFTER_S,
    HTTPRequest,
    HTTPResponse,
    backoff_delay,
    decode_success,
    encode_query,
    error_message,
    parse_retry_after,
    render_path,
    status_error,
)

NOW = 1_700_000_000.0
INFO = E.RequestInfo("getThing", "GET", "http://x/get-thing/a")


class Thing(msgspec.Struct, kw_only=True):
    thing_id: str
    size: int | None = None


OP = Operation(
    operation_id="getThing",
    http_method="GET",
    path="/get-thing/{thing_id}",
    path_params=("thing_id",),
    retry=RetrySafety.SAFE,
    response_ref="tests.unit.test_sansio:Thing",
)


def test_render_path_quotes_each_segment() -> None:
    assert render_path(OP, {"thing_id": "a/b c"}) == "/get-thing/a%2Fb%20c"
    assert render_path(OP, {"thing_id": "thing_1.a~b-c"}) == "/get-thing/thing_1.a~b-c"


def test_render_path_fills_several_parameters_in_place() -> None:
    op = Operation(
        operation_id="getPart",
        http_method="GET",
        path="/thing/{thing_id}/part/{part_id}.json",
        path_params=("thing_id", "part_id"),
        retry=RetrySafety.SAFE,
    )
    values = {"part_id": "p?1", "thing_id": "t 1"}
    assert render_path(op, values) == "/thing/t%201/part/p%3F1.json"
    assert render_path(op, values) == "/thing/t%201/part/p%3F1.json"  # from the cached pieces


def test_request_repr_hides_headers() -> None:
    request = HTTPRequest("GET", "http://x", {"Authorization": "Bearer key_secret"})
    assert "key_secret" not in repr(request)


def test_encode_query_flattens_values() -> None:
    class Q(msgspec.Struct, omit_defaults=True):
        limit: int | msgspec.UnsetType = msgspec.UNSET
        flag: bool | msgspec.UnsetType = msgspec.UNSET
        ids: list[str] | msgspec.UnsetType = msgspec.UNSET

    assert encode_query(Q(limit=5, flag=True)) == {"limit": "5", "flag": "true"}
    assert encode_query(Q(ids=["a"])) == {"ids": '["a"]'}
    assert encode_query(Q()) == {}


def test_decode_success_ignores_unknown_fields_and_null() -> None:
    body = b'{"thing_id": "a", "size": null, "brand_new_field": {"x": 1}}'
    thing = decode_success(OP, HTTPResponse(200, {}, body), INFO)
    assert thing == Thing(thing_id="a", size=None)


@pytest.mark.parametrize(
    "body",
    [
        b'{"thing_id": "\\ud800"}',  # valid JSON (json.loads takes it) that msgspec refuses
        b'{"thing_id": "a',  # a complete body holding half an object: the server's answer
        b"<html>gateway</html>",
    ],
    ids=["lone-surrogate", "half-object", "html"],
)
def test_decode_success_undecodable_body_is_a_validation_error(body: bytes) -> None:
    # Only the transport can tell a body cut off on the wire; a body that arrived whole and
    # does not decode is not a connection failure (never retried, never ambiguous).
    with pytest.raises(E.APIResponseValidationError) as info:
        decode_success(OP, HTTPResponse(200, {"x": "1"}, body), INFO)
    assert info.value.body == body
    assert info.value.status_code == 200
    assert info.value.request is INFO
    assert not isinstance(info.value, E.APIConnectionError)


def test_decode_success_wrong_shape_is_a_validation_error() -> None:
    with pytest.raises(E.APIResponseValidationError) as info:
        decode_success(OP, HTTPResponse(200, {"x": "1"}, b'{"thing_id": 5}'), INFO)
    assert info.value.status_code == 200
    assert info.value.body == b'{"thing_id": 5}'


def test_decode_success_no_content() -> None:
    op = Operation("endThing", "PATCH", "/end", (), RetrySafety.SAFE)
    assert decode_success(op, HTTPResponse(204, {}, b""), INFO) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"status": "error", "message": "Invalid agent_id"}', "Invalid agent_id"),
        (b'{"error_message": "Call not found"}', "Call not found"),
        (b"<html><body>Bad Gateway</body></html>", "HTTP 502 with a body that is not"),
        (b"", "HTTP 502 with an empty body"),
        (b'{"status": "error"}', "HTTP 502 with a body that is not"),
        (b"[1, 2]", "HTTP 502 with a body that is not"),
    ],
)
def test_error_message(body: bytes, message: str) -> None:
    assert error_message(502, body).startswith(message)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, E.BadRequestError),
        (401, E.AuthenticationError),
        (402, E.APIStatusError),
        (403, E.PermissionDeniedError),
        (404, E.NotFoundError),
        (408, E.APIStatusError),
        (409, E.ConflictError),
        (422, E.UnprocessableEntityError),
        (429, E.RateLimitError),
        (500, E.InternalServerError),
        (502, E.InternalServerError),
        (503, E.InternalServerError),
        (599, E.InternalServerError),
    ],
)
def test_status_error_table(status: int, cls: type[E.APIStatusError]) -> None:
    headers = {"x-request-id": "r1"}
    body = b'{"status": "error", "message": "nope"}'
    exc = status_error(HTTPResponse(status, headers, body), INFO)
    assert type(exc) is cls
    assert (exc.status_code, exc.message, exc.body, exc.headers) == (status, "nope", body, headers)
    assert exc.request is INFO


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "2"}, 2.0),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "3600"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "nan"}, None),
        ({"retry-after": email.utils.formatdate(NOW + 7, usegmt=True)}, 7.0),
        ({"retry-after": email.utils.formatdate(NOW - 7, usegmt=True)}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=lambda: NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [(1, 1.0, 0.5), (2, 1.0, 1.0), (3, 0.5, 1.0), (10, 1.0, 8.0), (4, 0.0, 0.0)],
)
def test_backoff_full_jitter(attempt: int, rand: float, expected: float) -> None:
    assert backoff_delay(attempt, initial=0.5, maximum=8.0, rand=lambda: rand) == expected
