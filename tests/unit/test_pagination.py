"""``*_all`` pagers: one request per page, only when the consumer needs it (aioresponses)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aioresponses import CallbackResult, aioresponses

from aioretell import AsyncRetell, Pager

from .mocked_api import BASE
from .mocked_api import client as client
from .mocked_api import mocked as mocked

LIST_CALLS = BASE + "/v3/list-calls"
LIST_LLMS = re.compile(re.escape(BASE + "/v2/list-retell-llms") + r"(\?.*)?$")


def _call(i: int) -> dict[str, Any]:
    return {
        "call_id": f"call_{i}",
        "agent_id": "agent_1",
        "call_status": "ended",
        "call_type": "phone_call",
        "from_number": "+14155550100",
        "to_number": "+14155550101",
        "direction": "outbound",
        "agent_version": 1,
    }


class PagedServer:
    """Answers list requests from ``total`` items; records what each request asked for."""

    def __init__(self, total: int, *, make: Any, cursor: str = "body") -> None:
        self.items = [make(i) for i in range(total)]
        self.asked: list[dict[str, Any]] = []
        self.cursor = cursor

    def __call__(self, url: Any, **kwargs: Any) -> CallbackResult:
        if self.cursor == "body":
            asked = json.loads(kwargs["data"])
        else:
            asked = {k: v[0] for k, v in parse_qs(urlsplit(str(url)).query).items()}
        self.asked.append(asked)
        limit = int(asked.get("limit", 50))
        start = (
            int(asked["pagination_key"].rsplit("_", 1)[1]) + 1 if "pagination_key" in asked else 0
        )
        page = self.items[start : start + limit]
        more = start + limit < len(self.items)
        body: dict[str, Any] = {"items": page, "has_more": more}
        if more:
            body["pagination_key"] = page[-1].get("call_id") or page[-1]["llm_id"]
        return CallbackResult(status=200, body=json.dumps(body))


async def test_list_all_fetches_every_page_in_order(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    server = PagedServer(25, make=_call)
    mocked.post(LIST_CALLS, callback=server, repeat=True)
    pager = client.call.list_all(limit=10, filter_criteria={"agent": [{"agent_id": "agent_1"}]})
    assert isinstance(pager, Pager)
    ids = [call.call_id async for call in pager]
    assert ids == [f"call_{i}" for i in range(25)]
    assert len(server.asked) == 3
    assert [a.get("pagination_key") for a in server.asked] == [None, "call_9", "call_19"]
    for asked in server.asked:
        assert asked["limit"] == 10 and "skip" not in asked
        assert asked["filter_criteria"] == {"agent": [{"agent_id": "agent_1"}]}


async def test_nothing_is_sent_until_iteration_and_breaking_early_saves_requests(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    server = PagedServer(50, make=_call)
    mocked.post(LIST_CALLS, callback=server, repeat=True)
    pager = client.call.list_all(limit=10)
    assert server.asked == []
    seen = 0
    async for _ in pager:
        seen += 1
        if seen == 11:
            break
    assert len(server.asked) == 2  # the first item of page two needed page two, nothing more


async def test_the_default_page_size_is_the_largest_allowed(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    server = PagedServer(3, make=_call)
    mocked.post(LIST_CALLS, callback=server, repeat=True)
    assert len([c async for c in client.call.list_all()]) == 3
    assert server.asked == [{"limit": 1000}]


async def test_query_cursor_pages_and_resumes(mocked: aioresponses, client: AsyncRetell) -> None:
    def llm(i: int) -> dict[str, Any]:
        return {"llm_id": f"llm_{i}", "last_modification_timestamp": i, "version": 0}

    server = PagedServer(7, make=llm, cursor="query")
    mocked.get(LIST_LLMS, callback=server, repeat=True)
    pages = [page async for page in client.llm.list_all(limit=3, sort_order="ascending").pages()]
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert [p.has_more for p in pages] == [True, True, False]
    assert server.asked[1] == {"limit": "3", "sort_order": "ascending", "pagination_key": "llm_2"}
    resumed = [item.llm_id async for item in client.llm.list_all(pagination_key="llm_4")]
    assert resumed == ["llm_5", "llm_6"]


async def test_a_cursor_that_does_not_move_ends_the_iteration(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    stuck = {"items": [_call(1)], "has_more": True, "pagination_key": "call_1"}
    mocked.post(LIST_CALLS, payload=stuck, repeat=True)
    ids = [c.call_id async for c in client.call.list_all(pagination_key="call_1")]
    assert ids == ["call_1"]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: c.call.list_all(limit=0), ValueError, "limit must be at least 1"),
        (lambda c: c.call.list_all(limit=1001), ValueError, "limit"),
        (lambda c: c.call.list_all(filter_criteria=7), TypeError, "filter_criteria"),
        (lambda c: c.llm.list_all(limit="ten"), TypeError, "limit"),
    ],
)
async def test_bad_arguments_fail_when_the_pager_is_made(
    mocked: aioresponses, client: AsyncRetell, call: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call(client)
    assert not mocked.requests


async def test_one_page_list_refuses_skip_with_a_cursor(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    with pytest.raises(ValueError, match="skip or pagination_key"):
        await client.call.list(skip=10, pagination_key="call_1")
    with pytest.raises(TypeError):
        client.call.list_all(skip=10)  # type: ignore[call-arg]
    assert not mocked.requests


async def test_contact_list_sends_skip_with_a_cursor_as_the_spec_allows(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    # list-contacts' spec takes both (list-calls and list-chats refuse the pair).
    mocked.post(BASE + "/list-contacts", payload={"items": [], "has_more": False})
    await client.contact.list(skip=5, pagination_key="contact_1")
    [calls] = mocked.requests.values()
    assert json.loads(calls[0].kwargs["data"]) == {"skip": 5, "pagination_key": "contact_1"}


async def test_pages_needs_a_fresh_pager(mocked: aioresponses, client: AsyncRetell) -> None:
    mocked.post(LIST_CALLS, callback=PagedServer(4, make=_call), repeat=True)
    pager = client.call.list_all(limit=2)
    first = await pager.__anext__()
    assert first.call_id == "call_0"
    with pytest.raises(RuntimeError, match="fresh pager"):
        pager.pages()
    assert [c.call_id async for c in pager] == ["call_1", "call_2", "call_3"]
