"""Call lifecycle on an injected clock, concurrency, listing, idempotency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from aioretell.emulator import Emulator, EmulatorConfig, ManualClock
from aioretell.emulator.state import DEFAULT_AGENT_ID

START_MS = 1_700_000_000_000


async def create_call(http: aiohttp.ClientSession, to: str, **extra: Any) -> Any:
    body = {"from_number": "+14155550100", "to_number": to, **extra}
    async with http.post("/v2/create-phone-call", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def get_call(http: aiohttp.ClientSession, call_id: str) -> Any:
    async with http.get(f"/v2/get-call/{call_id}") as resp:
        assert resp.status == 200
        return await resp.json()


async def concurrency(http: aiohttp.ClientSession) -> Any:
    async with http.get("/get-concurrency") as resp:
        assert resp.status == 200
        return await resp.json()


async def test_phone_call_lifecycle(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    created = await create_call(
        http,
        "+14155550101",
        metadata={"customer": 7},
        retell_llm_dynamic_variables={"customer_name": "Ada"},
    )
    assert created["call_type"] == "phone_call"
    assert created["direction"] == "outbound"
    assert created["call_status"] == "registered"
    assert created["to_number"] == "+14155550101"
    assert created["metadata"] == {"customer": 7}
    assert created["retell_llm_dynamic_variables"] == {"customer_name": "Ada"}
    assert isinstance(created["agent_id"], str) and isinstance(created["agent_version"], int)
    assert "end_timestamp" not in created
    call_id = created["call_id"]

    clock.advance(1.0)
    ongoing = await get_call(http, call_id)
    assert ongoing["call_status"] == "ongoing"
    assert ongoing["start_timestamp"] == START_MS + 1000
    assert (await concurrency(http))["current_concurrency"] == 1

    clock.advance(10.0)
    ended = await get_call(http, call_id)
    assert ended["call_status"] == "ended"
    assert ended["end_timestamp"] == START_MS + 11_000
    assert ended["duration_ms"] == 10_000
    assert ended["disconnection_reason"] in ("agent_hangup", "user_hangup")
    assert ended["transcript"].startswith("Agent: Hi Ada")
    assert ended["transcript_object"][0]["words"][0]["word"] == "Hi"
    assert ended["latency"]["e2e"]["p50"] > 0
    assert ended["call_cost"]["combined_cost"] > 0
    assert ended["call_analysis"]["in_voicemail"] is False
    assert (await concurrency(http))["current_concurrency"] == 0
    assert emu.state.dialed_numbers() == ["+14155550101"]


async def test_outcomes_are_deterministic_by_seed(
    make_config: Callable[..., EmulatorConfig],
) -> None:
    results = []
    for _ in range(2):
        clock = ManualClock()
        async with Emulator(make_config(seed=42, clock=clock)) as emu:
            headers = {"Authorization": f"Bearer {emu.config.api_key}"}
            async with aiohttp.ClientSession(emu.base_url, headers=headers) as http:
                created = await create_call(http, "+14155550101")
                clock.advance(60)
                results.append(await get_call(http, created["call_id"]))
    assert results[0] == results[1]


async def test_stop_call_ends_it_now(http: aiohttp.ClientSession, clock: ManualClock) -> None:
    call_id = (await create_call(http, "+14155550101"))["call_id"]
    clock.advance(3.0)
    async with http.post(f"/v2/stop-call/{call_id}") as resp:
        assert resp.status == 204
    stopped = await get_call(http, call_id)
    assert stopped["call_status"] == "ended"
    assert stopped["disconnection_reason"] == "manual_stopped"
    assert stopped["duration_ms"] == 2000
    assert (await concurrency(http))["current_concurrency"] == 0
    async with http.post(f"/v2/stop-call/{call_id}") as resp:  # already ended: no change
        assert resp.status == 204
    assert await get_call(http, call_id) == stopped


async def test_concurrency_limit_reached(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    calls = [await create_call(http, f"+1415555020{i}") for i in range(4)]
    assert [c["call_status"] for c in calls] == ["registered"] * 3 + ["not_connected"]
    assert calls[3]["disconnection_reason"] == "concurrency_limit_reached"
    info = await concurrency(http)
    assert info["current_concurrency"] == 3
    assert info["concurrency_limit"] == 3
    # The rejected call was still dialled (created), so it is recorded.
    assert len(emu.state.dialed_numbers()) == 4
    clock.advance(11.0)
    assert (await concurrency(http))["current_concurrency"] == 0
    assert (await create_call(http, "+14155550300"))["call_status"] == "registered"


async def test_reserved_inbound_concurrency_limits_outbound_only(
    make_config: Callable[..., EmulatorConfig],
) -> None:
    config = make_config(concurrency_limit=2, reserved_inbound_concurrency=1)
    async with Emulator(config) as emu:
        headers = {"Authorization": f"Bearer {config.api_key}"}
        async with aiohttp.ClientSession(emu.base_url, headers=headers) as http:
            assert (await create_call(http, "+14155550101"))["call_status"] == "registered"
            rejected = await create_call(http, "+14155550102")
            assert rejected["call_status"] == "not_connected"
            async with http.post(
                "/v2/register-phone-call", json={"agent_id": DEFAULT_AGENT_ID}
            ) as resp:
                assert resp.status == 201
                registered = await resp.json()
            assert registered["call_status"] == "registered"
            assert registered["direction"] == "inbound"
            info = await concurrency(http)
            assert info["reserved_inbound_concurrency"] == 1
            assert info["current_concurrency"] == 2
    assert emu.state.dialed_numbers() == ["+14155550101", "+14155550102"]


async def test_web_call(http: aiohttp.ClientSession, clock: ManualClock) -> None:
    async with http.post("/v3/create-web-call", json={"agent_id": DEFAULT_AGENT_ID}) as resp:
        assert resp.status == 201
        created = await resp.json()
    assert set(created) == {"call_id", "access_token", "transport", "ice_servers", "expires_at"}
    assert created["transport"] == "gateway"
    assert created["expires_at"] > START_MS
    call = await get_call(http, created["call_id"])
    assert call["call_type"] == "web_call"
    assert call["access_token"] == created["access_token"]
    assert call["agent_id"] == DEFAULT_AGENT_ID


async def test_idempotency_key_returns_the_same_call(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    first = await create_call(http, "+14155550101", idempotency_key="order-17")
    again = await create_call(http, "+14155550101", idempotency_key="order-17")
    assert again["call_id"] == first["call_id"]
    other = await create_call(http, "+14155550101", idempotency_key="order-18")
    assert other["call_id"] != first["call_id"]
    assert emu.state.dialed_numbers() == ["+14155550101", "+14155550101"]


async def test_update_and_delete_call(emu: Emulator, http: aiohttp.ClientSession) -> None:
    call_id = (await create_call(http, "+14155550101", metadata={"a": 1}))["call_id"]
    async with http.patch(f"/v2/update-call/{call_id}", json={"metadata": {"b": 2}}) as resp:
        assert resp.status == 200
        assert (await resp.json())["metadata"] == {"b": 2}
    async with http.delete(f"/v2/delete-call/{call_id}") as resp:
        assert resp.status == 204
    async with http.get(f"/v2/get-call/{call_id}") as resp:
        assert resp.status == 404
    assert emu.state.dialed_numbers() == ["+14155550101"]


async def test_list_calls_filters_and_pages(http: aiohttp.ClientSession) -> None:
    ids = []
    for i in range(5):
        created = await create_call(http, f"+1415555010{i}", metadata={"batch": i % 2})
        ids.append(created["call_id"])
    query = {
        "filter_criteria": {
            "metadata": [{"key": "batch", "type": "number", "op": "eq", "value": 0}]
        },
        "limit": 2,
        "sort_order": "ascending",
    }
    async with http.post("/v3/list-calls", json=query) as resp:
        assert resp.status == 200
        page1 = await resp.json()
    assert [c["call_id"] for c in page1["items"]] == [ids[0], ids[2]]
    assert page1["has_more"] is True
    assert "transcript" not in page1["items"][0]
    query["pagination_key"] = page1["pagination_key"]
    async with http.post("/v3/list-calls", json=query) as resp:
        page2 = await resp.json()
    assert [c["call_id"] for c in page2["items"]] == [ids[4]]
    assert page2["has_more"] is False
    async with http.post("/v3/list-calls") as resp:  # no body: defaults, newest first
        everything = await resp.json()
    assert [c["call_id"] for c in everything["items"]] == ids[::-1]
