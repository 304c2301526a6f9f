"""The official ``retell-sdk`` works against the emulator: it speaks Retell, not just aioretell."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from retell import AsyncRetell, NotFoundError

from aioretell.emulator import Emulator, ManualClock
from aioretell.emulator.state import DEFAULT_AGENT_ID, DEFAULT_LLM_ID


@pytest.fixture
async def sdk(emu: Emulator, api_key: str) -> AsyncIterator[AsyncRetell]:
    client = AsyncRetell(api_key=api_key, base_url=emu.base_url, max_retries=0)
    try:
        yield client
    finally:
        await client.close()


async def test_calls_with_the_sdk(emu: Emulator, sdk: AsyncRetell, clock: ManualClock) -> None:
    call = await sdk.call.create_phone_call(
        from_number="+14155550100",
        to_number="+14155550101",
        metadata={"order": 1},
    )
    assert call.call_status == "registered"
    assert call.to_number == "+14155550101"
    assert call.direction == "outbound"

    clock.advance(30)
    got = await sdk.call.retrieve(call.call_id)
    assert got.call_id == call.call_id
    assert got.call_status == "ended"
    assert got.call_type == "phone_call"
    assert got.transcript
    assert got.disconnection_reason in ("agent_hangup", "user_hangup")

    web = await sdk.call.create_web_call(agent_id=DEFAULT_AGENT_ID)
    assert web.call_id and web.access_token and web.transport == "gateway"

    concurrency = await sdk.concurrency.retrieve()
    assert concurrency.current_concurrency == 1  # the web call; the phone call has ended
    assert concurrency.concurrency_limit == emu.config.concurrency_limit

    with pytest.raises(NotFoundError):
        await sdk.call.retrieve("call_missing")
    assert emu.state.dialed_numbers() == ["+14155550101"]


async def test_chats_with_the_sdk(sdk: AsyncRetell) -> None:
    agent = await sdk.chat_agent.create(
        response_engine={"type": "retell-llm", "llm_id": DEFAULT_LLM_ID}
    )
    chat = await sdk.chat.create(agent_id=agent.agent_id)
    assert chat.chat_status == "ongoing"

    first = await sdk.chat.create_chat_completion(chat_id=chat.chat_id, content="Hello")
    second = await sdk.chat.create_chat_completion(chat_id=chat.chat_id, content="Thanks")
    assert [m.role for m in first.messages + second.messages] == ["agent", "agent"]

    await sdk.chat.end(chat.chat_id)
    got = await sdk.chat.retrieve(chat.chat_id)
    assert got.chat_status == "ended"
    assert got.transcript is not None and got.transcript.startswith("User: Hello\nAgent: ")
    assert got.message_with_tool_calls is not None and len(got.message_with_tool_calls) == 4


async def test_contacts_page_by_cursor_and_skip_with_the_sdk(sdk: AsyncRetell) -> None:
    """The SDK sends ``skip`` and ``pagination_key`` together; list-contacts' spec allows it."""
    created = [
        (await sdk.contact.create(phone_number=f"+1415555013{i}")).contact_id for i in range(4)
    ]
    first = await sdk.contact.list(limit=1, sort_order="asc")
    assert first.pagination_key is not None
    rest = await sdk.contact.list(sort_order="asc", pagination_key=first.pagination_key, skip=1)
    assert [c.contact_id for c in rest.items] == created[2:]
