"""LLMServer protocol behaviour over real sockets, under aiohttp.web and under FastAPI/uvicorn.

Every test runs against both adapters: a real server on 127.0.0.1 and a real aiohttp WebSocket
client playing Retell.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aioretell.llm import (
    AgentConfig,
    AgentInterrupt,
    CallDetails,
    ConfigEvent,
    LLMConfig,
    LLMServer,
    LLMSession,
    Metadata,
    PingPong,
    PingPongReply,
    ReminderRequired,
    Response,
    ResponseRequired,
    ToolCallInvocation,
    ToolCallResult,
    UpdateAgent,
    UpdateOnly,
    Utterance,
)
from aioretell.types import CallResponse

from .server_harness import ADAPTERS, SAFETY_TIMEOUT, RetellPeer, connect, serving

pytestmark = pytest.mark.parametrize("adapter", ADAPTERS)


def user_says(
    response_id: int, text: str, cls: type[ResponseRequired] = ResponseRequired
) -> ResponseRequired:
    return cls(response_id=response_id, transcript=[Utterance(role="user", content=text)])


async def opening(peer: RetellPeer) -> tuple[ConfigEvent, Response]:
    config, begin = await peer.recv_many(2)
    assert isinstance(config, ConfigEvent)
    assert isinstance(begin, Response)
    return config, begin


def echo_server(**kwargs: object) -> LLMServer:
    llm = LLMServer(**kwargs)  # type: ignore[arg-type]

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        yield "you said: "
        yield request.transcript[-1].content

    return llm


def stuck_server() -> tuple[LLMServer, asyncio.Event, list[str]]:
    """A server whose answer waits until it is cancelled: ``blocked`` is set once it waits, and
    its ``finally`` appends ``"finally"`` to the log."""
    log: list[str] = []
    blocked = asyncio.Event()
    llm = LLMServer()

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        try:
            blocked.set()
            await asyncio.Event().wait()
            yield "unreachable"
        finally:
            log.append("finally")

    return llm, blocked, log


async def answer_stuck(peer: RetellPeer, blocked: asyncio.Event) -> None:
    """Open the call and ask for an answer; return once a :func:`stuck_server` waits in it."""
    await opening(peer)
    await peer.send(user_says(1, "hi"))
    await asyncio.wait_for(blocked.wait(), SAFETY_TIMEOUT)


# ---------------------------------------------------------------- opening


async def test_config_then_begin_message(adapter: str) -> None:
    llm = echo_server(
        config=LLMConfig(auto_reconnect=False, call_details=True), begin_message="Hello!"
    )
    async with serving(llm, adapter) as base, connect(base) as peer:
        config, begin = await opening(peer)
        assert config.config == LLMConfig(auto_reconnect=False, call_details=True)
        assert (begin.response_id, begin.content, begin.content_complete) == (0, "Hello!", True)


async def test_on_call_waits_for_call_details_and_returns_the_begin_message(
    adapter: str,
) -> None:
    llm = echo_server(config=LLMConfig(call_details=True))
    seen: list[str] = []

    @llm.on_call
    async def call(session: LLMSession) -> str:
        details = await session.call_details()
        seen.append(session.call_id)
        session.data["name"] = (details.metadata or {})["name"]
        return f"Hi {session.data['name']}"

    call_object = CallResponse(
        call_type="web_call",
        call_id="call_1",
        agent_id="agent_1",
        agent_version=1,
        call_status="ongoing",
        metadata={"name": "Ada"},
    )
    async with serving(llm, adapter) as base, connect(base) as peer:
        config = await peer.recv()
        assert isinstance(config, ConfigEvent) and config.config.call_details
        await peer.send(CallDetails(call=call_object))
        begin = await peer.recv()
        assert begin == Response(response_id=0, content="Hi Ada", content_complete=True)
    assert seen == ["call_1"]


async def test_empty_begin_message_waits_for_the_user(adapter: str) -> None:
    llm = echo_server()
    async with serving(llm, adapter) as base, connect(base) as peer:
        _, begin = await opening(peer)
        assert (begin.response_id, begin.content, begin.content_complete) == (0, "", True)


async def test_a_request_before_the_begin_message_makes_it_stale(adapter: str) -> None:
    release = asyncio.Event()
    llm = echo_server()

    @llm.on_call
    async def call(session: LLMSession) -> str:
        await release.wait()
        return "too late"

    async with serving(llm, adapter) as base, connect(base) as peer:
        assert isinstance(await peer.recv(), ConfigEvent)
        await peer.send(user_says(1, "hi"))
        await peer.send(PingPong(timestamp=5))
        # The ping's answer proves the request was read before on_call finished.
        assert await peer.recv() == PingPongReply(timestamp=5)
        release.set()
        events = await peer.recv_many(3)
    assert [(e.response_id, e.content, e.content_complete) for e in events] == [  # type: ignore[union-attr]
        (1, "you said: ", False),
        (1, "hi", False),
        (1, "", True),
    ]


# ---------------------------------------------------------------- each event type


async def test_ping_pong_is_answered_with_the_same_timestamp(adapter: str) -> None:
    async with serving(echo_server(), adapter) as base, connect(base) as peer:
        await opening(peer)
        for ts in (1, 1_700_000_000_000):
            await peer.send(PingPong(timestamp=ts))
            assert await peer.recv() == PingPongReply(timestamp=ts)


async def test_response_streams_chunks_then_completes(adapter: str) -> None:
    async with serving(echo_server(), adapter) as base, connect(base) as peer:
        await opening(peer)
        await peer.send(user_says(1, "hello"))
        events = await peer.recv_many(3)
    assert events == [
        Response(response_id=1, content="you said: "),
        Response(response_id=1, content="hello"),
        Response(response_id=1, content="", content_complete=True),
    ]


async def test_reminder_required_is_answered_like_a_request(adapter: str) -> None:
    async with serving(echo_server(), adapter) as base, connect(base) as peer:
        await opening(peer)
        await peer.send(user_says(4, "anyone?", ReminderRequired))
        events = await peer.recv_many(3)
    assert {e.response_id for e in events} == {4}  # type: ignore[union-attr]
    assert events[-1].content_complete  # type: ignore[union-attr]


async def test_update_only_changes_the_transcript_and_sends_nothing(adapter: str) -> None:
    llm = LLMServer()

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> str:
        return f"{len(session.transcript)} turns, last {session.transcript[-1].content}"

    async with serving(llm, adapter) as base, connect(base) as peer:
        await opening(peer)
        transcript = [
            Utterance(role="agent", content="hi"),
            Utterance(role="user", content="one"),
            Utterance(role="user", content="two"),
        ]
        await peer.send(UpdateOnly(transcript=transcript, turntaking="user_turn"))
        await peer.send(PingPong(timestamp=1))
        # Nothing was sent for the update: the next frame is the ping's answer.
        assert await peer.recv() == PingPongReply(timestamp=1)
        await peer.send(ResponseRequired(response_id=1, transcript=transcript[:2]))
        first, last = await peer.recv_many(2)
    assert first == Response(response_id=1, content="2 turns, last one")
    assert last == Response(response_id=1, content="", content_complete=True)


async def test_session_methods_send_every_server_event(adapter: str) -> None:
    llm = LLMServer()

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        await session.tool_call("lookup", {"q": "x"}, tool_call_id="t1")
        await session.tool_result("t1", "found")
        await session.send_metadata({"step": 2})
        await session.update_agent(responsiveness=0.5, reminder_max_count=2)
        assert await session.interrupt("one moment", no_interruption_allowed=True) == 1
        yield "ok"
        assert await session.respond("press", digit_to_press="1", no_interruption_allowed=True)
        await session.end_call("bye")
        yield "never sent: the response is complete"

    async with serving(llm, adapter) as base, connect(base) as peer:
        await opening(peer)
        await peer.send(user_says(1, "go"))
        events = await peer.recv_many(8)
        await peer.send(PingPong(timestamp=9))
        # Nothing more for response 1 (no second final chunk, not the yield after end_call).
        assert await peer.recv() == PingPongReply(timestamp=9)
    assert events == [
        ToolCallInvocation(tool_call_id="t1", name="lookup", arguments='{"q":"x"}'),
        ToolCallResult(tool_call_id="t1", content="found"),
        Metadata(metadata={"step": 2}),
        UpdateAgent(agent_config=AgentConfig(responsiveness=0.5, reminder_max_count=2)),
        AgentInterrupt(
            interrupt_id=1,
            content="one moment",
            content_complete=True,
            no_interruption_allowed=True,
        ),
        Response(response_id=1, content="ok"),
        Response(response_id=1, content="press", digit_to_press="1", no_interruption_allowed=True),
        Response(response_id=1, content="bye", content_complete=True, end_call=True),
    ]


# ---------------------------------------------------------------- barge-in


async def test_a_newer_request_cancels_a_generator_blocked_in_an_await(adapter: str) -> None:
    log: list[str] = []
    blocked = asyncio.Event()
    never = asyncio.Event()  # nothing sets it: only cancellation gets the generator out
    llm = LLMServer()

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        rid = request.response_id
        log.append(f"start {rid}")
        try:
            yield f"first {rid}"
            if rid == 1:
                blocked.set()
                await never.wait()
                yield "unreachable"
            yield f"second {rid}"
        except asyncio.CancelledError:
            log.append(f"cancelled {rid}")
            raise
        finally:
            log.append(f"finally {rid}")

    async with serving(llm, adapter) as base, connect(base) as peer:
        await opening(peer)
        await peer.send(user_says(1, "tell me a long story"))
        assert await peer.recv() == Response(response_id=1, content="first 1")
        await asyncio.wait_for(blocked.wait(), SAFETY_TIMEOUT)
        await peer.send(user_says(2, "stop"))
        after = await peer.recv_many(3)
        await peer.send(PingPong(timestamp=3))
        assert await peer.recv() == PingPongReply(timestamp=3)
    # Response 1 got nothing after the barge-in, not even its completion.
    assert after == [
        Response(response_id=2, content="first 2"),
        Response(response_id=2, content="second 2"),
        Response(response_id=2, content="", content_complete=True),
    ]
    # Cancelled inside the await, and its finally ran before response 2 began.
    assert log == ["start 1", "cancelled 1", "finally 1", "start 2", "finally 2"]
    assert not never.is_set()


async def test_a_coroutine_handler_is_cancelled_by_a_newer_request(adapter: str) -> None:
    log: list[str] = []
    blocked = asyncio.Event()
    llm = LLMServer()

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> str:
        if request.response_id == 1:
            blocked.set()
            try:
                await asyncio.Event().wait()
            finally:
                log.append("finally 1")
        log.append(f"answer {request.response_id}")
        return "answer"

    async with serving(llm, adapter) as base, connect(base) as peer:
        await opening(peer)
        await peer.send(user_says(1, "a"))
        await asyncio.wait_for(blocked.wait(), SAFETY_TIMEOUT)
        await peer.send(user_says(2, "b"))
        events = await peer.recv_many(2)
    assert [(e.response_id, e.content_complete) for e in events] == [(2, False), (2, True)]  # type: ignore[union-attr]
    assert log == ["finally 1", "answer 2"]


async def test_old_or_repeated_request_ids_are_ignored(adapter: str) -> None:
    answered: list[int] = []
    llm = LLMServer()

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> str:
        answered.append(request.response_id)
        return "x"

    async with serving(llm, adapter) as base, connect(base) as peer:
        await opening(peer)
        await peer.send(user_says(3, "a"))
        assert [e.response_id for e in await peer.recv_many(2)] == [3, 3]  # type: ignore[union-attr]
        await peer.send(user_says(3, "again"))
        await peer.send(user_says(2, "older"))
        await peer.send(PingPong(timestamp=1))
        assert await peer.recv() == PingPongReply(timestamp=1)
    assert answered == [3]


# ---------------------------------------------------------------- failures in user code


async def test_a_raising_response_handler_is_logged_with_the_call_id_and_closes_cleanly(
    adapter: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm = LLMServer()

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        yield "partial"
        raise KeyError("boom")

    with caplog.at_level(logging.ERROR, logger="aioretell.llm"):
        async with serving(llm, adapter) as base, connect(base, "call_oops") as peer:
            await opening(peer)
            await peer.send(user_says(1, "hi"))
            assert await peer.recv() == Response(response_id=1, content="partial")
            assert await peer.close_code() == 1011
    [record] = [r for r in caplog.records if r.name == "aioretell.llm"]
    assert "call_oops" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)
    assert not llm.sessions


async def test_a_raising_on_call_is_logged_and_closes_cleanly(
    adapter: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm = echo_server()

    @llm.on_call
    async def call(session: LLMSession) -> str:
        raise RuntimeError("setup failed")

    with caplog.at_level(logging.ERROR, logger="aioretell.llm"):
        async with serving(llm, adapter) as base, connect(base, "call_setup") as peer:
            assert isinstance(await peer.recv(), ConfigEvent)
            assert await peer.close_code() == 1011
    assert any("call_setup" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (42, TypeError),
        (Response(response_id=1, content=5), ValueError),  # type: ignore[arg-type]
        (Response(response_id=7, content="wrong id"), ValueError),
    ],
)
async def test_a_wrong_chunk_from_the_handler_is_refused_and_closes(
    adapter: str, caplog: pytest.LogCaptureFixture, bad: object, error: type[Exception]
) -> None:
    llm = LLMServer()

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[object]:
        yield bad

    with caplog.at_level(logging.ERROR, logger="aioretell.llm"):
        async with serving(llm, adapter) as base, connect(base) as peer:
            await opening(peer)
            await peer.send(user_says(1, "hi"))
            # Nothing malformed reaches the wire; the call is closed instead.
            assert await peer.close_code() == 1011
    [record] = [r for r in caplog.records if r.name == "aioretell.llm"]
    assert record.exc_info is not None and isinstance(record.exc_info[1], error)


async def test_the_peer_hanging_up_cancels_a_running_generator(adapter: str) -> None:
    llm, blocked, log = stuck_server()
    async with serving(llm, adapter) as base:
        async with connect(base) as peer:
            await answer_stuck(peer, blocked)
        # The client is gone; the session ends and its generator is cancelled.
        for session in llm.sessions:
            await asyncio.wait_for(session.wait_closed(), SAFETY_TIMEOUT)
    assert log == ["finally"]
    assert not llm.sessions


# ---------------------------------------------------------------- malformed frames from Retell


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"no_type": 1}',
        '{"interaction_type": 7}',
        '{"interaction_type": "ping_pong", "timestamp": "soon"}',
        '{"interaction_type": "response_required", "response_id": "1", "transcript": []}',
        '{"interaction_type": "update_only", "transcript": [{"role": "user"}]}',
        '{"interaction_type": "brand_new_event", "payload": {"x": 1}}',
    ],
)
async def test_bad_or_unknown_frames_from_retell_are_skipped(
    adapter: str, frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="aioretell.llm"):
        async with serving(echo_server(), adapter) as base, connect(base, "call_bad") as peer:
            await opening(peer)
            await peer.send_raw(frame)
            # The call goes on: the next ping and request are answered as usual.
            await peer.send(PingPong(timestamp=2))
            assert await peer.recv() == PingPongReply(timestamp=2)
            await peer.send(user_says(1, "still here"))
            assert [e.content for e in await peer.recv_many(3)] == [  # type: ignore[union-attr]
                "you said: ",
                "still here",
                "",
            ]
    assert any("call_bad" in r.getMessage() for r in caplog.records)


async def test_unknown_fields_are_ignored(adapter: str) -> None:
    async with serving(echo_server(), adapter) as base, connect(base) as peer:
        await opening(peer)
        await peer.send_raw(
            json.dumps(
                {
                    "interaction_type": "response_required",
                    "response_id": 1,
                    "new_field": {"a": 1},
                    "transcript": [
                        {"role": "user", "content": "hey", "words": [], "extra": True},
                    ],
                    "transcript_with_tool_calls": [
                        {"role": "tool_call_invocation", "tool_call_id": "t", "name": "n"},
                        {"role": "user", "content": "hey"},
                    ],
                }
            )
        )
        assert [e.content for e in await peer.recv_many(3)] == ["you said: ", "hey", ""]  # type: ignore[union-attr]


# ---------------------------------------------------------------- a silent peer


async def test_a_peer_that_stops_pinging_is_closed(
    adapter: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm = echo_server(config=LLMConfig(auto_reconnect=True), ping_timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="aioretell.llm"):
        async with serving(llm, adapter) as base, connect(base, "call_quiet") as peer:
            await opening(peer)
            # Send nothing: the watchdog ends the call with "going away".
            assert await peer.close_code() == 1001
    assert any("call_quiet" in r.getMessage() for r in caplog.records)


async def test_without_auto_reconnect_silence_is_not_a_timeout(adapter: str) -> None:
    llm = echo_server(config=LLMConfig(auto_reconnect=False), ping_timeout=0.05)
    async with serving(llm, adapter) as base, connect(base) as peer:
        await opening(peer)
        [session] = llm.sessions
        await asyncio.sleep(0.2)  # several timeouts' worth of silence
        assert not session.closed
        await peer.send(user_says(1, "still on"))
        assert len(await peer.recv_many(3)) == 3


# ---------------------------------------------------------------- who may connect


async def test_a_secret_in_the_path_or_query_is_required(adapter: str) -> None:
    llm = echo_server(secret="s3cret")
    async with serving(llm, adapter) as base:
        async with connect(f"{base}/s3cret") as peer:
            await opening(peer)
        async with connect(base, "call_1?secret=s3cret") as peer:
            await opening(peer)
        for url, call in [(base, "call_1"), (f"{base}/wrong", "call_1"), (base, "c?secret=no")]:
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                async with connect(url, call):
                    pass
            assert caught.value.status == 403


async def test_without_a_secret_the_secret_route_does_not_exist(adapter: str) -> None:
    async with serving(echo_server(), adapter) as base:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with connect(f"{base}/anything"):
                pass


# ---------------------------------------------------------------- shutdown


async def test_shutdown_closes_calls_left_open_after_the_grace_period(adapter: str) -> None:
    llm, blocked, log = stuck_server()
    async with serving(llm, adapter) as base:
        async with connect(base) as peer:
            await answer_stuck(peer, blocked)
            # Retell keeps reading while the server shuts down (and answers its close).
            shutdown = asyncio.create_task(llm.shutdown(timeout=0.05))
            assert await peer.close_code() == 1001
            await asyncio.wait_for(shutdown, SAFETY_TIMEOUT)
        assert log == ["finally"]
        assert not llm.sessions
        # New calls are refused from now on.
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with connect(base, "call_2"):
                pass


async def test_shutdown_lets_calls_that_end_in_time_finish(adapter: str) -> None:
    llm = echo_server()
    async with serving(llm, adapter) as base:
        async with connect(base) as peer:
            await opening(peer)
            shutdown = asyncio.create_task(llm.shutdown(timeout=SAFETY_TIMEOUT))
            await asyncio.sleep(0)
            assert not shutdown.done()
            # The call still works while the server drains.
            await peer.send(user_says(1, "last words"))
            assert len(await peer.recv_many(3)) == 3
        await asyncio.wait_for(shutdown, SAFETY_TIMEOUT)
    assert not llm.sessions


async def test_stopping_the_server_ends_open_calls_and_cancels_their_generators(
    adapter: str,
) -> None:
    llm, blocked, log = stuck_server()
    async with serving(llm, adapter) as base, connect(base) as peer:
        await answer_stuck(peer, blocked)
        stopping = asyncio.create_task(base.stop())
        # aiohttp stops reading sockets before its shutdown hook, which closes calls at once
        # with "going away"; uvicorn closes them itself with "service restart".
        assert await peer.close_code() == {"aiohttp": 1001, "fastapi": 1012}[adapter]
        await asyncio.wait_for(stopping, SAFETY_TIMEOUT)
    assert log == ["finally"]
    assert not llm.sessions
    assert not llm.accepting


async def test_transfer_and_end_call_outside_an_open_response_use_agent_interrupt(
    adapter: str,
) -> None:
    llm = LLMServer()

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        await session.transfer("+14155550100", "Connecting you")
        # The response is finished, so these speak through agent_interrupt.
        await session.transfer("+14155550101")
        await session.end_call("Bye")
        yield "never sent: the generator is closed here, its response being complete"
        raise AssertionError("not reached")

    async with serving(llm, adapter) as base, connect(base) as peer:
        await opening(peer)
        await peer.send(user_says(1, "a human please"))
        events = await peer.recv_many(3)
        await peer.send(PingPong(timestamp=4))
        assert await peer.recv() == PingPongReply(timestamp=4)
    assert events == [
        Response(
            response_id=1,
            content="Connecting you",
            content_complete=True,
            transfer_number="+14155550100",
        ),
        AgentInterrupt(
            interrupt_id=1, content="", content_complete=True, transfer_number="+14155550101"
        ),
        AgentInterrupt(interrupt_id=2, content="Bye", content_complete=True, end_call=True),
    ]
