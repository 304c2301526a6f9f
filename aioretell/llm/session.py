"""One call on the custom-LLM socket: a sans-I/O state machine and the session that drives it.

:class:`CallState` knows the protocol and nothing about sockets or tasks: it decodes Retell's
frames, tracks which ``response_id`` is current, and encodes only what may be sent (nothing for a
stale or finished response). :class:`LLMSession` runs one connection on top of it with anyio:
a reader, a writer behind a bounded queue, and one responder that runs the user's handlers, all
in one task group owned by the connection. The transport is anything with the small
:class:`Socket` interface, so the aiohttp and ASGI adapters share every line of this module.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from functools import partial
from typing import Any, Protocol, TypeAlias

import anyio
import anyio.abc
import msgspec
from msgspec import UNSET, UnsetType

from aioretell.types import CallResponse

from .events import (
    AgentConfig,
    AgentInterrupt,
    CallDetails,
    ConfigEvent,
    LLMConfig,
    Metadata,
    PingPong,
    PingPongReply,
    Response,
    ResponseRequired,
    RetellEvent,
    ServerEvent,
    ToolCallInvocation,
    ToolCallResult,
    UnknownEvent,
    UpdateAgent,
    UpdateOnly,
    Utterance,
    decode_retell_event,
    decode_server_event,
    encode_server_event,
)

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_HANDLER_ERROR",
    "CLOSE_NORMAL",
    "CallHandler",
    "CallState",
    "LLMSession",
    "ResponseHandler",
    "Socket",
]

logger = logging.getLogger("aioretell.llm")

#: WebSocket close codes the server uses.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # server shutting down, or Retell went silent
CLOSE_HANDLER_ERROR = 1011  # a handler raised

Chunk: TypeAlias = "str | Response"
#: ``async def on_call(session) -> str | None``: setup; the returned text is the begin message.
CallHandler: TypeAlias = "Callable[[LLMSession], Awaitable[str | None]]"
#: An async generator ``(request, session) -> AsyncIterator[str | Response]``, or a coroutine
#: function returning one ``str | Response | None``.
ResponseHandler: TypeAlias = (
    "Callable[[ResponseRequired, LLMSession], AsyncIterator[Chunk] | Awaitable[Chunk | None]]"
)


class CallState:
    """The protocol state of one call, free of I/O.

    ``response_id`` is the newest id Retell asked for (0, the begin message, until the first
    request). A response is *open* while its id is the newest and its last chunk has not been
    produced; every encoder for response chunks returns ``None`` for a response that is not open,
    so a stale id never reaches the wire.
    """

    __slots__ = ("_completed", "_next_interrupt_id", "call", "call_id", "response_id", "transcript")

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.response_id = 0
        self._completed = False
        self._next_interrupt_id = 1
        self.call: CallResponse | None = None
        self.transcript: list[Utterance] = []

    # -- Retell -> server

    def receive(self, frame: bytes | str) -> RetellEvent:
        """Decode a frame from Retell and update the state; raises MalformedEventError."""
        event = decode_retell_event(frame)
        if isinstance(event, ResponseRequired):
            self.transcript = event.transcript
            if event.response_id > self.response_id:
                self.response_id = event.response_id
                self._completed = False
        elif isinstance(event, UpdateOnly):
            self.transcript = event.transcript
        elif isinstance(event, CallDetails):
            self.call = event.call
        return event

    def is_newer(self, event: ResponseRequired) -> bool:
        """Whether ``event`` (already received) is the request now to be answered."""
        return event.response_id == self.response_id and not self._completed

    def is_stale(self, response_id: int) -> bool:
        """Whether a newer request has superseded ``response_id``: drop its frames unsent."""
        return response_id != self.response_id

    def is_open(self, response_id: int) -> bool:
        """Whether chunks for ``response_id`` may still be produced."""
        return response_id == self.response_id and not self._completed

    # -- server -> Retell

    @staticmethod
    def config_frame(config: LLMConfig) -> bytes:
        return encode_server_event(ConfigEvent(config=config))

    @staticmethod
    def pong(event: PingPong) -> bytes:
        return encode_server_event(PingPongReply(timestamp=event.timestamp))

    def response(self, response_id: int, content: str, *, complete: bool = False) -> bytes | None:
        """A plain text chunk for ``response_id``, or ``None`` if that response is not open."""
        if response_id != self.response_id or self._completed:
            return None
        if complete:
            self._completed = True
        return encode_server_event(
            Response(response_id=response_id, content=content, content_complete=complete)
        )

    def response_event(self, event: Response) -> bytes | None:
        """A full :class:`Response` (with its options), or ``None`` if its response is not open."""
        if event.response_id != self.response_id or self._completed:
            return None
        if event.content_complete:
            self._completed = True
        return encode_server_event(event)

    def interrupt(self, event: AgentInterrupt) -> AgentInterrupt:
        """``event`` with the next ``interrupt_id`` of this call."""
        event = msgspec.structs.replace(event, interrupt_id=self._next_interrupt_id)
        self._next_interrupt_id += 1
        return event


class Socket(Protocol):
    """What a WebSocket adapter provides to :class:`LLMSession`."""

    async def receive(self) -> str | bytes | None:
        """The next data frame, or ``None`` once the peer has closed."""

    async def send(self, frame: bytes) -> None:
        """Send ``frame`` (UTF-8 JSON) as a text frame."""

    async def close(self, code: int) -> None:
        """Close the socket with ``code`` (no-op if already closed)."""


def _validated(event: ServerEvent) -> ServerEvent:
    """``event`` as it would decode on the other side: wrong field types raise ValueError."""
    return decode_server_event(encode_server_event(event))


class LLMSession:
    """One call's connection, as the user's handlers see it.

    Created by :class:`~aioretell.llm.LLMServer` per connection. ``data`` is a free dict for the
    handlers' own per-call state. Every ``send``-like method waits for room in the bounded send
    queue, so a slow peer slows the producer instead of growing memory.
    """

    def __init__(
        self,
        call_id: str,
        *,
        config: LLMConfig | None,
        on_call: CallHandler | None,
        on_response: ResponseHandler | None,
        begin_message: str = "",
        send_queue_size: int = 64,
        ping_timeout: float | None = None,
    ) -> None:
        self.call_id = call_id
        self.config = config
        self.data: dict[str, Any] = {}
        self._state = CallState(call_id)
        self._on_call = on_call
        self._on_response = on_response
        self._begin_message = begin_message
        self._send_queue_size = send_queue_size
        self._ping_timeout = ping_timeout if config is not None and config.auto_reconnect else None
        self._send_queue: asyncio.Queue[tuple[int | None, bytes]] | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._wakeup = asyncio.Event()
        self._pending: ResponseRequired | None = None
        self._active: anyio.CancelScope | None = None
        self._call_details = asyncio.Event()
        self._last_receive = 0.0
        self._close_code: int | None = None
        self._done = asyncio.Event()
        # The response the responder is producing (0, the begin message, during on_call): what
        # respond() and friends add to. Once superseded, what they add is dropped.
        self._answering = 0

    def __repr__(self) -> str:
        return f"<LLMSession call_id={self.call_id!r} response_id={self._state.response_id}>"

    # ------------------------------------------------------------ what handlers read

    @property
    def response_id(self) -> int:
        """The newest ``response_id`` Retell asked for (0 before the first request)."""
        return self._state.response_id

    @property
    def transcript(self) -> list[Utterance]:
        """The latest transcript Retell sent."""
        return self._state.transcript

    @property
    def call(self) -> CallResponse | None:
        """The call object from ``call_details``, once it has arrived."""
        return self._state.call

    @property
    def closed(self) -> bool:
        """Whether the connection has finished."""
        return self._done.is_set()

    async def wait_closed(self) -> None:
        """Wait until the connection has finished."""
        await self._done.wait()

    async def call_details(self) -> CallResponse:
        """Wait for Retell's ``call_details`` event and return its call object.

        Only sent when the server's config has ``call_details=True``; otherwise raises
        RuntimeError rather than waiting forever.
        """
        if self._state.call is not None:
            return self._state.call
        if self.config is None or not self.config.call_details:
            raise RuntimeError("call_details() needs LLMConfig(call_details=True)")
        await self._call_details.wait()
        assert self._state.call is not None
        return self._state.call

    # ------------------------------------------------------------ what handlers send

    async def respond(
        self,
        content: str = "",
        *,
        complete: bool = False,
        end_call: bool | UnsetType = UNSET,
        transfer_number: str | UnsetType = UNSET,
        no_interruption_allowed: bool | UnsetType = UNSET,
        digit_to_press: str | UnsetType = UNSET,
    ) -> bool:
        """Add a chunk to the response being produced (the begin message during ``on_call``);
        ``False``, with nothing sent, once a newer request superseded it or it is complete.
        Yielding from the response handler does the same for plain text."""
        if not isinstance(content, str):
            raise TypeError(f"content must be a str, not {type(content).__name__}")
        event = Response(
            response_id=self._answering,
            content=content,
            content_complete=complete,
            end_call=end_call,
            transfer_number=transfer_number,
            no_interruption_allowed=no_interruption_allowed,
            digit_to_press=digit_to_press,
        )
        return await self._send_response(event)

    async def end_call(self, content: str = "") -> None:
        """Say ``content`` (may be empty) and hang up.

        Finishes the open response if there is one, else speaks through an ``agent_interrupt``.
        """
        if self._state.is_open(self._answering):
            await self.respond(content, complete=True, end_call=True)
        else:
            await self.interrupt(content, end_call=True)

    async def transfer(self, number: str, content: str = "") -> None:
        """Say ``content`` and transfer the call to ``number`` (E.164)."""
        if not isinstance(number, str) or not number:
            raise ValueError("number must be a non-empty phone number string")
        if self._state.is_open(self._answering):
            await self.respond(content, complete=True, transfer_number=number)
        else:
            await self.interrupt(content, transfer_number=number)

    async def interrupt(
        self,
        content: str,
        *,
        no_interruption_allowed: bool | UnsetType = UNSET,
        end_call: bool | UnsetType = UNSET,
        transfer_number: str | UnsetType = UNSET,
    ) -> int:
        """Make the agent say ``content`` now (``agent_interrupt``); returns its interrupt id."""
        if not isinstance(content, str):
            raise TypeError(f"content must be a str, not {type(content).__name__}")
        event = self._state.interrupt(
            AgentInterrupt(
                interrupt_id=0,
                content=content,
                content_complete=True,
                end_call=end_call,
                transfer_number=transfer_number,
                no_interruption_allowed=no_interruption_allowed,
            )
        )
        await self._send_event(event)
        return event.interrupt_id

    async def tool_call(
        self, name: str, arguments: str | dict[str, Any], *, tool_call_id: str
    ) -> None:
        """Record a tool call in the transcript; ``arguments`` a dict or a JSON string."""
        if not isinstance(arguments, str):
            arguments = msgspec.json.encode(arguments).decode()
        await self._send_event(
            ToolCallInvocation(tool_call_id=tool_call_id, name=name, arguments=arguments)
        )

    async def tool_result(self, tool_call_id: str, content: str) -> None:
        """Record the result of the tool call ``tool_call_id`` in the transcript."""
        await self._send_event(ToolCallResult(tool_call_id=tool_call_id, content=content))

    async def send_metadata(self, metadata: Any) -> None:
        """Store ``metadata`` (any JSON value) on the call."""
        await self._send_event(Metadata(metadata=metadata))

    async def update_agent(
        self,
        *,
        responsiveness: float | UnsetType = UNSET,
        interruption_sensitivity: float | UnsetType = UNSET,
        reminder_trigger_ms: int | UnsetType = UNSET,
        reminder_max_count: int | UnsetType = UNSET,
    ) -> None:
        """Change agent settings for the rest of the call; omitted settings are kept."""
        await self._send_event(
            UpdateAgent(
                agent_config=AgentConfig(
                    responsiveness=responsiveness,
                    interruption_sensitivity=interruption_sensitivity,
                    reminder_trigger_ms=reminder_trigger_ms,
                    reminder_max_count=reminder_max_count,
                )
            )
        )

    def close(self, code: int = CLOSE_NORMAL) -> None:
        """End this connection: running handlers are cancelled and the socket closed."""
        if self._close_code is None:
            self._close_code = code
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    # ------------------------------------------------------------ internals: sending

    async def _enqueue(self, response_id: int | None, frame: bytes) -> None:
        queue = self._send_queue
        if queue is None:
            raise RuntimeError(f"the connection of call {self.call_id} is not running")
        # Waits only when the queue is full: backpressure on the producer.
        try:
            queue.put_nowait((response_id, frame))
        except asyncio.QueueFull:
            await queue.put((response_id, frame))

    async def _send_event(self, event: ServerEvent) -> None:
        await self._enqueue(None, encode_server_event(_validated(event)))

    async def _send_response(self, event: Response) -> bool:
        checked = _validated(event)
        assert isinstance(checked, Response)
        frame = self._state.response_event(checked)
        if frame is None:
            return False
        await self._enqueue(event.response_id, frame)
        return True

    async def _send_chunk(self, request: ResponseRequired, chunk: object) -> None:
        response_id = request.response_id
        if isinstance(chunk, str):
            if chunk:
                frame = self._state.response(response_id, chunk)
                if frame is not None:
                    await self._enqueue(response_id, frame)
        elif isinstance(chunk, Response):
            if chunk.response_id != response_id:
                raise ValueError(
                    f"the response handler yielded a Response for response_id "
                    f"{chunk.response_id} while answering {response_id}"
                )
            await self._send_response(chunk)
        else:
            raise TypeError(
                f"the response handler produced {type(chunk).__name__}; expected str or Response"
            )

    # ------------------------------------------------------------ internals: the connection

    async def serve(self, socket: Socket) -> None:
        """Run the connection until the peer closes, a handler fails, or :meth:`close`."""
        # asyncio's Queue, not an anyio memory stream: the stream's send/receive always yield to
        # the loop once, which cost more than everything else an event does (see
        # benchmarks/llm_overhead.py). The adapters (aiohttp, uvicorn) are asyncio-only anyway.
        queue = asyncio.Queue[tuple[int | None, bytes]](self._send_queue_size)
        self._send_queue = queue
        try:
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                if self.config is not None:
                    queue.put_nowait((None, CallState.config_frame(self.config)))
                tg.start_soon(self._guard, "writer", partial(self._write, socket, queue))
                tg.start_soon(self._guard, "handler", self._respond_loop)
                if self._ping_timeout is not None:
                    tg.start_soon(self._watchdog, self._ping_timeout)
                await self._guard("reader", partial(self._read, socket))
                tg.cancel_scope.cancel()
            self._send_queue = None
            if self._close_code is not None:
                await socket.close(self._close_code)
        finally:
            self._send_queue = None
            self._task_group = None
            self._done.set()

    async def _guard(self, part: str, func: Callable[[], Awaitable[None]]) -> None:
        """Run one part of the connection: an exception (in the user's handlers, mostly) is
        logged with the call id and ends the connection with a clean close (1011) instead of
        escaping the task group."""
        try:
            await func()
        except Exception:
            logger.exception("custom-LLM %s failed; closing call_id=%s", part, self.call_id)
            self.close(CLOSE_HANDLER_ERROR)

    async def _read(self, socket: Socket) -> None:
        state = self._state
        while True:
            try:
                frame = await socket.receive()
            except (OSError, ConnectionError) as exc:
                logger.info("custom-LLM socket lost call_id=%s: %s", self.call_id, exc)
                return
            if frame is None:
                return
            if self._ping_timeout is not None:
                self._last_receive = asyncio.get_running_loop().time()
            try:
                event = state.receive(frame)
            except ValueError as exc:
                logger.warning(
                    "ignored a malformed frame from Retell call_id=%s: %s", self.call_id, exc
                )
                continue
            if isinstance(event, PingPong):
                await self._enqueue(None, CallState.pong(event))
            elif isinstance(event, ResponseRequired):
                if state.is_newer(event):
                    self._pending = event
                    if self._active is not None:
                        self._active.cancel()
                    self._wakeup.set()
            elif isinstance(event, CallDetails):
                self._call_details.set()
            elif isinstance(event, UnknownEvent):
                logger.debug("ignored unknown event %r call_id=%s", event.type, self.call_id)

    async def _write(self, socket: Socket, queue: asyncio.Queue[tuple[int | None, bytes]]) -> None:
        """The only task that sends: frames in queue order, minus those gone stale meanwhile."""
        state = self._state
        try:
            while True:
                try:
                    response_id, frame = queue.get_nowait()
                except asyncio.QueueEmpty:
                    response_id, frame = await queue.get()
                if response_id is not None and state.is_stale(response_id):
                    continue
                await socket.send(frame)
        except (OSError, ConnectionError) as exc:
            # The peer went away mid-send: the call is over, nothing to retry.
            logger.info("custom-LLM socket lost call_id=%s: %s", self.call_id, exc)
            if self._task_group is not None:
                self._task_group.cancel_scope.cancel()

    async def _watchdog(self, limit: float) -> None:
        """With auto_reconnect Retell pings every ~2 s; silence past ``limit`` seconds means it
        is gone, so the connection is closed rather than left open forever."""
        now = asyncio.get_running_loop().time
        self._last_receive = now()
        while True:
            idle = now() - self._last_receive
            if idle >= limit:
                logger.warning(
                    "no frame from Retell for %.1f s; closing call_id=%s", idle, self.call_id
                )
                self.close(CLOSE_GOING_AWAY)
                return
            await anyio.sleep(limit - idle)

    async def _respond_loop(self) -> None:
        """The call's single responder: the begin message, then each newest request in turn.

        Requests are answered one at a time in this task, so a superseded generator has finished
        (its ``finally`` run) before the next one starts.
        """
        begin = self._begin_message
        if self._on_call is not None:
            begin = await self._on_call(self) or ""
        if not isinstance(begin, str):
            raise TypeError(f"on_call returned {type(begin).__name__}; expected str or None")
        frame = self._state.response(0, begin, complete=True)
        if frame is not None:
            await self._enqueue(0, frame)
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            request, self._pending = self._pending, None
            if request is None or not self._state.is_open(request.response_id):
                continue
            with anyio.CancelScope() as scope:
                self._active = scope
                await self._answer(request)
            self._active = None

    async def _answer(self, request: ResponseRequired) -> None:
        if self._on_response is None:
            raise RuntimeError("no response handler: decorate one with @llm.on_response")
        response_id = self._answering = request.response_id
        result = self._on_response(request, self)
        if inspect.isawaitable(result):
            chunk = await result
            if chunk is not None:
                await self._send_chunk(request, chunk)
        elif hasattr(result, "__aiter__"):
            async with aclosing(result) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    await self._send_chunk(request, chunk)
                    if not self._state.is_open(response_id):
                        break
        else:
            raise TypeError(
                f"the response handler returned {type(result).__name__}; "
                "expected an async generator or a coroutine"
            )
        frame = self._state.response(response_id, "", complete=True)
        if frame is not None:
            await self._enqueue(response_id, frame)
