"""Paged list endpoints: ``items`` / ``has_more`` / ``pagination_key`` and their limits."""

from __future__ import annotations

from typing import Any

import aiohttp

from aioretell import AsyncRetell
from aioretell.emulator import Emulator


async def _json(resp: aiohttp.ClientResponse) -> Any:
    return await resp.json()


async def test_5000_calls_are_exactly_5_pages_of_1000(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    for i in range(5000):
        emu.state.create_call("phone_call", "agent_x", to_number=f"+1415555{i:04d}")
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    body: dict[str, Any] = {"limit": 1000}
    while True:
        async with http.post("/v3/list-calls", json=body) as resp:
            assert resp.status == 200
            page = await _json(resp)
        pages.append(page)
        seen += [c["call_id"] for c in page["items"]]
        if not page["has_more"]:
            break
        assert page["pagination_key"] == page["items"][-1]["call_id"]
        body = {"limit": 1000, "pagination_key": page["pagination_key"]}
    assert len(pages) == 5
    assert [len(p["items"]) for p in pages] == [1000] * 5
    assert [p["has_more"] for p in pages] == [True, True, True, True, False]
    assert "pagination_key" not in pages[-1]
    assert len(set(seen)) == 5000


async def test_query_paged_list_follows_the_cursor(http: aiohttp.ClientSession) -> None:
    created = []
    for _ in range(5):
        async with http.post("/create-phone-number", json={"area_code": 212}) as resp:
            assert resp.status == 201
            created.append((await _json(resp))["phone_number"])
    url = "/v2/list-phone-numbers"
    params = {"limit": "2", "sort_order": "ascending"}
    async with http.get(url, params=params) as resp:
        first = await _json(resp)
    async with http.get(url, params={**params, "pagination_key": first["pagination_key"]}) as resp:
        second = await _json(resp)
    got = [n["phone_number"] for n in first["items"] + second["items"]]
    assert got == created[:4]
    assert first["has_more"] and second["has_more"]


async def test_list_limits_and_cursor_rules(http: aiohttp.ClientSession) -> None:
    async with http.post("/list-contacts", json={"limit": 1001}) as resp:
        assert resp.status == 400
        assert "limit" in (await _json(resp))["message"]
    async with http.get("/list-apps", params={"limit": "1001"}) as resp:
        assert resp.status == 400
    async with http.get("/list-apps", params={"limit": "many"}) as resp:
        assert resp.status == 400
        assert "query" in (await _json(resp))["message"]
    async with http.post("/list-contacts", json={"pagination_key": "contact_nope"}) as resp:
        assert resp.status == 400


async def _contacts(http: aiohttp.ClientSession, count: int) -> list[str]:
    ids = []
    for i in range(count):
        body = {"phone_number": f"+1415555011{i}"}
        async with http.post("/create-contact", json=body) as resp:
            assert resp.status == 201
            ids.append((await _json(resp))["contact_id"])
    return ids


async def _page(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(path, json=body) as resp:
        page = await _json(resp)
        assert resp.status == 200, page
        return dict(page)


async def test_list_contacts_takes_its_own_sort_orders(http: aiohttp.ClientSession) -> None:
    """list-contacts sorts by ``asc``/``desc`` (its spec), list-calls by ``ascending``/..."""
    created = await _contacts(http, 3)
    asc = await _page(http, "/list-contacts", {"sort_order": "asc"})
    assert [c["contact_id"] for c in asc["items"]] == created
    desc = await _page(http, "/list-contacts", {"sort_order": "desc"})
    assert [c["contact_id"] for c in desc["items"]] == created[::-1]
    for wrong in ("ascending", "descending", "up"):
        async with http.post("/list-contacts", json={"sort_order": wrong}) as resp:
            assert resp.status == 400
            message = (await _json(resp))["message"]
            assert message.startswith("Invalid request body: sort_order:"), message
    await _page(http, "/v3/list-calls", {"sort_order": "ascending"})
    for path in ("/v3/list-calls", "/v3/list-chats"):
        async with http.post(path, json={"sort_order": "asc"}) as resp:
            assert resp.status == 400
            assert "sort_order" in (await _json(resp))["message"]
    async with http.get("/list-apps", params={"sort_order": "asc"}) as resp:
        assert resp.status == 400
        assert "sort_order" in (await _json(resp))["message"]


async def test_skip_with_a_cursor_where_the_spec_allows_it(http: aiohttp.ClientSession) -> None:
    """list-contacts takes both (skip counts from the cursor); list-calls/chats forbid both."""
    created = await _contacts(http, 5)
    first = await _page(http, "/list-contacts", {"limit": 1, "sort_order": "asc"})
    both = {"sort_order": "asc", "pagination_key": first["pagination_key"], "skip": 2}
    page = await _page(http, "/list-contacts", both)
    assert [c["contact_id"] for c in page["items"]] == created[3:]
    for path in ("/v3/list-calls", "/v3/list-chats"):
        async with http.post(path, json={"skip": 1, "pagination_key": "x"}) as resp:
            assert resp.status == 400
            message = (await _json(resp))["message"]
            assert "skip and pagination_key must not be sent together" in message


async def test_aioretell_lists_contacts_in_either_order(emu: Emulator, api_key: str) -> None:
    """The client's own ``contact.list(sort_order="asc")`` against its own emulator."""
    async with AsyncRetell(api_key=api_key, base_url=emu.base_url, max_retries=0) as client:
        for i in range(3):
            await client.contact.create(phone_number=f"+1415555012{i}")
        asc = await client.contact.list(sort_order="asc")
        desc = await client.contact.list(sort_order="desc")
        every = [c.contact_id async for c in client.contact.list_all(limit=2, sort_order="asc")]
    assert [c.contact_id for c in asc.items] == every
    assert [c.contact_id for c in desc.items] == every[::-1]
    assert len(every) == 3
