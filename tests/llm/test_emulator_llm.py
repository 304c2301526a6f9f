"""The emulator plays Retell for custom-LLM agents: a call connects to the agent's
``llm_websocket_url``, the scripted conversation runs over a real loopback socket, and
get-call, list-calls and the webhooks show what happened."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from aioretell import AsyncRetell, BadRequestError
from aioretell._serving import http_url, serve_app
from aioretell.emulator import Emulator, EmulatorConfig
from aioretell.llm.retell_side import RetellTimings
from aioretell.llm.script import ConversationScript, Silence, UserTurn
from aioretell.types import CallResponse

from .handwritten_llm import HandwrittenLLM, handwritten_llm

API_KEY = "key_llm_emulator"
# Only a guard against a hung test, never an assertion about speed.
SAFETY_TIMEOUT = 30.0
FAST = RetellTimings(ping_interval_s=0.05, ping_timeout_s=30.0, response_timeout_s=30.0)
TWO_TURNS = ConversationScript(
    turns=(UserTurn("Hi there", pause_s=0.0), UserTurn("Book a table", pause_s=0.0)),
    hang_up_after_s=0.1,
)


@asynccontextmanager
async def emulator(**overrides: Any) -> AsyncIterator[tuple[Emulator, AsyncRetell]]:
    settings: dict[str, Any] = {
        "api_key": API_KEY,
        "ring_duration_s": 0.01,
        "llm_timings": FAST,
        "llm_script": TWO_TURNS,
        "concurrency_limit": 100,
    }
    settings.update(overrides)
    async with (
        Emulator(EmulatorConfig(**settings)) as emu,
        AsyncRetell(api_key=API_KEY, base_url=emu.base_url, max_retries=0) as client,
    ):
        yield emu, client


async def custom_llm_agent(client: AsyncRetell, url: str, **fields: Any) -> str:
    agent = await client.agent.create(
        response_engine={"type": "custom-llm", "llm_websocket_url": url},
        voice_id="11labs-Adrian",
        **fields,
    )
    return agent.agent_id


async def finished(emu: Emulator, client: AsyncRetell, call_id: str) -> CallResponse:
    await asyncio.wait_for(emu.live_calls.wait(), SAFETY_TIMEOUT)
    return await client.call.retrieve(call_id)


def spoken(call: CallResponse) -> list[str]:
    return [f"{u.role}: {u.content}" for u in call.transcript_object or []]


async def test_a_phone_call_plays_the_script_against_the_agents_llm() -> None:
    async with handwritten_llm() as llm, emulator() as (emu, client):
        agent_id = await custom_llm_agent(client, llm.url)
        created = await client.call.create_phone_call(
            from_number="+14155550100", to_number="+14155550111", override_agent_id=agent_id
        )
        assert created.call_status == "registered"
        call = await finished(emu, client, created.call_id)
        # The concurrency slot is free again.
        assert (await client.concurrency.retrieve()).current_concurrency == 0
    assert call.call_status == "ended"
    assert call.disconnection_reason == "user_hangup"
    assert spoken(call) == [
        "agent: Hello, this is the test agent.",
        "user: Hi there",
        "agent: You said: Hi there",
        "user: Book a table",
        "agent: You said: Book a table",
    ]
    assert call.transcript == "\n".join(
        line.replace("agent:", "Agent:").replace("user:", "User:") for line in spoken(call)
    )
    words = call.transcript_object[1].words  # type: ignore[index]
    assert [w.word for w in words] == ["Hi", "there"]
    assert words[0].start is not None and words[0].end is not None
    assert 0 <= words[0].start < words[0].end
    # The server asked for call_details and got this very call.
    details = llm.received[created.call_id][0]
    assert details["interaction_type"] == "call_details"
    assert details["call"]["call_id"] == created.call_id
    assert details["call"]["call_status"] == "ongoing"
    assert details["call"]["to_number"] == "+14155550111"
    # Latency as measured: LLM first chunks for both answers, the ping round trips.
    assert call.latency is not None
    assert call.latency.llm is not None and call.latency.llm.num == 2
    rtt = call.latency.llm_websocket_network_rtt
    assert rtt is not None and rtt.num is not None and rtt.num >= 1
    assert rtt.min is not None and rtt.min >= 0
    assert call.start_timestamp is not None and call.end_timestamp is not None
    assert call.end_timestamp >= call.start_timestamp


async def test_web_and_registered_calls_run_conversations_too() -> None:
    async with handwritten_llm() as llm, emulator() as (emu, client):
        agent_id = await custom_llm_agent(client, llm.url)
        web_call = await client.call.create_web_call(agent_id=agent_id)
        registered = await client.call.register_phone_call(agent_id=agent_id)
        await asyncio.wait_for(emu.live_calls.wait(), SAFETY_TIMEOUT)
        for call_id in (web_call.call_id, registered.call_id):
            call = await client.call.retrieve(call_id)
            assert call.disconnection_reason == "user_hangup"
            assert len(spoken(call)) == 5


async def test_other_agents_keep_the_synthesised_calls() -> None:
    async with handwritten_llm() as llm, emulator(call_duration_s=0.05) as (emu, client):
        call = await client.call.create_web_call(agent_id="agent_emulator_default")
        assert emu.live_calls.running
        await asyncio.sleep(0.2)
        ended = await client.call.retrieve(call.call_id)
    assert ended.call_status == "ended"
    assert llm.connections == 0


async def test_get_call_shows_the_transcript_while_the_call_goes_on_and_stop_call_hangs_up() -> (
    None
):
    long_call = ConversationScript(turns=(UserTurn("Hi", pause_s=0.0), Silence(60.0)))
    async with handwritten_llm() as llm, emulator(llm_script=long_call) as (emu, client):
        agent_id = await custom_llm_agent(client, llm.url)
        created = await client.call.create_web_call(agent_id=agent_id)
        call = await client.call.retrieve(created.call_id)
        while len(spoken(call)) < 3:
            await asyncio.sleep(0.02)
            call = await client.call.retrieve(created.call_id)
        assert call.call_status == "ongoing"
        assert call.disconnection_reason is None
        await client.call.stop(created.call_id)
        call = await finished(emu, client, created.call_id)
    assert call.call_status == "ended"
    assert call.disconnection_reason == "manual_stopped"
    assert spoken(call) == [
        "agent: Hello, this is the test agent.",
        "user: Hi",
        "agent: You said: Hi",
    ]


async def test_a_barge_in_shows_in_the_calls_transcript() -> None:
    barge_in = ConversationScript(
        turns=(
            UserTurn("Something slow please", pause_s=0.0),
            UserTurn("No wait", pause_s=0.0, interrupt_after_chunks=1),
        ),
        hang_up_after_s=0.0,
    )
    async with handwritten_llm() as llm, emulator(llm_script=barge_in) as (emu, client):
        agent_id = await custom_llm_agent(client, llm.url)
        created = await client.call.create_web_call(agent_id=agent_id)
        call = await finished(emu, client, created.call_id)
    assert spoken(call)[2:] == [
        "agent: Let me think",
        "user: No wait",
        "agent: You said: No wait",
    ]


@pytest.mark.parametrize(
    ("behavior", "timings", "reason"),
    [
        ({"refuse_status": 403}, FAST, "error_llm_websocket_open"),
        ({"fail_at": 1, "failure": "invalid_json"}, FAST, "error_llm_websocket_corrupt_payload"),
        ({"fail_at": 2, "failure": "crash"}, FAST, "error_llm_websocket_lost_connection"),
        ({"fail_at": 1, "failure": "close_1011"}, FAST, "error_llm_websocket_runtime"),
        (
            {"answer_pings": 1},
            RetellTimings(ping_interval_s=0.02, ping_timeout_s=0.1),
            "error_llm_websocket_lost_connection",
        ),
    ],
    ids=["refused", "invalid-json", "crash", "close-1011", "stops-answering-pings"],
)
async def test_a_failing_llm_server_ends_the_call_with_the_matching_reason(
    behavior: dict[str, Any], timings: RetellTimings, reason: str
) -> None:
    waits = ConversationScript(turns=(*TWO_TURNS.turns, Silence(60.0)))
    async with (
        handwritten_llm(**behavior) as llm,
        emulator(llm_timings=timings, llm_script=waits) as (emu, client),
    ):
        agent_id = await custom_llm_agent(client, llm.url)
        created = await client.call.create_web_call(agent_id=agent_id)
        call = await finished(emu, client, created.call_id)
        assert (await client.concurrency.retrieve()).current_concurrency == 0
    assert call.call_status == "ended"
    assert call.disconnection_reason == reason


async def test_a_url_that_is_no_websocket_url_fails_to_open() -> None:
    async with emulator() as (emu, client):
        agent_id = await custom_llm_agent(client, "https://example.invalid/llm")
        created = await client.call.create_web_call(agent_id=agent_id)
        call = await finished(emu, client, created.call_id)
    assert call.disconnection_reason == "error_llm_websocket_open"
    assert call.transcript_object == []


async def test_end_call_and_transfer() -> None:
    async with (
        handwritten_llm(end_call_on="Book", transfer_on="human") as llm,
        emulator() as (emu, client),
    ):
        agent_id = await custom_llm_agent(client, llm.url)
        hung_up = await client.call.create_web_call(agent_id=agent_id)
        transferred = await client.call.create_web_call(
            agent_id=agent_id,
            metadata={"aioretell_llm_script": ["A human, please", "Hello?"]},
        )
        await asyncio.wait_for(emu.live_calls.wait(), SAFETY_TIMEOUT)
        first = await client.call.retrieve(hung_up.call_id)
        second = await client.call.retrieve(transferred.call_id)
    assert first.disconnection_reason == "agent_hangup"
    assert spoken(first)[-1] == "agent: You said: Book a table"
    assert second.disconnection_reason == "call_transfer"
    assert second.transfer_destination == "+14155550199"
    assert "Hello?" not in second.transcript  # type: ignore[operator]


async def test_a_script_in_the_calls_metadata_replaces_the_configured_one() -> None:
    script = {"turns": [{"user": "Only this", "pause": 0}], "hang_up_after": 0}
    async with handwritten_llm() as llm, emulator() as (emu, client):
        agent_id = await custom_llm_agent(client, llm.url)
        created = await client.call.create_web_call(
            agent_id=agent_id, metadata={"aioretell_llm_script": script}
        )
        call = await finished(emu, client, created.call_id)
    assert spoken(call)[1:] == ["user: Only this", "agent: You said: Only this"]


async def test_a_bad_script_in_metadata_is_refused_before_any_call() -> None:
    async with handwritten_llm() as llm, emulator() as (emu, client):
        agent_id = await custom_llm_agent(client, llm.url)
        with pytest.raises(BadRequestError) as caught:
            await client.call.create_phone_call(
                from_number="+14155550100",
                to_number="+14155550111",
                override_agent_id=agent_id,
                metadata={"aioretell_llm_script": {"turns": [{"user": "hi", "pause": -1}]}},
            )
        assert "metadata.aioretell_llm_script" in str(caught.value)
        assert "turns[0].pause must be between 0" in str(caught.value)
        assert emu.state.calls == {}
        assert emu.state.dialed_numbers() == []
    assert llm.connections == 0


async def test_the_agents_reminder_settings_apply() -> None:
    quiet = ConversationScript(turns=(UserTurn("Hi", pause_s=0.0), Silence(0.5)))
    async with handwritten_llm() as llm, emulator(llm_script=quiet) as (emu, client):
        agent_id = await custom_llm_agent(
            client, llm.url, reminder_trigger_ms=100, reminder_max_count=1
        )
        created = await client.call.create_web_call(agent_id=agent_id)
        call = await finished(emu, client, created.call_id)
    assert llm.types(created.call_id).count("reminder_required") == 1
    assert spoken(call)[-1] == "agent: You said: are you still there?"


async def test_webhooks_carry_the_conversation() -> None:
    bodies: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        bodies.append(json.loads(await request.read()))
        return web.Response(status=204)

    hooks = web.Application()
    hooks.router.add_post("/hooks", receive)
    runner, host, port = await serve_app(hooks, "127.0.0.1", 0)
    hooks_url = http_url(host, port, "/hooks")
    try:
        async with (
            handwritten_llm() as llm,
            emulator(webhook_url=hooks_url, analysis_delay_s=0.0) as (emu, client),
        ):
            agent_id = await custom_llm_agent(client, llm.url)
            created = await client.call.create_web_call(agent_id=agent_id)
            await asyncio.wait_for(emu.live_calls.wait(), SAFETY_TIMEOUT)
            await emu.webhooks.flush()
            await emu.webhooks.flush()  # call_analyzed is queued by call_ended
    finally:
        await runner.cleanup()
    events = {body["event"]: body["call"] for body in bodies}
    assert set(events) == {"call_started", "call_ended", "call_analyzed"}
    ended = events["call_ended"]
    assert ended["call_id"] == created.call_id
    assert ended["disconnection_reason"] == "user_hangup"
    assert [u["content"] for u in ended["transcript_object"]][-1] == "You said: Book a table"
    assert "llm_websocket_network_rtt" in ended["latency"]
    assert events["call_analyzed"]["call_analysis"]["call_summary"] == (
        "Emulated call with 5 turns, ended by user_hangup."
    )


async def test_list_calls_leaves_the_transcript_out() -> None:
    async with handwritten_llm() as llm, emulator() as (emu, client):
        agent_id = await custom_llm_agent(client, llm.url)
        created = await client.call.create_web_call(agent_id=agent_id)
        await asyncio.wait_for(emu.live_calls.wait(), SAFETY_TIMEOUT)
        page = await client.call.list()
    [listed] = [c for c in page.items if c.call_id == created.call_id]
    assert listed.disconnection_reason == "user_hangup"
    assert getattr(listed, "transcript", None) is None


async def test_stopping_the_emulator_mid_call_cancels_and_awaits_conversations() -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    long_call = ConversationScript(turns=(UserTurn("Hi", pause_s=0.0), Silence(60.0)))
    try:
        async with handwritten_llm() as llm:
            async with emulator(llm_script=long_call) as (emu, client):
                agent_id = await custom_llm_agent(client, llm.url)
                created = [await client.call.create_web_call(agent_id=agent_id) for _ in range(5)]
                while sum(len(llm.types(c.call_id)) for c in created) < 5 * 3:
                    await asyncio.sleep(0.02)
                live = emu.live_calls
            # The emulator is stopped: every conversation task is finished, every call ended.
            assert not live._tasks
            for call in created:
                record = emu.state.calls[call.call_id]
                assert record.status(emu.state.now()) == "ended"
    finally:
        loop.set_exception_handler(None)
    assert unhandled == []
    assert not [t for t in asyncio.all_tasks() if "aioretell-emulator-llm" in t.get_name()]


async def test_many_calls_at_once() -> None:
    async with HandwrittenLLM() as llm, emulator() as (emu, client):
        agent_id = await custom_llm_agent(client, llm.url)
        created = await asyncio.gather(
            *(client.call.create_web_call(agent_id=agent_id) for _ in range(30))
        )
        await asyncio.wait_for(emu.live_calls.wait(), SAFETY_TIMEOUT)
        calls = [await client.call.retrieve(c.call_id) for c in created]
    assert {c.disconnection_reason for c in calls} == {"user_hangup"}
    assert all(len(spoken(c)) == 5 for c in calls)
    assert llm.connections == 30
