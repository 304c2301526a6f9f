"""End to end: the emulator places calls to an agent whose LLM is an ``aioretell.llm`` server,
served by aiohttp.web and by FastAPI (the ASGI adapter under uvicorn), over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aioretell.llm import LLMConfig, LLMServer, LLMSession, ResponseRequired
from aioretell.llm.script import ConversationScript, UserTurn
from aioretell.types import CallResponse

from .server_harness import ADAPTERS, serving
from .test_emulator_llm import custom_llm_agent, emulator, finished, spoken

pytestmark = pytest.mark.parametrize("adapter", ADAPTERS)

CONVERSATION = ConversationScript(
    turns=(
        UserTurn("Hi there", pause_s=0.0),
        UserTurn("Tell me a long story", pause_s=0.0),
        UserTurn("Never mind", pause_s=0.0, interrupt_after_chunks=1),
        UserTurn("Thanks", pause_s=0.0),
    ),
    hang_up_after_s=0.1,
)


def echo_server(log: list[str]) -> LLMServer:
    """Greets, echoes, tells a story that never ends (until superseded), hangs up on bye,
    fails on 'explode'."""
    llm = LLMServer(config=LLMConfig(auto_reconnect=True, call_details=True))

    @llm.on_call
    async def call(session: LLMSession) -> str:
        return "Hello from aioretell.llm."

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        said = request.transcript[-1].content if request.transcript else ""
        if session.call is not None:
            log.append(f"call {session.call.call_id} {request.response_id}")
        if "explode" in said:
            raise RuntimeError("the model fell over")
        if "bye" in said.lower():
            await session.end_call("Goodbye!")
            return
        if "story" in said:
            try:
                yield "Once upon a time"
                await asyncio.Event().wait()  # the rest never comes: only a newer turn ends it
            finally:
                log.append(f"story {request.response_id} stopped")
            return
        yield "You said: "
        yield said

    return llm


def ws(base: str) -> str:
    return "ws" + base.removeprefix("http")


async def test_a_scripted_call_against_llmserver(adapter: str) -> None:
    log: list[str] = []
    llm = echo_server(log)
    async with serving(llm, adapter) as base, emulator(llm_script=CONVERSATION) as (emu, client):
        agent_id = await custom_llm_agent(client, ws(base))
        created = await client.call.create_phone_call(
            from_number="+14155550100", to_number="+14155550111", override_agent_id=agent_id
        )
        call = await finished(emu, client, created.call_id)
    assert call.call_status == "ended"
    assert call.disconnection_reason == "user_hangup"
    assert spoken(call) == [
        "agent: Hello from aioretell.llm.",
        "user: Hi there",
        "agent: You said: Hi there",
        "user: Tell me a long story",
        "agent: Once upon a time",
        "user: Never mind",
        "agent: You said: Never mind",
        "user: Thanks",
        "agent: You said: Thanks",
    ]
    # The server got the call's details, and the barge-in cancelled the story generator.
    assert f"call {created.call_id} 1" in log
    assert "story 2 stopped" in log
    assert call.latency is not None and call.latency.llm is not None
    assert call.latency.llm.num == 4
    assert call.latency.llm_websocket_network_rtt is not None


async def web_call(adapter: str, *said: str) -> CallResponse:
    """A web call to :func:`echo_server` in which the user says ``said``, once it has ended."""
    script = ConversationScript(turns=tuple(UserTurn(text, pause_s=0.0) for text in said))
    async with (
        serving(echo_server([]), adapter) as base,
        emulator(llm_script=script) as (
            emu,
            client,
        ),
    ):
        agent_id = await custom_llm_agent(client, ws(base))
        created = await client.call.create_web_call(agent_id=agent_id)
        return await finished(emu, client, created.call_id)


async def test_end_call_from_llmserver_is_agent_hangup(adapter: str) -> None:
    call = await web_call(adapter, "Okay bye", "Hello?")
    assert call.disconnection_reason == "agent_hangup"
    assert spoken(call)[-1] == "agent: Goodbye!"


async def test_a_handler_that_raises_is_error_llm_websocket_runtime(adapter: str) -> None:
    call = await web_call(adapter, "Hi", "explode now")
    # LLMServer closes with 1011 when a handler raises, under either adapter.
    assert call.disconnection_reason == "error_llm_websocket_runtime"
    assert spoken(call)[-1] == "user: explode now"
