"""CallState (sans-I/O) and LLMSession over an in-memory socket: the parts whose timing a real
socket cannot pin down (a full send queue, frames queued before they went stale)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from aioretell.llm import (
    CallState,
    ConfigEvent,
    LLMConfig,
    LLMServer,
    LLMSession,
    PingPong,
    Response,
    ResponseRequired,
    ServerEvent,
    UpdateOnly,
    Utterance,
    decode_server_event,
    encode_retell_event,
)


def request(response_id: int, text: str = "hi") -> ResponseRequired:
    return ResponseRequired(
        response_id=response_id, transcript=[Utterance(role="user", content=text)]
    )


class MemorySocket:
    """A Socket whose sends can be held back, so the send queue fills up."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent: list[ServerEvent] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.closed_with: int | None = None

    def push(self, event: ResponseRequired | PingPong | UpdateOnly | None) -> None:
        self.inbox.put_nowait(None if event is None else encode_retell_event(event))

    async def receive(self) -> bytes | None:
        return await self.inbox.get()

    async def send(self, frame: bytes) -> None:
        await self.gate.wait()
        self.sent.append(decode_server_event(frame))

    async def close(self, code: int) -> None:
        self.closed_with = code


async def settle() -> None:
    """Let every runnable task run until all are waiting (no clock involved)."""
    for _ in range(100):
        await asyncio.sleep(0)


# ---------------------------------------------------------------- CallState


def test_call_state_sends_nothing_for_a_stale_or_finished_response() -> None:
    state = CallState("call_1")
    assert state.response(0, "hello") is not None  # the begin message is open at first
    state.receive(encode_retell_event(request(2)))
    assert state.response_id == 2 and state.is_stale(0) and not state.is_open(0)
    assert state.response(0, "late") is None
    assert state.response_event(Response(response_id=0, content="late")) is None
    assert state.response(2, "a") is not None
    assert state.response(2, "", complete=True) is not None
    assert not state.is_open(2) and not state.is_stale(2)
    assert state.response(2, "after the end") is None
    # An older or repeated id changes nothing.
    state.receive(encode_retell_event(request(1)))
    state.receive(encode_retell_event(request(2)))
    assert state.response_id == 2 and not state.is_open(2)
    state.receive(encode_retell_event(request(3)))
    assert state.is_open(3)


def test_call_state_numbers_interrupts_and_keeps_the_transcript() -> None:
    from aioretell.llm import AgentInterrupt

    state = CallState("c")
    first = state.interrupt(AgentInterrupt(interrupt_id=0, content="a"))
    second = state.interrupt(AgentInterrupt(interrupt_id=0, content="b"))
    assert (first.interrupt_id, second.interrupt_id) == (1, 2)
    state.receive(encode_retell_event(UpdateOnly(transcript=[Utterance(role="user", content="x")])))
    assert [u.content for u in state.transcript] == ["x"]


# ---------------------------------------------------------------- LLMSession


def make_session(
    respond: object, *, send_queue_size: int = 64, config: LLMConfig | None = None
) -> LLMSession:
    return LLMSession(
        "call_mem",
        config=config,
        on_call=None,
        on_response=respond,  # type: ignore[arg-type]
        send_queue_size=send_queue_size,
    )


async def test_frames_queued_for_a_response_that_goes_stale_are_never_sent() -> None:
    produced: list[int] = []
    started = asyncio.Event()

    async def respond(req: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        for i in range(3):
            produced.append(req.response_id)
            yield f"{req.response_id}.{i}"
        if req.response_id == 2:
            started.set()

    socket = MemorySocket()
    socket.gate.clear()  # the peer is not reading: frames pile up in the send queue
    session = make_session(respond, config=LLMConfig())
    serving = asyncio.create_task(session.serve(socket))
    socket.push(request(1))
    await settle()
    assert produced == [1, 1, 1]  # response 1 finished while it was current
    socket.push(request(2))
    await asyncio.wait_for(started.wait(), 10)
    socket.gate.set()
    await settle()
    socket.push(None)
    await asyncio.wait_for(serving, 10)
    assert isinstance(socket.sent[0], ConfigEvent)
    sent_ids = [e.response_id for e in socket.sent[1:]]  # type: ignore[union-attr]
    # Neither the begin message (0) nor anything of response 1 reached the wire.
    assert sent_ids == [2, 2, 2, 2]
    assert socket.sent[-1] == Response(response_id=2, content="", content_complete=True)


async def test_a_full_send_queue_holds_the_generator_back() -> None:
    produced = 0

    async def respond(req: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        nonlocal produced
        for i in range(100):
            produced += 1
            yield str(i)

    socket = MemorySocket()
    socket.gate.clear()
    session = make_session(respond, send_queue_size=2)
    serving = asyncio.create_task(session.serve(socket))
    socket.push(request(1))
    await settle()
    # One chunk is in the writer's hands, 2 are queued and one more is produced and waiting
    # for room: nothing grows without bound.
    assert produced <= 4
    socket.gate.set()
    await settle()
    socket.push(None)
    await asyncio.wait_for(serving, 10)
    assert produced == 100
    # (The request was read before the begin message was produced, so there is none.)
    assert [e.content for e in socket.sent] == [*map(str, range(100)), ""]  # type: ignore[union-attr]


async def test_session_close_from_a_handler_closes_the_socket_normally() -> None:
    async def respond(req: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        yield "bye"
        session.close()
        await asyncio.Event().wait()

    socket = MemorySocket()
    session = make_session(respond)
    serving = asyncio.create_task(session.serve(socket))
    socket.push(request(1))
    await asyncio.wait_for(serving, 10)
    assert socket.closed_with == 1000
    assert session.closed


async def test_call_details_without_asking_for_them_raises() -> None:
    session = make_session(None, config=LLMConfig(call_details=False))
    with pytest.raises(RuntimeError, match="call_details=True"):
        await session.call_details()


async def test_sending_outside_a_running_connection_raises() -> None:
    session = make_session(None)
    with pytest.raises(RuntimeError, match="not running"):
        await session.interrupt("hello")


async def test_session_methods_refuse_bad_arguments_before_sending() -> None:
    socket = MemorySocket()
    session = make_session(None)
    serving = asyncio.create_task(session.serve(socket))
    await settle()
    with pytest.raises(TypeError, match="content"):
        await session.respond(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="content"):
        await session.interrupt(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="number"):
        await session.transfer("")
    with pytest.raises(ValueError, match="tool_call_result"):
        await session.tool_result("t", 5)  # type: ignore[arg-type]
    socket.push(None)
    await asyncio.wait_for(serving, 10)
    assert [type(e) for e in socket.sent] == [Response]  # only the begin message


# ---------------------------------------------------------------- LLMServer arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"config": {"auto_reconnect": True}}, TypeError, "config"),
        ({"begin_message": 3}, TypeError, "begin_message"),
        ({"secret": ""}, ValueError, "secret"),
        ({"secret": "a/b"}, ValueError, "secret"),
        ({"send_queue_size": 0}, ValueError, "send_queue_size"),
        ({"send_queue_size": 1.5}, TypeError, "send_queue_size"),
        ({"ping_timeout": -1}, ValueError, "ping_timeout"),
        ({"ping_timeout": float("nan")}, ValueError, "ping_timeout"),
        ({"shutdown_timeout": float("inf")}, ValueError, "shutdown_timeout"),
        ({"shutdown_timeout": None}, ValueError, "shutdown_timeout"),
    ],
)
def test_llm_server_refuses_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        LLMServer(**kwargs)  # type: ignore[arg-type]


def test_add_routes_refuses_a_relative_path() -> None:
    from aiohttp import web

    with pytest.raises(ValueError, match="path"):
        LLMServer().add_routes(web.Application(), path="llm")


def test_importing_aioretell_does_not_import_the_llm_server_or_starlette() -> None:
    code = (
        "import sys, aioretell, aioretell.llm;"
        "print('starlette' in sys.modules, 'fastapi' in sys.modules);"
        "del sys.modules['aioretell.llm'];"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
    out = subprocess.run(
        [sys.executable, "-c", "import sys, aioretell; print('aioretell.llm' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "False"


async def test_a_handler_that_outlives_its_request_cannot_send_into_the_next_one() -> None:
    import anyio

    gate = asyncio.Event()
    late: list[bool] = []

    async def respond(req: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        if req.response_id == 1:
            # Shielded: the newer request cannot cancel this part; what it sends is refused.
            with anyio.CancelScope(shield=True):
                await gate.wait()
                late.append(await session.respond("late"))
                late.append(await session.respond("", complete=True, end_call=True))
        yield f"answer {req.response_id}"

    socket = MemorySocket()
    session = make_session(respond)
    serving = asyncio.create_task(session.serve(socket))
    await settle()
    socket.push(request(1))
    await settle()
    socket.push(request(2))
    await settle()
    gate.set()
    await settle()
    socket.push(None)
    await asyncio.wait_for(serving, 10)
    assert late == [False, False]
    assert [(e.response_id, e.content) for e in socket.sent] == [  # type: ignore[union-attr]
        (0, ""),
        (2, "answer 2"),
        (2, ""),
    ]


async def test_on_call_can_stream_the_begin_message_itself() -> None:
    async def on_call(session: LLMSession) -> None:
        assert await session.respond("Hello, ")
        assert await session.respond("world.", complete=True)
        assert not await session.respond("too late")

    socket = MemorySocket()
    session = LLMSession(
        "call_mem", config=None, on_call=on_call, on_response=None, send_queue_size=8
    )
    serving = asyncio.create_task(session.serve(socket))
    await settle()
    socket.push(None)
    await asyncio.wait_for(serving, 10)
    assert socket.sent == [
        Response(response_id=0, content="Hello, "),
        Response(response_id=0, content="world.", content_complete=True),
    ]
