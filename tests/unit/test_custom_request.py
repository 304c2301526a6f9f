"""``client.request``: endpoints newer than the generated code, through the same pipeline."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aioresponses import aioresponses
from yarl import URL

from aioretell import AmbiguousOutcomeError, AsyncRetell, NotFoundError
from aioretell.types import ConcurrencyRetrieveResponse

from .mocked_api import BASE
from .mocked_api import mocked as mocked


class Widget(msgspec.Struct):
    widget_id: str
    size: int | None = None


@pytest.fixture
async def client() -> AsyncIterator[AsyncRetell]:
    async with AsyncRetell(api_key="key_unit", base_url=BASE, max_retries=1) as c:
        c._sleep = _no_sleep
        yield c


async def _no_sleep(_: float) -> None:
    return None


async def test_post_with_json_and_cast_to(mocked: aioresponses, client: AsyncRetell) -> None:
    mocked.post(BASE + "/create-widget", status=201, payload={"widget_id": "w_1", "new": True})
    widget = await client.request("POST", "/create-widget", json={"size": 3}, cast_to=Widget)
    assert widget == Widget(widget_id="w_1")
    (call,) = mocked.requests[("POST", URL(BASE + "/create-widget"))]
    assert json.loads(call.kwargs["data"]) == {"size": 3}
    assert call.kwargs["headers"]["Content-Type"] == "application/json"
    assert call.kwargs["headers"]["Authorization"] == "Bearer key_unit"


async def test_get_with_params_plain_json_and_empty_answer(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    mocked.get(re.compile(re.escape(BASE) + r"/get-widgets\?.*"), payload=[{"widget_id": "w"}])
    mocked.delete(BASE + "/delete-widget/w", status=204)
    found = await client.request("get", "/get-widgets", params={"limit": 5, "active": True})
    assert found == [{"widget_id": "w"}]
    ((_, url), _calls) = next(iter(mocked.requests.items()))
    assert url.query == {"limit": "5", "active": "true"}
    assert await client.request("DELETE", "/delete-widget/w") is None


async def test_cast_to_a_generated_type(mocked: aioresponses, client: AsyncRetell) -> None:
    mocked.get(
        BASE + "/get-concurrency", payload={"current_concurrency": 2, "concurrency_limit": 20}
    )
    got = await client.request("GET", "/get-concurrency", cast_to=ConcurrencyRetrieveResponse)
    assert got.current_concurrency == 2


async def test_safe_methods_retry_and_post_does_not(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    mocked.get(BASE + "/get-widget/w", status=503)
    mocked.get(BASE + "/get-widget/w", payload={"widget_id": "w"})
    assert (await client.request("GET", "/get-widget/w", cast_to=Widget)).widget_id == "w"

    mocked.post(BASE + "/start-widget", status=503)
    with pytest.raises(AmbiguousOutcomeError) as caught:
        await client.request("POST", "/start-widget", json={})
    assert caught.value.request.attempts == 1
    assert len(mocked.requests[("POST", URL(BASE + "/start-widget"))]) == 1

    mocked.post(BASE + "/refresh-widget", status=503)
    mocked.post(BASE + "/refresh-widget", payload={"widget_id": "w"})
    got = await client.request("POST", "/refresh-widget", retry_safe=True, cast_to=Widget)
    assert got.widget_id == "w"


async def test_errors_are_typed(mocked: aioresponses, client: AsyncRetell) -> None:
    mocked.get(BASE + "/get-widget/nope", status=404, payload={"message": "no such widget"})
    with pytest.raises(NotFoundError, match="no such widget") as caught:
        await client.request("GET", "/get-widget/nope")
    assert caught.value.request.operation_id == "GET /get-widget/nope"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "FETCH", "path": "/x"}, ValueError, "method must be one of"),
        ({"method": 1, "path": "/x"}, TypeError, "method must be a str"),
        ({"method": "GET", "path": "x"}, ValueError, "path must start with"),
        ({"method": "GET", "path": "//evil.test/x"}, ValueError, "path must start with"),
        ({"method": "GET", "path": "/x", "params": [("a", 1)]}, TypeError, "params must be"),
        ({"method": "GET", "path": "/x", "retry_safe": "yes"}, TypeError, "retry_safe"),
    ],
)
async def test_bad_arguments_are_refused_before_sending(
    mocked: aioresponses, client: AsyncRetell, kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        await client.request(**kwargs)
    assert not mocked.requests
