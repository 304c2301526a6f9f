"""The public contract end to end, over real loopback sockets against the emulator."""

from __future__ import annotations

import asyncio

import pytest

import aioretell
from aioretell import AsyncRetell
from aioretell.emulator import Emulator, ManualClock
from aioretell.types import ChatResponse, CreateWebCallResponse, PhoneCallResponse

from .conftest import API_KEY


async def test_issue_contract(emu: Emulator, client: AsyncRetell, clock: ManualClock) -> None:
    call = await client.call.create_phone_call(
        from_number="+14157774444",
        to_number="+12137774445",
        metadata={"lead": "42"},
        retell_llm_dynamic_variables={"customer_name": "John Doe"},
    )
    assert isinstance(call, PhoneCallResponse)
    assert call.call_status == "registered"
    assert call.metadata == {"lead": "42"}
    assert call.retell_llm_dynamic_variables == {"customer_name": "John Doe"}

    clock.advance(2)
    assert (await client.call.retrieve(call.call_id)).call_status == "ongoing"
    limits = await client.concurrency.retrieve()
    assert limits.current_concurrency == 1

    clock.advance(20)
    ended = await client.call.retrieve(call.call_id)
    assert ended.call_status == "ended"
    assert ended.disconnection_reason
    assert ended.latency is not None and ended.latency.e2e is not None
    assert ended.latency.e2e.p50 is not None
    assert ended.transcript_object
    assert ended.transcript_object[0].words[0].word

    web = await client.call.create_web_call(agent_id="agent_emulator_default")
    assert isinstance(web, CreateWebCallResponse)
    assert web.access_token

    agent = await client.chat_agent.create(
        response_engine={"type": "retell-llm", "llm_id": "llm_emulator_default"},
        agent_name="Jarvis",
    )
    assert (await client.chat_agent.retrieve(agent.agent_id)).agent_name == "Jarvis"
    chat = await client.chat.create(agent_id=agent.agent_id)
    assert isinstance(chat, ChatResponse)
    first = await client.chat.create_chat_completion(chat_id=chat.chat_id, content="hi")
    second = await client.chat.create_chat_completion(chat_id=chat.chat_id, content="bye")
    assert first.messages and second.messages
    await client.chat.end(chat.chat_id)
    done = await client.chat.retrieve(chat.chat_id)
    assert done.chat_status == "ended"
    assert done.transcript is not None and "hi" in done.transcript and "bye" in done.transcript
    assert emu.state.dialed_numbers() == ["+12137774445"]


async def test_list_calls_pages(emu: Emulator, client: AsyncRetell) -> None:
    for i in range(5):
        await client.call.create_phone_call(
            from_number="+14155550100", to_number=f"+1415555020{i}", metadata={"batch": "b"}
        )
    page = await client.call.list(limit=3)
    assert len(page.items) == 3
    assert page.has_more is True and page.pagination_key
    rest = await client.call.list(limit=3, pagination_key=page.pagination_key)
    assert len(rest.items) == 2
    assert {c.call_id for c in page.items}.isdisjoint({c.call_id for c in rest.items})


async def test_wrong_key_is_authentication_error(emu: Emulator) -> None:
    async with AsyncRetell(api_key="key_wrong", base_url=emu.base_url) as client:
        with pytest.raises(aioretell.AuthenticationError) as info:
            await client.concurrency.retrieve()
    assert info.value.status_code == 401
    assert "key_wrong" not in str(info.value)
    assert API_KEY not in info.value.body.decode()


async def test_unknown_id_is_not_found(client: AsyncRetell) -> None:
    with pytest.raises(aioretell.NotFoundError) as info:
        await client.call.retrieve("call_does_not_exist")
    assert info.value.message


async def test_hundred_concurrent_calls(emu: Emulator, client: AsyncRetell) -> None:
    numbers = [f"+1415555{i:04d}" for i in range(100)]
    calls = await asyncio.gather(
        *(client.call.create_phone_call(from_number="+14155550100", to_number=n) for n in numbers)
    )
    assert len({c.call_id for c in calls}) == 100
    assert sorted(emu.state.dialed_numbers()) == sorted(numbers)


async def test_closed_client_after_context(emu: Emulator) -> None:
    client = AsyncRetell(api_key=API_KEY, base_url=emu.base_url)
    async with client:
        await client.concurrency.retrieve()
    assert client.is_closed
    with pytest.raises(aioretell.ClientClosedError):
        await client.concurrency.retrieve()


async def test_cancellation_propagates_and_is_not_retried(
    emu: Emulator, client: AsyncRetell
) -> None:
    from aioretell.emulator import Fault

    emu.faults.script("createPhoneCall", [Fault.delay(30)])
    task = asyncio.create_task(
        client.call.create_phone_call(from_number="+14155550100", to_number="+14155550199")
    )
    while not any(op == "createPhoneCall" for op, _, _ in emu.requests):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r for r in emu.requests if r[0] == "createPhoneCall"] == [
        ("createPhoneCall", "POST", "/v2/create-phone-call")
    ]
