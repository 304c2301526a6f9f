"""The ASGI adapter's own surface: ``asgi_app`` (with its lifespan) under uvicorn, ``routes`` and
``add_routes`` on plain Starlette. Protocol behaviour under FastAPI is in test_server.py, which
runs every protocol test against both adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from starlette.applications import Starlette

from aioretell.llm import (
    ConfigEvent,
    LLMServer,
    LLMSession,
    Response,
    ResponseRequired,
    Utterance,
)
from aioretell.llm.asgi import add_routes, asgi_app, routes

from .server_harness import SAFETY_TIMEOUT, connect, uvicorn_serving


def user_says(text: str) -> ResponseRequired:
    return ResponseRequired(response_id=1, transcript=[Utterance(role="user", content=text)])


async def test_asgi_app_under_uvicorn_ends_open_calls_at_shutdown() -> None:
    log: list[str] = []
    blocked = asyncio.Event()
    llm = LLMServer(begin_message="hi")

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        try:
            yield "thinking"
            blocked.set()
            await asyncio.Event().wait()
            yield "unreachable"
        finally:
            log.append("finally")

    async with (
        uvicorn_serving(asgi_app(llm, "/ws")) as root,
        connect(f"{root}/ws") as peer,
    ):
        config, begin = await peer.recv_many(2)
        assert isinstance(config, ConfigEvent)
        assert begin == Response(response_id=0, content="hi", content_complete=True)
        await peer.send(user_says("?"))
        assert await peer.recv() == Response(response_id=1, content="thinking")
        await asyncio.wait_for(blocked.wait(), SAFETY_TIMEOUT)
        stopping = asyncio.create_task(root.stop())
        # The server going away closes the call, and the generator is cancelled.
        assert await peer.close_code() == 1012  # uvicorn's "service restart"
        await asyncio.wait_for(stopping, SAFETY_TIMEOUT)
    assert log == ["finally"]
    assert not llm.sessions
    assert not llm.accepting  # the app's lifespan ran llm.shutdown()


@pytest.mark.parametrize("how", ["routes", "add_routes"])
async def test_plain_starlette_serves_the_socket(how: str) -> None:
    llm = LLMServer(begin_message="hello", secret="tok")

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> str:
        return request.transcript[-1].content.upper()

    if how == "routes":
        app = Starlette(routes=routes(llm, "/llm"))
    else:
        app = Starlette()
        add_routes(app, llm, "/llm/")
    async with uvicorn_serving(app) as root:
        async with connect(f"{root}/llm/tok", "call_9") as peer:
            config, begin = await peer.recv_many(2)
            assert isinstance(config, ConfigEvent)
            assert begin == Response(response_id=0, content="hello", content_complete=True)
            await peer.send(user_says("shout"))
            assert await peer.recv_many(2) == [
                Response(response_id=1, content="SHOUT"),
                Response(response_id=1, content="", content_complete=True),
            ]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with connect(f"{root}/llm", "call_9"):
                pass
        assert refused.value.status == 403


def test_routes_refuses_a_relative_path() -> None:
    with pytest.raises(ValueError, match="path"):
        routes(LLMServer(), "llm")
