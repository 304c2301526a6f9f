"""Serving an LLMServer on loopback (aiohttp.web or FastAPI under uvicorn) and playing Retell
against it with a real aiohttp WebSocket client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer

from aioretell.llm import (
    LLMServer,
    RetellEvent,
    ServerEvent,
    decode_server_event,
    encode_retell_event,
)

ADAPTERS = ["aiohttp", "fastapi"]

# Only a guard against a hung test, never an assertion about speed.
SAFETY_TIMEOUT = 20.0


class Served(str):
    """The served socket's base URL (``http://127.0.0.1:PORT/path``); ``await stop()`` shuts
    the server down the way its framework does on SIGTERM."""

    stop: Callable[[], Awaitable[None]]


@asynccontextmanager
async def serving(
    llm: LLMServer, adapter: str, path: str = "/llm-websocket"
) -> AsyncIterator[Served]:
    """Serve ``llm`` on 127.0.0.1 under ``adapter`` ("aiohttp" or "fastapi")."""
    if adapter == "aiohttp":
        server = TestServer(llm.app(path), host="127.0.0.1")
        await server.start_server()
        base = Served(server.make_url(path))
        base.stop = server.close
        try:
            yield base
        finally:
            await server.close()
        return
    assert adapter == "fastapi"
    async with _uvicorn(llm, path) as base:
        yield base


@asynccontextmanager
async def _uvicorn(llm: LLMServer, path: str) -> AsyncIterator[Served]:
    from fastapi import FastAPI

    from aioretell.llm.asgi import add_routes

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await llm.shutdown()

    app = FastAPI(lifespan=lifespan)
    add_routes(app, llm, path)
    async with uvicorn_serving(app) as root:
        base = Served(root + path)
        base.stop = root.stop
        yield base


@asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[Served]:
    """Run the ASGI ``app`` under uvicorn on an ephemeral loopback port; yields
    ``http://127.0.0.1:PORT``."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", ws="websockets-sansio", lifespan="on", ws_ping_interval=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def stop() -> None:
        server.should_exit = True
        await task

    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        root = Served(f"http://127.0.0.1:{port}")
        root.stop = stop
        yield root
    finally:
        await stop()
        sock.close()


class RetellPeer:
    """Plays Retell on one connection: sends typed events, decodes what the server sends."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[ServerEvent] = []

    async def send(self, event: RetellEvent) -> None:
        await self.ws.send_str(encode_retell_event(event).decode())

    async def send_raw(self, frame: str) -> None:
        await self.ws.send_str(frame)

    async def recv(self) -> ServerEvent:
        """The next event; fails the test if the server closes instead."""
        msg = await self.ws.receive(timeout=SAFETY_TIMEOUT)
        assert msg.type is WSMsgType.TEXT, f"expected a text frame, got {msg.type!r} {msg.data!r}"
        event = decode_server_event(msg.data)
        self.received.append(event)
        return event

    async def recv_many(self, count: int) -> list[ServerEvent]:
        return [await self.recv() for _ in range(count)]

    async def close_code(self) -> int | None:
        """Read until the server closes; returns its close code. Fails on any data frame."""
        while True:
            msg = await self.ws.receive(timeout=SAFETY_TIMEOUT)
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return self.ws.close_code
            assert msg.type is not WSMsgType.TEXT, f"unexpected frame {msg.data!r}"


@asynccontextmanager
async def connect(base: str, call_id: str = "call_1", **kwargs: Any) -> AsyncIterator[RetellPeer]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{base}/{call_id}", **kwargs) as ws,
    ):
        yield RetellPeer(ws)
