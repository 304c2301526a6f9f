"""Paged list endpoints: ``items`` / ``has_more`` / ``pagination_key`` and their limits."""

from __future__ import annotations

from typing import Any

import aiohttp

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
    for phone in ("+14155550111", "+14155550112"):
        async with http.post("/create-contact", json={"phone_number": phone}) as resp:
            assert resp.status == 201
    async with http.post("/list-contacts", json={"limit": 1}) as resp:
        cursor = (await _json(resp))["pagination_key"]
    mixed = {"skip": 1, "pagination_key": cursor}
    async with http.post("/list-contacts", json=mixed) as resp:
        assert resp.status == 400
        assert "skip" in (await _json(resp))["message"]
    async with http.post("/list-contacts", json={"limit": 1001}) as resp:
        assert resp.status == 400
    async with http.get("/list-apps", params={"limit": "1001"}) as resp:
        assert resp.status == 400
    async with http.get("/list-apps", params={"limit": "many"}) as resp:
        assert resp.status == 400
        assert "query" in (await _json(resp))["message"]
