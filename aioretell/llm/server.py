"""``LLMServer``: handlers for Retell's custom-LLM socket, served by aiohttp.web.

::

    from aioretell.llm import LLMConfig, LLMServer, LLMSession, ResponseRequired

    llm = LLMServer(config=LLMConfig(call_details=True))

    @llm.on_call
    async def call(session: LLMSession) -> str:
        return "Hello, how can I help?"           # the begin message

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession):
        yield "You said: " + request.transcript[-1].content

    web.run_app(llm.app())                        # or llm.add_routes(app)

The same server runs under Starlette/FastAPI through :mod:`aioretell.llm.asgi`.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, TypeVar

import anyio
from aiohttp import WSMsgType, web

from .events import LLMConfig
from .session import (
    CLOSE_GOING_AWAY,
    CallHandler,
    LLMSession,
    ResponseHandler,
    Socket,
)

__all__ = ["LLMServer"]

logger = logging.getLogger("aioretell.llm")

_CallHandlerT = TypeVar("_CallHandlerT", bound=CallHandler)
_ResponseHandlerT = TypeVar("_ResponseHandlerT", bound=ResponseHandler)

_MAX_CALL_ID = 256


class LLMServer:
    """The user's handlers plus everything the protocol needs around them, for every call.

    ``config``: sent first on every connection (``None`` sends none). ``begin_message``: the
    agent's opening line when there is no :meth:`on_call` handler (empty = wait for the user).
    ``secret``: when set, only connections carrying it (as the path segment before the call id,
    ``{path}/{secret}/{call_id}``, or as ``?secret=``) are accepted. ``send_queue_size``: frames
    queued per call before a producer waits. ``ping_timeout``: with ``auto_reconnect`` on, the
    seconds without any frame from Retell after which a call's socket is closed (``None``:
    never). ``shutdown_timeout``: how long :meth:`shutdown` lets open calls finish.
    """

    def __init__(
        self,
        *,
        config: LLMConfig | None = None,
        begin_message: str = "",
        secret: str | None = None,
        send_queue_size: int = 64,
        ping_timeout: float | None = 10.0,
        shutdown_timeout: float = 10.0,
    ) -> None:
        if config is not None and not isinstance(config, LLMConfig):
            raise TypeError(f"config must be an LLMConfig, not {type(config).__name__}")
        if not isinstance(begin_message, str):
            raise TypeError(f"begin_message must be a str, not {type(begin_message).__name__}")
        if secret is not None and (not isinstance(secret, str) or not secret or "/" in secret):
            raise ValueError("secret must be a non-empty string without '/'")
        if isinstance(send_queue_size, bool) or not isinstance(send_queue_size, int):
            raise TypeError("send_queue_size must be an int")
        if send_queue_size < 1:
            raise ValueError(f"send_queue_size must be at least 1, got {send_queue_size}")
        for name, value in (("ping_timeout", ping_timeout), ("shutdown_timeout", shutdown_timeout)):
            if value is None and name == "ping_timeout":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
            if value == float("inf"):
                raise ValueError(f"{name} must be finite")
        self.config = LLMConfig() if config is None else config
        self.begin_message = begin_message
        self._secret = secret
        self._send_queue_size = send_queue_size
        self._ping_timeout = ping_timeout
        self._shutdown_timeout = shutdown_timeout
        self._on_call: CallHandler | None = None
        self._on_response: ResponseHandler | None = None
        self._sessions: set[LLMSession] = set()
        self._accepting = True

    def __repr__(self) -> str:
        return f"<LLMServer calls={len(self._sessions)} accepting={self._accepting}>"

    # ------------------------------------------------------------ handlers

    def on_call(self, handler: _CallHandlerT) -> _CallHandlerT:
        """Register ``async def handler(session) -> str | None``, run when a call connects.

        Its return value is the begin message (``None`` or ``""``: wait for the user). Requests
        that arrive meanwhile are answered after it returns; the begin message is dropped if one
        arrived first.
        """
        self._on_call = handler
        return handler

    def on_response(self, handler: _ResponseHandlerT) -> _ResponseHandlerT:
        """Register the response handler: an async generator ``(request, session)`` yielding
        ``str`` chunks (or :class:`~aioretell.llm.Response`), or a coroutine function returning
        one. A newer request cancels it wherever it is waiting; the last chunk is marked
        ``content_complete`` by the library. Once the response is complete (a chunk with
        ``content_complete``, ``session.end_call``, ``session.transfer``) the generator is
        closed at its next ``yield``."""
        self._on_response = handler
        return handler

    # ------------------------------------------------------------ serving (any transport)

    @property
    def sessions(self) -> frozenset[LLMSession]:
        """The calls connected right now."""
        return frozenset(self._sessions)

    @property
    def accepting(self) -> bool:
        """False once :meth:`shutdown` has begun: new connections are refused."""
        return self._accepting

    @property
    def requires_secret(self) -> bool:
        """Whether connections must carry the server's secret."""
        return self._secret is not None

    def authorized(self, path_secret: str | None, query_secret: str | None) -> bool:
        """Whether a connection carrying these secrets may in (constant-time comparison)."""
        if self._secret is None:
            return path_secret is None
        expected = self._secret.encode()
        return any(
            given is not None and hmac.compare_digest(given.encode(), expected)
            for given in (path_secret, query_secret)
        )

    @staticmethod
    def valid_call_id(call_id: str) -> bool:
        return 0 < len(call_id) <= _MAX_CALL_ID and call_id.isprintable()

    async def serve(self, socket: Socket, call_id: str) -> None:
        """Run one call over an accepted ``socket`` until it ends."""
        session = LLMSession(
            call_id,
            config=self.config,
            on_call=self._on_call,
            on_response=self._on_response,
            begin_message=self.begin_message,
            send_queue_size=self._send_queue_size,
            ping_timeout=self._ping_timeout,
        )
        self._sessions.add(session)
        logger.debug("custom-LLM call connected call_id=%s", call_id)
        try:
            await session.serve(socket)
        finally:
            self._sessions.discard(session)
            logger.debug("custom-LLM call ended call_id=%s", call_id)

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - a grace period, not an operation timeout
        """Refuse new calls, let open ones finish for up to ``timeout`` seconds (default
        ``shutdown_timeout``), then end the rest with close code 1001 (Retell reconnects
        elsewhere when ``auto_reconnect`` is on)."""
        self._accepting = False
        timeout = self._shutdown_timeout if timeout is None else timeout
        with anyio.move_on_after(timeout):
            for session in list(self._sessions):
                await session.wait_closed()
        remaining = list(self._sessions)
        if remaining:
            logger.info("closing %d open custom-LLM call(s) at shutdown", len(remaining))
        for session in remaining:
            session.close(CLOSE_GOING_AWAY)
        for session in remaining:
            await session.wait_closed()

    # ------------------------------------------------------------ aiohttp.web

    def add_routes(self, app: web.Application, path: str = "/llm-websocket") -> None:
        """Serve the socket at ``{path}/{call_id}`` (and ``{path}/{secret}/{call_id}`` when a
        secret is set) on ``app``; :meth:`shutdown` runs on the app's shutdown."""
        path = _normalized(path)
        app.router.add_get(path + "/{call_id}", self._aiohttp_handler)
        if self._secret is not None:
            app.router.add_get(path + "/{secret}/{call_id}", self._aiohttp_handler)

        async def on_shutdown(_app: web.Application) -> None:
            # By now aiohttp has stopped reading from every connection (WebSockets included), so
            # a call can no longer hear Retell: close open calls at once (1001) so that Retell
            # reconnects elsewhere instead of waiting for missed pings. To let calls finish,
            # await llm.shutdown() before stopping the app.
            await self.shutdown(timeout=0)

        app.on_shutdown.append(on_shutdown)

    def app(self, path: str = "/llm-websocket") -> web.Application:
        """A standalone aiohttp application serving only this socket."""
        app = web.Application()
        self.add_routes(app, path)
        return app

    async def _aiohttp_handler(self, request: web.Request) -> web.StreamResponse:
        call_id = request.match_info["call_id"]
        if not self.authorized(request.match_info.get("secret"), request.query.get("secret")):
            # Never log the path: it may hold the secret.
            logger.warning("refused a custom-LLM connection without the right secret")
            return web.Response(status=403, text="forbidden\n")
        if not self.valid_call_id(call_id):
            return web.Response(status=400, text="bad call id\n")
        if not self._accepting:
            return web.Response(status=503, text="shutting down\n")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await self.serve(_AiohttpSocket(ws), call_id)
        if not ws.closed:
            await ws.close()
        return ws


def _normalized(path: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    return path.rstrip("/")


class _AiohttpSocket:
    """:class:`~aioretell.llm.session.Socket` over an aiohttp ``WebSocketResponse``."""

    __slots__ = ("_text_frames", "_ws")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        # send_frame (aiohttp >= 3.11) writes the encoded bytes as they are; older aiohttp
        # needs a str.
        self._text_frames = hasattr(ws, "send_frame")

    async def receive(self) -> str | bytes | None:
        msg = await self._ws.receive()
        if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
            data: Any = msg.data
            return data  # type: ignore[no-any-return]
        return None  # CLOSE, CLOSING, CLOSED, ERROR: the peer is gone

    async def send(self, frame: bytes) -> None:
        if self._text_frames:
            await self._ws.send_frame(frame, WSMsgType.TEXT)
        else:  # pragma: no cover - aiohttp < 3.11
            await self._ws.send_str(frame.decode())

    async def close(self, code: int) -> None:
        await self._ws.close(code=code)
