"""RetellSide, the Retell side of the custom-LLM socket, against a hand-written server over
real loopback sockets: the protocol it speaks, what it measures, and each way a server fails."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aioretell.llm.retell_side import (
    ConversationResult,
    RetellSide,
    RetellTimings,
    websocket_url,
)
from aioretell.llm.script import ConversationScript, Silence, UserTurn

from .handwritten_llm import HandwrittenLLM, handwritten_llm

# Pings every 50 ms so they happen; generous timeouts so a loaded machine never trips them
# (only the test that wants a ping timeout shrinks it, against a server that never answers).
FAST = RetellTimings(ping_interval_s=0.05, ping_timeout_s=30.0, response_timeout_s=30.0)
# Only a guard against a hung test, never an assertion about speed.
SAFETY_TIMEOUT = 30.0


def script(*turns: UserTurn | Silence, **options: float) -> ConversationScript:
    return ConversationScript(turns=turns, hang_up_after_s=0.0, **options)  # type: ignore[arg-type]


def say(text: str, **options: int | float) -> UserTurn:
    return UserTurn(text, pause_s=0.0, **options)  # type: ignore[arg-type]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def play(
    session: aiohttp.ClientSession,
    url: str,
    conversation: ConversationScript,
    call_id: str = "call_1",
    timings: RetellTimings = FAST,
) -> ConversationResult:
    side = RetellSide(session, url, call_id, conversation, timings=timings)
    return await asyncio.wait_for(side.run(), SAFETY_TIMEOUT)


def lines(result: ConversationResult) -> list[str]:
    return [f"{item.role}: {item.content}" for item in result.utterances]


async def test_a_whole_conversation_follows_the_protocol(session: aiohttp.ClientSession) -> None:
    async with handwritten_llm() as llm:
        result = await play(session, llm.url, script(say("Hi there"), say("Book a table")))
    assert result.disconnection_reason == "user_hangup"
    assert result.detail is None
    assert lines(result) == [
        "agent: Hello, this is the test agent.",
        "user: Hi there",
        "agent: You said: Hi there",
        "user: Book a table",
        "agent: You said: Book a table",
    ]
    sent = llm.received["call_1"]
    # call_details first (asked for by config), with the call id.
    assert sent[0]["interaction_type"] == "call_details"
    assert sent[0]["call"]["call_id"] == "call_1"
    assert llm.types("call_1") == [
        "call_details",
        "update_only",  # the begin message is in the transcript
        "update_only",  # the user is halfway through "Hi there"
        "response_required",
        "update_only",
        "update_only",
        "response_required",
        "update_only",
    ]
    requests = [e for e in sent if e["interaction_type"] == "response_required"]
    assert [r["response_id"] for r in requests] == [1, 2]
    assert requests[1]["transcript"] == [
        {"role": "agent", "content": "Hello, this is the test agent."},
        {"role": "user", "content": "Hi there"},
        {"role": "agent", "content": "You said: Hi there"},
        {"role": "user", "content": "Book a table"},
    ]
    partial = [e for e in sent if e["interaction_type"] == "update_only"][1]
    assert partial["transcript"][-1] == {"role": "user", "content": "Hi"}
    assert partial["turntaking"] == "user_turn"
    # Every turn measured and answered.
    assert [(t.response_id, t.kind) for t in result.turns] == [
        (0, "begin"),
        (1, "response"),
        (2, "response"),
    ]
    for turn in result.turns:
        assert turn.answered and not turn.interrupted
        assert turn.first_chunk_s is not None and turn.complete_s is not None
        assert 0 <= turn.first_chunk_s <= turn.complete_s
    assert result.turns[1].chunks == 2  # 'You said:' + ' Hi there'
    assert result.stale_responses == result.late_responses == 0
    assert result.violations == []


async def test_pings_are_echoed_and_timed(session: aiohttp.ClientSession) -> None:
    async with handwritten_llm() as llm:
        result = await play(session, llm.url, script(say("Hi"), Silence(0.3)))
    pings = [e for e in llm.received["call_1"] if e["interaction_type"] == "ping_pong"]
    assert len(pings) >= 2
    stamps = [p["timestamp"] for p in pings]
    assert stamps == sorted(set(stamps))  # strictly increasing
    assert len(result.ping_rtts_s) >= 2
    assert all(rtt >= 0 for rtt in result.ping_rtts_s)


async def test_no_pings_without_auto_reconnect(session: aiohttp.ClientSession) -> None:
    async with handwritten_llm(config=None) as llm:
        result = await play(session, llm.url, script(say("Hi"), Silence(0.3)))
    assert result.disconnection_reason == "user_hangup"
    assert "ping_pong" not in [e["interaction_type"] for e in llm.received["call_1"]]
    assert "call_details" not in llm.types("call_1")
    assert result.ping_rtts_s == []


async def test_a_barge_in_supersedes_the_answer_mid_stream(
    session: aiohttp.ClientSession,
) -> None:
    conversation = script(
        say("Tell me something slow"), say("Stop, never mind", interrupt_after_chunks=1)
    )
    async with handwritten_llm() as llm:
        result = await play(session, llm.url, conversation)
    held, after = result.turns[1], result.turns[2]
    assert held.interrupted and held.answered and held.complete_s is None
    assert held.chunks == 1
    assert after.response_id == 2 and after.complete_s is not None
    # Only what the agent said before the user cut in is in the transcript.
    assert lines(result) == [
        "agent: Hello, this is the test agent.",
        "user: Tell me something slow",
        "agent: Let me think",
        "user: Stop, never mind",
        "agent: You said: Stop, never mind",
    ]
    # The user started talking (update_only) right after the first chunk, then the new
    # request; no update_only for the cut-short answer, which never completed.
    assert llm.types("call_1") == [
        "call_details",
        "update_only",
        "update_only",
        "response_required",
        "update_only",
        "response_required",
        "update_only",
    ]
    assert result.stale_responses == result.late_responses == 0
    assert result.violations == []


async def test_stale_answers_are_counted_and_never_spoken(session: aiohttp.ClientSession) -> None:
    conversation = script(say("Tell me something slow"), say("Stop", interrupt_after_chunks=1))
    async with handwritten_llm(stale_after_newer=3) as llm:
        result = await play(session, llm.url, conversation)
    # The server began answering response 2, then sent three more chunks of response 1.
    assert result.stale_responses == 3
    assert result.late_responses == 0
    assert "more" not in " ".join(lines(result))
    assert result.turns[1].content == "Let me think"


async def test_chunks_that_may_have_crossed_the_request_count_as_late(
    session: aiohttp.ClientSession,
) -> None:
    conversation = script(say("Tell me something slow"), say("Stop", interrupt_after_chunks=1))
    async with handwritten_llm(late_before_newer=2) as llm:
        result = await play(session, llm.url, conversation)
    assert result.late_responses == 2
    assert result.stale_responses == 0
    assert "late" not in " ".join(lines(result))


async def test_end_call_ends_the_call_as_agent_hangup(session: aiohttp.ClientSession) -> None:
    conversation = script(say("Goodbye"), say("Are you there?"))
    async with handwritten_llm(end_call_on="Goodbye") as llm:
        result = await play(session, llm.url, conversation)
    assert result.disconnection_reason == "agent_hangup"
    assert lines(result)[-1] == "agent: You said: Goodbye"
    assert "Are you there?" not in " ".join(lines(result))
    assert llm.types("call_1").count("response_required") == 1


async def test_transfer_number_ends_the_call_as_call_transfer(
    session: aiohttp.ClientSession,
) -> None:
    async with handwritten_llm(transfer_on="human") as llm:
        result = await play(session, llm.url, script(say("A human please"), say("Hello?")))
    assert result.disconnection_reason == "call_transfer"
    assert result.transfer_destination == "+14155550199"


async def test_silence_brings_reminders_up_to_the_agent_setting(
    session: aiohttp.ClientSession,
) -> None:
    conversation = script(say("Hi"), Silence(0.5), reminder_trigger_s=0.1, reminder_max_count=2)
    async with handwritten_llm() as llm:
        result = await play(session, llm.url, conversation)
    kinds = [t.kind for t in result.turns]
    assert kinds == ["begin", "response", "reminder", "reminder"]
    assert llm.types("call_1").count("reminder_required") == 2
    assert [t.response_id for t in result.turns] == [0, 1, 2, 3]
    assert all(t.answered for t in result.turns)


async def test_reminders_count_again_once_the_user_has_spoken(
    session: aiohttp.ClientSession,
) -> None:
    conversation = script(
        say("Hi"),
        Silence(0.3),
        Silence(0.3),  # the same stretch of silence: no second reminder
        say("Hello again"),
        Silence(0.3),
        reminder_trigger_s=0.1,
        reminder_max_count=1,
    )
    async with handwritten_llm() as llm:
        result = await play(session, llm.url, conversation)
    assert [t.kind for t in result.turns] == [
        "begin",
        "response",
        "reminder",
        "response",
        "reminder",
    ]
    assert llm.types("call_1").count("reminder_required") == 2


async def test_unknown_and_out_of_order_events_are_violations(
    session: aiohttp.ClientSession,
) -> None:
    frames = [
        '{"response_type": "brand_new_thing", "x": 1}',
        '{"response_type": "response", "response_id": 7, "content": "?", "content_complete": true}',
        '{"response_type": "response", "response_id": 0, "content": "again",'
        ' "content_complete": true}',
        '{"response_type": "ping_pong", "timestamp": 12}',
        '{"response_type": "config", "config": {"auto_reconnect": false}}',
    ]
    async with handwritten_llm(extra_frames=frames) as llm:
        result = await play(session, llm.url, script(say("Hi")))
    assert result.disconnection_reason == "user_hangup"
    assert [v.kind for v in result.violations] == [
        "unknown response_type",
        "response to an id never sent",
        "response after content_complete",
        "ping_pong echo of nothing",
        "config sent twice",
    ]
    assert result.violation_count == 5


async def test_tool_calls_and_metadata_are_recorded(session: aiohttp.ClientSession) -> None:
    frames = [
        '{"response_type": "tool_call_invocation", "tool_call_id": "t1", "name": "lookup",'
        ' "arguments": "{\\"order\\": 1}"}',
        '{"response_type": "tool_call_result", "tool_call_id": "t1", "content": "shipped"}',
        '{"response_type": "metadata", "metadata": {"lead": 42}}',
        '{"response_type": "agent_interrupt", "interrupt_id": 1, "content": "One moment",'
        ' "content_complete": true}',
    ]
    async with handwritten_llm(extra_frames=frames) as llm:
        result = await play(session, llm.url, script(say("Hi")))
    roles = [item.role for item in result.transcript]
    assert roles[:5] == ["agent", "tool_call_invocation", "tool_call_result", "agent", "user"]
    assert result.transcript[1].name == "lookup"
    assert result.transcript[2].content == "shipped"
    assert result.transcript[3].content == "One moment"
    assert result.metadata == {"lead": 42}
    assert result.violations == []


# -- how a server fails -> the disconnection reason --------------------------------------


async def test_a_refused_socket_is_error_llm_websocket_open(
    session: aiohttp.ClientSession,
) -> None:
    async with handwritten_llm(refuse_status=403) as llm:
        result = await play(session, llm.url, script(say("Hi")))
    assert result.disconnection_reason == "error_llm_websocket_open"
    assert result.detail == "the server refused the WebSocket: HTTP 403"
    assert not result.connected
    assert result.turns == []


async def test_nothing_listening_is_error_llm_websocket_open(
    session: aiohttp.ClientSession,
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await play(session, f"ws://127.0.0.1:{port}/llm", script(say("Hi")))
    assert result.disconnection_reason == "error_llm_websocket_open"
    assert result.detail is not None and result.detail.startswith("cannot connect:")


async def test_invalid_json_is_error_llm_websocket_corrupt_payload(
    session: aiohttp.ClientSession,
) -> None:
    async with handwritten_llm(fail_at=2, failure="invalid_json") as llm:
        result = await play(session, llm.url, script(say("One"), say("Two"), say("Three")))
    assert result.disconnection_reason == "error_llm_websocket_corrupt_payload"
    assert result.detail is not None and "not a JSON object" in result.detail
    assert [v.kind for v in result.violations] == ["corrupt payload"]
    assert lines(result)[-1] == "user: Two"


async def test_a_server_crash_mid_call_is_error_llm_websocket_lost_connection(
    session: aiohttp.ClientSession,
) -> None:
    # aiohttp.web drops the connection without a close frame when a handler raises.
    async with handwritten_llm(fail_at=2, failure="crash") as llm:
        result = await play(session, llm.url, script(say("One"), say("Two"), say("Three")))
    assert result.disconnection_reason == "error_llm_websocket_lost_connection"
    assert result.detail == "the connection dropped without a close frame"
    assert lines(result)[-1] == "user: Two"


async def test_an_error_close_code_is_error_llm_websocket_runtime(
    session: aiohttp.ClientSession,
) -> None:
    async with handwritten_llm(fail_at=1, failure="close_1011") as llm:
        result = await play(session, llm.url, script(say("One"), say("Two")))
    assert result.disconnection_reason == "error_llm_websocket_runtime"
    assert result.detail == "the server closed the socket with code 1011: handler failed"


async def test_a_normal_close_mid_call_is_a_lost_connection(
    session: aiohttp.ClientSession,
) -> None:
    async with handwritten_llm(fail_at=1, failure="close_1000") as llm:
        result = await play(session, llm.url, script(say("One"), say("Two")))
    assert result.disconnection_reason == "error_llm_websocket_lost_connection"
    assert result.detail is not None and "code 1000" in result.detail


async def test_a_server_that_stops_echoing_pings_is_disconnected(
    session: aiohttp.ClientSession,
) -> None:
    timings = RetellTimings(ping_interval_s=0.02, ping_timeout_s=0.1, response_timeout_s=30.0)
    async with handwritten_llm(answer_pings=1) as llm:
        # The conversation would last 30 s; the silent server ends it much sooner.
        result = await play(session, llm.url, script(say("Hi"), Silence(30.0)), timings=timings)
    assert result.disconnection_reason == "error_llm_websocket_lost_connection"
    assert result.detail == "no ping_pong echo for 0.1 s"
    assert len(result.ping_rtts_s) == 1


async def test_an_unanswered_turn_times_out_and_the_call_goes_on(
    session: aiohttp.ClientSession,
) -> None:
    timings = RetellTimings(ping_interval_s=1.0, response_timeout_s=0.2)
    # "slow" answers hold forever (nothing supersedes them without a barge-in).
    async with handwritten_llm() as llm:
        result = await play(
            session, llm.url, script(say("Be slow"), say("Hello?")), timings=timings
        )
    assert result.disconnection_reason == "user_hangup"
    assert [t.answered for t in result.turns] == [True, False, True]
    assert lines(result)[-1] == "agent: You said: Hello?"


async def test_hang_up_ends_a_running_conversation(session: aiohttp.ClientSession) -> None:
    async with handwritten_llm() as llm:
        side = RetellSide(session, llm.url, "call_1", script(say("Hi"), Silence(60)), timings=FAST)
        task = asyncio.create_task(side.run())
        while not side.result.ping_rtts_s:
            await asyncio.sleep(0.01)
        side.hang_up("manual_stopped")
        result = await asyncio.wait_for(task, SAFETY_TIMEOUT)
    assert result.disconnection_reason == "manual_stopped"
    side.hang_up("user_hangup")  # once ended, the reason stays
    assert result.disconnection_reason == "manual_stopped"


async def test_hang_up_before_the_start_connects_nowhere(session: aiohttp.ClientSession) -> None:
    async with HandwrittenLLM() as llm:
        side = RetellSide(session, llm.url, "call_1", script(say("Hi")), timings=FAST)
        side.hang_up("manual_stopped")
        result = await side.run()
        assert llm.connections == 0
    assert result.disconnection_reason == "manual_stopped"
    with pytest.raises(RuntimeError, match="one conversation"):
        await side.run()


async def test_cancelling_run_closes_the_socket_and_propagates(
    session: aiohttp.ClientSession,
) -> None:
    async with handwritten_llm() as llm:
        side = RetellSide(session, llm.url, "call_1", script(say("Hi"), Silence(60)), timings=FAST)
        task = asyncio.create_task(side.run())
        while not side.result.ping_rtts_s:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert side.result.disconnection_reason is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://h/llm", "ws://h/llm/call_9"),
        ("wss://h/llm/", "wss://h/llm/call_9"),
        ("wss://h", "wss://h/call_9"),
        ("wss://h/llm?token=s3cret", "wss://h/llm/call_9?token=s3cret"),
    ],
)
def test_the_call_id_goes_at_the_end_of_the_path(url: str, expected: str) -> None:
    assert str(websocket_url(url, "call_9")) == expected


@pytest.mark.parametrize("url", ["http://h/llm", "ftp://h", "ws://", "not a url", ""])
def test_urls_other_than_websocket_ones_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="llm_websocket_url"):
        websocket_url(url, "call_9")


@pytest.mark.parametrize(
    ("name", "value"),
    [("ping_interval_s", 0), ("ping_timeout_s", -1), ("open_timeout_s", float("nan"))],
)
def test_timings_must_be_positive_and_finite(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        RetellTimings(**{name: value})
