"""The emulated agent's chat reply quotes the user's message one way, whatever it holds."""

from __future__ import annotations

import aiohttp
import pytest

from aioretell.emulator import Emulator

ENGINE = {"type": "retell-llm", "llm_id": "llm_emulator_default"}  # the built-in LLM


@pytest.mark.parametrize(
    "content",
    ["Hello", "Hi, I'd like to book a table.", 'She said "seven"', "Zoë's café", "a\\b"],
)
async def test_reply_quotes_as_prose(
    emu: Emulator, http: aiohttp.ClientSession, content: str
) -> None:
    async with http.post("/create-chat-agent", json={"response_engine": ENGINE}) as resp:
        agent = await resp.json()
    async with http.post("/create-chat", json={"agent_id": agent["agent_id"]}) as resp:
        chat = await resp.json()
    body = {"chat_id": chat["chat_id"], "content": content}
    async with http.post("/create-chat-completion", json=body) as resp:
        assert resp.status == 201, await resp.text()
        [message] = (await resp.json())["messages"]
    # Python's repr picked single or double quotes by content and doubled backslashes.
    assert message["content"] == f'Reply 1: you said "{content}".'
