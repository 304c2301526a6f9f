"""Serve an :class:`~aioretell.llm.LLMServer` from Starlette or FastAPI (extra ``aioretell[asgi]``).

::

    from contextlib import asynccontextmanager, suppress
    from fastapi import FastAPI
    from aioretell.llm.asgi import add_routes

    @asynccontextmanager
    async def lifespan(app):
        yield
        await llm.shutdown()          # finish or close open calls

    app = FastAPI(lifespan=lifespan)
    add_routes(app, llm, path="/llm-websocket")

:func:`asgi_app` builds a standalone Starlette app with the shutdown already wired. A refused
connection (wrong secret, bad call id, shutting down) is closed before the handshake completes,
which ASGI servers answer with HTTP 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .server import LLMServer, _normalized, logger

__all__ = ["add_routes", "asgi_app", "routes"]

_POLICY_VIOLATION = 1008
_TRY_AGAIN_LATER = 1013


def routes(llm: LLMServer, path: str = "/llm-websocket") -> list[BaseRoute]:
    """The WebSocket routes serving ``llm`` at ``{path}/{call_id}`` (and
    ``{path}/{secret}/{call_id}`` when it has a secret), for ``Starlette(routes=...)``."""
    path = _normalized(path)

    async def endpoint(websocket: WebSocket) -> None:
        await _serve(llm, websocket)

    found: list[BaseRoute] = [WebSocketRoute(path + "/{call_id}", endpoint)]
    if llm.requires_secret:
        found.append(WebSocketRoute(path + "/{secret}/{call_id}", endpoint))
    return found


def add_routes(app: Starlette, llm: LLMServer, path: str = "/llm-websocket") -> None:
    """Add :func:`routes` to a Starlette or FastAPI ``app``. Call ``await llm.shutdown()`` in
    the app's lifespan to finish open calls on shutdown."""
    app.router.routes.extend(routes(llm, path))


def asgi_app(llm: LLMServer, path: str = "/llm-websocket") -> Starlette:
    """A standalone Starlette app serving ``llm``, shutting it down with the app."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await llm.shutdown()

    return Starlette(routes=routes(llm, path), lifespan=lifespan)


async def _serve(llm: LLMServer, websocket: WebSocket) -> None:
    call_id = str(websocket.path_params["call_id"])
    secret = websocket.path_params.get("secret")
    if not llm.authorized(secret, websocket.query_params.get("secret")):
        # Never log the path: it may hold the secret.
        logger.warning("refused a custom-LLM connection without the right secret")
        await websocket.close(_POLICY_VIOLATION)
        return
    if not llm.valid_call_id(call_id):
        await websocket.close(_POLICY_VIOLATION)
        return
    if not llm.accepting:
        await websocket.close(_TRY_AGAIN_LATER)
        return
    await websocket.accept()
    socket = _StarletteSocket(websocket)
    await llm.serve(socket, call_id)
    await socket.close(1000)


class _StarletteSocket:
    """:class:`~aioretell.llm.session.Socket` over a Starlette ``WebSocket``."""

    __slots__ = ("_ws",)

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def receive(self) -> str | bytes | None:
        if self._ws.client_state is WebSocketState.DISCONNECTED:
            return None
        message: dict[str, Any] = dict(await self._ws.receive())
        if message["type"] != "websocket.receive":
            return None  # websocket.disconnect
        text = message.get("text")
        if text is not None:
            return str(text)
        data = message.get("bytes")
        return bytes(data) if data is not None else None

    async def send(self, frame: bytes) -> None:
        try:
            await self._ws.send({"type": "websocket.send", "text": frame.decode()})
        except WebSocketDisconnect as exc:
            raise ConnectionResetError(f"peer closed the socket ({exc.code})") from None

    async def close(self, code: int) -> None:
        if (
            self._ws.application_state is WebSocketState.CONNECTED
            and self._ws.client_state is WebSocketState.CONNECTED
        ):
            # Already gone: nothing left to close.
            with suppress(WebSocketDisconnect, OSError, RuntimeError):
                await self._ws.close(code)
