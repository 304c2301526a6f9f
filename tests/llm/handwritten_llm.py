"""A small hand-written custom-LLM server (aiohttp.web, raw JSON) for testing the Retell side.

Deliberately independent of ``aioretell.llm``'s server code, and able to misbehave on
purpose: refuse the upgrade, send invalid JSON, crash, close with an error code, stop echoing
pings, keep streaming superseded answers.

By default it is a well-behaved echo agent: ``config`` (auto_reconnect + call_details), a
begin message, then for each request an answer "You said: <last user words>" in ``chunks``
pieces, each piece checked against the newest ``response_id`` before it is sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import WSMsgType, web

from aioretell._serving import serve_app

JSON = dict[str, Any]


@dataclass
class Behavior:
    config: JSON | None = field(
        default_factory=lambda: {"auto_reconnect": True, "call_details": True}
    )
    begin: str = "Hello, this is the test agent."
    chunks: int = 3
    #: Echo only the first N pings (``None``: all).
    answer_pings: int | None = None
    #: Answer a user turn containing this with ``end_call`` / a transfer.
    end_call_on: str | None = None
    transfer_on: str | None = None
    #: A user turn containing this gets one chunk, then the answer waits until superseded.
    hold_on: str = "slow"
    #: Bad server: once it has started answering the newer request, send this many more
    #: chunks of a held (superseded) answer.
    stale_after_newer: int = 0
    #: Send this many chunks of a held answer after the newer request came, before answering
    #: the newer one (they cross nothing, but Retell cannot prove the server knew).
    late_before_newer: int = 0
    #: Answer with this HTTP status instead of upgrading.
    refuse_status: int | None = None
    #: At this response_id, misbehave: "invalid_json", "crash", "close_1011", "close_1000".
    fail_at: int | None = None
    failure: str = "crash"
    #: Extra raw frames sent right after the begin message.
    extra_frames: list[str] = field(default_factory=list)


class HandwrittenLLM:
    """``async with HandwrittenLLM(Behavior(...)) as llm:`` serves on loopback; ``llm.url`` is
    the ``llm_websocket_url``; ``llm.received[call_id]`` holds what Retell sent, decoded."""

    def __init__(self, behavior: Behavior | None = None) -> None:
        self.behavior = behavior or Behavior()
        self.received: dict[str, list[JSON]] = {}
        self.connections = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> HandwrittenLLM:
        app = web.Application()
        app.router.add_get("/llm/{call_id}", self._handle)
        self._runner, host, port = await serve_app(app, "127.0.0.1", 0, shutdown_timeout=0.5)
        self.url = f"ws://{host}:{port}/llm"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def types(self, call_id: str) -> list[str]:
        """The ``interaction_type`` of everything Retell sent on that call, pings left out."""
        return [
            e["interaction_type"]
            for e in self.received.get(call_id, [])
            if e["interaction_type"] != "ping_pong"
        ]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        b = self.behavior
        if b.refuse_status is not None:
            return web.Response(status=b.refuse_status, text="no")
        call_id = request.match_info["call_id"]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        received = self.received.setdefault(call_id, [])
        newest = 0
        superseded: dict[int, asyncio.Event] = {}
        held: list[int] = []
        pings = 0

        async def send(event: JSON) -> None:
            await ws.send_str(json.dumps(event))

        async def chunk(rid: int, content: str, complete: bool, **extra: Any) -> None:
            await send(
                {
                    "response_type": "response",
                    "response_id": rid,
                    "content": content,
                    "content_complete": complete,
                    **extra,
                }
            )

        async def answer(rid: int, text: str, superseded_ids: list[int]) -> None:
            if b.hold_on and b.hold_on in text:
                held.append(rid)
                await chunk(rid, "Let me think", False)
                await superseded[rid].wait()
                return
            extra: JSON = {}
            if b.end_call_on and b.end_call_on in text:
                extra["end_call"] = True
            if b.transfer_on and b.transfer_on in text:
                extra["transfer_number"] = "+14155550199"
            words = f"You said: {text}".split(" ")
            size = max(1, -(-len(words) // b.chunks))
            pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
            for index, piece in enumerate(pieces):
                if newest != rid:
                    return  # superseded: stop
                last = index == len(pieces) - 1
                await chunk(
                    rid, piece if index == 0 else " " + piece, last, **(extra if last else {})
                )
                if index == 0:
                    for old in superseded_ids:
                        for _ in range(b.stale_after_newer):
                            await chunk(old, " more", False)
                await asyncio.sleep(0)

        if b.config is not None:
            await send({"response_type": "config", "config": b.config})
        await chunk(0, b.begin, True)
        for frame in b.extra_frames:
            await ws.send_str(frame)
        async with anyio.create_task_group() as group:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                event = json.loads(message.data)
                received.append(event)
                kind = event["interaction_type"]
                if kind == "ping_pong":
                    pings += 1
                    if b.answer_pings is None or pings <= b.answer_pings:
                        await send({"response_type": "ping_pong", "timestamp": event["timestamp"]})
                    continue
                if kind not in ("response_required", "reminder_required"):
                    continue
                rid = event["response_id"]
                if rid == b.fail_at:
                    if b.failure == "invalid_json":
                        await ws.send_str("{this is not json")
                        continue
                    if b.failure == "close_1011":
                        await ws.close(code=1011, message=b"handler failed")
                        break
                    if b.failure == "close_1000":
                        await ws.close(code=1000)
                        break
                    raise RuntimeError("the LLM server crashed")
                newest = rid
                for old in list(superseded):
                    superseded[old].set()
                for old in held:
                    for _ in range(b.late_before_newer):
                        await chunk(old, " late", False)
                superseded_ids = held[:]
                held.clear()
                superseded[rid] = asyncio.Event()
                transcript = event["transcript"]
                text = transcript[-1]["content"] if transcript else ""
                if kind == "reminder_required":
                    text = "are you still there?"
                group.start_soon(answer, rid, text, superseded_ids)
            group.cancel_scope.cancel()
        return ws


@asynccontextmanager
async def handwritten_llm(**behavior: Any) -> AsyncIterator[HandwrittenLLM]:
    async with HandwrittenLLM(Behavior(**behavior)) as llm:
        yield llm
