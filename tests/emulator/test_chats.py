"""Chat agents and chats over plain HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp

from aioretell.emulator import Emulator, ManualClock
from aioretell.emulator.state import DEFAULT_LLM_ID

ENGINE = {"type": "retell-llm", "llm_id": DEFAULT_LLM_ID}


async def post(http: aiohttp.ClientSession, path: str, body: Any, status: int = 201) -> Any:
    async with http.post(path, json=body) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def test_chat_flow(emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock) -> None:
    agent = await post(http, "/create-chat-agent", {"response_engine": ENGINE, "agent_name": "Bo"})
    assert agent["agent_id"] in emu.state.chat_agents
    assert agent["response_engine"] == ENGINE
    assert agent["version"] == 0 and isinstance(agent["last_modification_timestamp"], int)

    chat = await post(http, "/create-chat", {"agent_id": agent["agent_id"], "metadata": {"k": 1}})
    assert chat["chat_status"] == "ongoing"
    assert chat["agent_id"] == agent["agent_id"]
    assert chat["metadata"] == {"k": 1}
    chat_id = chat["chat_id"]

    first = await post(http, "/create-chat-completion", {"chat_id": chat_id, "content": "Hello"})
    clock.advance(2.0)
    second = await post(http, "/create-chat-completion", {"chat_id": chat_id, "content": "Bye"})
    for reply in (first, second):
        [message] = reply["messages"]
        assert message["role"] == "agent"
        assert set(message) == {"message_id", "role", "content", "created_timestamp"}
    assert second["messages"][0]["created_timestamp"] > first["messages"][0]["created_timestamp"]

    async with http.patch(f"/end-chat/{chat_id}") as resp:
        assert resp.status == 204
        assert await resp.read() == b""

    async with http.get(f"/get-chat/{chat_id}") as resp:
        assert resp.status == 200
        got = await resp.json()
    assert got["chat_status"] == "ended"
    assert "end_timestamp" in got
    lines = got["transcript"].splitlines()
    assert lines[0] == "User: Hello"
    assert lines[1].startswith("Agent: ")
    assert lines[2] == "User: Bye"
    assert len(lines) == 4
    roles = [m["role"] for m in got["message_with_tool_calls"]]
    assert roles == ["user", "agent", "user", "agent"]
    assert got["message_with_tool_calls"][1] == first["messages"][0]

    # An ended chat takes no more messages.
    await post(http, "/create-chat-completion", {"chat_id": chat_id, "content": "?"}, 400)


async def test_chat_needs_an_existing_agent(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """The spec lists 422 (no 404) for both: Retell's "cannot find requested asset"."""
    body = await post(http, "/create-chat", {"agent_id": "agent_missing"}, 422)
    assert body["status"] == "error" and "agent_missing" in body["message"]
    assert emu.state.chats == {}
    missing = {"chat_id": "chat_missing", "content": "hi"}
    await post(http, "/create-chat-completion", missing, 422)


async def test_sms_chat_starts_with_an_agent_message(http: aiohttp.ClientSession) -> None:
    body = {"from_number": "+14155550100", "to_number": "+14155550101"}
    chat = await post(http, "/create-sms-chat", body, 200)
    assert chat["chat_type"] == "sms_chat"
    assert [m["role"] for m in chat["message_with_tool_calls"]] == ["agent"]


async def test_chat_agent_update_delete_and_list(http: aiohttp.ClientSession) -> None:
    agent = await post(http, "/create-chat-agent", {"response_engine": ENGINE, "agent_name": "A"})
    agent_id = agent["agent_id"]
    async with http.patch(f"/update-chat-agent/{agent_id}", json={"agent_name": "B"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["agent_name"] == "B"
    async with http.get(f"/get-chat-agent/{agent_id}") as resp:
        assert (await resp.json())["agent_name"] == "B"

    chat_only = {"filter_criteria": {"channel": {"type": "string", "op": "eq", "value": "chat"}}}
    listed = await post(http, "/v2/list-agents", chat_only, 200)
    assert agent_id in [item["agent_id"] for item in listed["items"]]
    assert {item["channel"] for item in listed["items"]} == {"chat"}
    assert listed["has_more"] is False

    async with http.delete(f"/delete-chat-agent/{agent_id}") as resp:
        assert resp.status == 204
    async with http.get(f"/get-chat-agent/{agent_id}") as resp:
        assert resp.status == 404


async def test_list_agents_pages_by_query(http: aiohttp.ClientSession) -> None:
    for name in ("one", "two", "three"):
        await post(http, "/create-chat-agent", {"response_engine": ENGINE, "agent_name": name})
    seen: list[str] = []
    params = {"limit": "2"}
    while True:
        async with http.post("/v2/list-agents", params=params) as resp:
            page = await resp.json()
        seen += [item["agent_id"] for item in page["items"]]
        if not page["has_more"]:
            break
        params["pagination_key"] = page["pagination_key"]
    assert len(seen) == len(set(seen)) == 5  # three created + the two built-in agents
