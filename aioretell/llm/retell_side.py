"""The Retell side of the custom-LLM WebSocket: connect to a server, play a script, measure.

:class:`RetellSide` does to a custom-LLM server what Retell does during one call: it opens
``{llm_websocket_url}/{call_id}``, takes the begin message (``response_id`` 0), answers a
``config`` (``call_details`` once, ``ping_pong`` every ``ping_interval_s`` if asked for
``auto_reconnect``), and plays a :class:`~aioretell.llm.script.ConversationScript`: the user's
utterances (``update_only`` as the transcript grows, then ``response_required`` with the next
id), barge-ins that supersede the answer being streamed, and ``reminder_required`` after
silence. It is the one driver behind the emulator's custom-LLM calls and ``aioretell
llm-test``.

What it measures lands in :attr:`RetellSide.result` while it runs: the transcript (what the
agent got to say, what the user said, tool calls), each turn's first-chunk and full-response
latency, ping round trips, stale answers, protocol violations, and how the call ended, as a
Retell ``disconnection_reason``:

- ``user_hangup``: the script ran out; ``agent_hangup``: a complete answer had ``end_call``;
  ``call_transfer``: it had ``transfer_number``;
- ``error_llm_websocket_open``: no connection, no handshake in time, or the server refused the
  upgrade (any HTTP status);
- ``error_llm_websocket_lost_connection``: the connection dropped (no close frame), the server
  closed it normally (1000/1001) in the middle of the call, or it stopped echoing pings for
  ``ping_timeout_s``;
- ``error_llm_websocket_runtime``: the server closed with an error code (1011 from an ASGI
  server whose app raised, 4xxx, ...);
- ``error_llm_websocket_corrupt_payload``: a frame that is not a valid event (not JSON, no
  ``response_type``, a known event with wrong fields).

The emulated Retell does not reconnect: a lost socket ends the call.

An answer to an older ``response_id`` that arrives after a newer id was sent is superseded and
never spoken. It counts as *stale* when the server provably knew about the newer id when it
sent it (it had already sent something for a newer id, or echoed a ping sent after it);
otherwise as *late* (it may have crossed the request on the wire).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anyio
import msgspec
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint
from yarl import URL

from aioretell.types import CallResponse

from .events import (
    AgentInterrupt,
    CallDetails,
    ConfigEvent,
    LLMConfig,
    MalformedEventError,
    Metadata,
    PingPong,
    PingPongReply,
    ReminderRequired,
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
    UtteranceOrToolCall,
    decode_server_event,
    encode_retell_event,
)
from .script import ConversationScript, Silence

__all__ = [
    "ERROR_REASONS",
    "ConversationResult",
    "RetellSide",
    "RetellTimings",
    "TurnResult",
    "Violation",
    "placeholder_call",
    "websocket_url",
]

USER_HANGUP = "user_hangup"
AGENT_HANGUP = "agent_hangup"
CALL_TRANSFER = "call_transfer"
OPEN_ERROR = "error_llm_websocket_open"
LOST_CONNECTION = "error_llm_websocket_lost_connection"
RUNTIME_ERROR = "error_llm_websocket_runtime"
CORRUPT_PAYLOAD = "error_llm_websocket_corrupt_payload"
#: The disconnection reasons that blame the custom-LLM socket.
ERROR_REASONS = frozenset({OPEN_ERROR, LOST_CONNECTION, RUNTIME_ERROR, CORRUPT_PAYLOAD})
#: Violations kept per conversation (the count goes on).
MAX_VIOLATIONS = 100
#: Frames larger than this are refused (aiohttp's default for clients).
MAX_FRAME_BYTES = 4 * 1024 * 1024
_NORMAL_CLOSE = frozenset({1000, 1001})
_ABNORMAL_CLOSE = 1006


@dataclass(frozen=True)
class RetellTimings:
    """Timings of the Retell side; tests shrink them to run fast."""

    #: Between two ``ping_pong`` events (when the server asked for ``auto_reconnect``).
    ping_interval_s: float = 2.0
    #: No echo of a ping for this long: the connection counts as lost.
    ping_timeout_s: float = 5.0
    #: Connecting plus the WebSocket handshake.
    open_timeout_s: float = 10.0
    #: Waiting for a complete answer before the caller moves on (the turn stays unanswered).
    response_timeout_s: float = 10.0
    #: Waiting for the server's close frame when hanging up.
    close_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        for name in (
            "ping_interval_s",
            "ping_timeout_s",
            "open_timeout_s",
            "response_timeout_s",
            "close_timeout_s",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive, finite number of seconds")


@dataclass
class TurnResult:
    """One answer Retell asked for, and how the server gave it."""

    response_id: int
    #: ``"begin"`` (id 0, asked by opening the socket), ``"response"`` or ``"reminder"``.
    kind: str
    #: Seconds from asking to the first ``response`` event for this id.
    first_chunk_s: float | None = None
    #: Seconds from asking to the event with ``content_complete``.
    complete_s: float | None = None
    chunks: int = 0
    #: Everything the server sent for this id (spoken or not).
    content: str = ""
    #: The user barged in before the answer was complete.
    interrupted: bool = False
    end_call: bool = False
    transfer_number: str | None = None
    no_interruption_allowed: bool = False

    @property
    def answered(self) -> bool:
        """Complete, or cut short by the user after it had started."""
        return self.complete_s is not None or (self.interrupted and self.chunks > 0)


@dataclass(frozen=True)
class Violation:
    """Something the server did that the protocol does not allow."""

    #: A short, stable phrase (to count by), e.g. ``"unknown response_type"``.
    kind: str
    detail: str


@dataclass
class ConversationResult:
    """Everything one conversation showed; filled in while it runs."""

    call_id: str
    #: How the call ended (a Retell disconnection reason); ``None`` while it runs or if it was
    #: cancelled from outside.
    disconnection_reason: str | None = None
    #: What went wrong, in one line, for the error reasons.
    detail: str | None = None
    #: The WebSocket opened.
    connected: bool = False
    #: Utterances and tool calls in order, as Retell would record them.
    transcript: list[UtteranceOrToolCall] = field(default_factory=list)
    #: When each :attr:`transcript` item began, in seconds after the socket opened.
    started_s: list[float] = field(default_factory=list)
    turns: list[TurnResult] = field(default_factory=list)
    ping_rtts_s: list[float] = field(default_factory=list)
    #: Answers to superseded ids the server sent knowing a newer id.
    stale_responses: int = 0
    #: Answers to superseded ids that may have crossed the newer request on the wire.
    late_responses: int = 0
    violations: list[Violation] = field(default_factory=list)
    violation_count: int = 0
    transfer_destination: str | None = None
    #: The last ``metadata`` event's value.
    metadata: Any = None

    @property
    def utterances(self) -> list[UtteranceOrToolCall]:
        """The spoken part of :attr:`transcript` (agent and user turns with content)."""
        return [i for i in self.transcript if i.role in ("agent", "user") and i.content]


def websocket_url(llm_websocket_url: str, call_id: str) -> URL:
    """``{llm_websocket_url}/{call_id}``, keeping any query string (a token, say).

    Raises :class:`ValueError` unless the URL is ``ws://`` or ``wss://`` with a host.
    """
    try:
        url = URL(llm_websocket_url)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"llm_websocket_url is not a URL: {exc}") from None
    if url.scheme not in ("ws", "wss") or not url.host:
        raise ValueError(
            "llm_websocket_url must be a ws:// or wss:// URL with a host, "
            f"got {llm_websocket_url!r}"
        )
    return url.with_path(f"{url.path.rstrip('/')}/{call_id}").with_query(url.query)


def placeholder_call(call_id: str) -> CallResponse:
    """The call object sent as ``call_details`` when there is no real call (``llm-test``)."""
    return CallResponse(
        call_type="web_call",
        call_id=call_id,
        agent_id="agent_llm_test",
        agent_version=0,
        call_status="ongoing",
        metadata={},
        retell_llm_dynamic_variables={},
        start_timestamp=int(time.time() * 1000),
    )


def _wall_ms() -> int:
    return int(time.time() * 1000)


class _SocketGone(Exception):
    """A send failed because the connection is closing; the reader says why."""


class RetellSide:
    """Plays one call's conversation with a custom-LLM server, as Retell would.

    ``await side.run()`` returns :attr:`result` once the call has ended; :meth:`hang_up` ends
    it early from any task. ``call_details`` makes the call object sent when the server asks
    for it (default: :func:`placeholder_call`). ``clock`` measures latencies (seconds,
    monotonic); ``wall_ms`` stamps pings.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        llm_websocket_url: str,
        call_id: str,
        script: ConversationScript,
        *,
        timings: RetellTimings | None = None,
        call_details: Callable[[], CallResponse] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.url = websocket_url(llm_websocket_url, call_id)
        self.script = script
        self.timings = timings or RetellTimings()
        self.result = ConversationResult(call_id)
        self._session = session
        self._call_details = call_details or (lambda: placeholder_call(call_id))
        self._clock = clock
        self._wall_ms = wall_ms
        self._reminder_trigger_s = script.reminder_trigger_s
        self._reminder_max_count = script.reminder_max_count
        self._scope: anyio.CancelScope | None = None
        self._group: TaskGroup | None = None
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._started = False
        self._config: LLMConfig | None = None
        self._pinging = False
        #: The answer being waited for; its id is the newest one sent.
        self._current = TurnResult(0, "begin")
        self._asked_at = 0.0
        self._opened_at = 0.0
        #: Index in the transcript of the agent utterance the current answer is filling.
        self._speaking_at: int | None = None
        #: The newest response id the server has shown it knows.
        self._known_id = -1
        #: Ping timestamp -> (clock when sent, newest response id then).
        self._pings: dict[int, tuple[float, int]] = {}
        self._interrupts: dict[int, int] = {}
        #: Since when the line has been quiet, and reminders asked since the user spoke.
        self._quiet_since = 0.0
        self._reminders = 0
        #: Ids of the answers the caller has finished waiting for (complete or timed out).
        self._settled_ids: set[int] = set()
        self._tool_calls: set[str] = set()
        self._send_lock: anyio.Lock | None = None
        self._changed: anyio.Event | None = None
        self._reader_done: anyio.Event | None = None

    # -- control ------------------------------------------------------------------------

    def hang_up(self, reason: str = USER_HANGUP, detail: str | None = None) -> None:
        """End the conversation now with ``reason`` (a no-op once it has ended)."""
        self._end(reason, detail)

    def _end(self, reason: str, detail: str | None = None) -> None:
        if self.result.disconnection_reason is None:
            self.result.disconnection_reason = reason
            self.result.detail = detail
        if self._scope is not None:
            self._scope.cancel()

    def _violation(self, kind: str, detail: str) -> None:
        self.result.violation_count += 1
        if len(self.result.violations) < MAX_VIOLATIONS:
            self.result.violations.append(Violation(kind, detail))

    def _pulse(self) -> None:
        """Wake whoever waits for the conversation to move."""
        assert self._changed is not None
        self._changed.set()
        self._changed = anyio.Event()

    # -- the call -----------------------------------------------------------------------

    async def run(self) -> ConversationResult:
        """Connect, play the script, hang up; returns :attr:`result` (also when it failed)."""
        if self._started:
            raise RuntimeError("a RetellSide plays one conversation; make a new one")
        self._started = True
        self._send_lock = anyio.Lock()
        self._changed = anyio.Event()
        self._reader_done = anyio.Event()
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self.result.disconnection_reason is not None:
                scope.cancel()  # hung up before it started
            await checkpoint()
            ws = await self._open()
            try:
                async with anyio.create_task_group() as group:
                    self._group = group
                    group.start_soon(self._read_frames, ws)
                    try:
                        await self._play()
                    except _SocketGone:
                        await self._lost_while_sending()
                    self._end(USER_HANGUP)
            finally:
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(self.timings.close_timeout_s),
                ):
                    await ws.close()
        return self.result

    async def _open(self) -> aiohttp.ClientWebSocketResponse[bool]:
        try:
            with anyio.fail_after(self.timings.open_timeout_s):
                ws = await self._session.ws_connect(
                    self.url, autoping=True, max_msg_size=MAX_FRAME_BYTES
                )
        except aiohttp.WSServerHandshakeError as exc:
            self._end(OPEN_ERROR, f"the server refused the WebSocket: HTTP {exc.status}")
        except TimeoutError:
            self._end(
                OPEN_ERROR, f"no WebSocket handshake within {self.timings.open_timeout_s:g} s"
            )
        except (aiohttp.ClientError, OSError) as exc:
            self._end(OPEN_ERROR, f"cannot connect: {exc}")
        else:
            self._ws = ws
            self.result.connected = True
            self._asked_at = self._opened_at = self._clock()
            self.result.turns.append(self._current)
            return ws
        await checkpoint()  # the scope is cancelled: this raises
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, event: RetellEvent) -> None:
        ws = self._ws
        assert ws is not None and self._send_lock is not None
        async with self._send_lock:
            try:
                await ws.send_str(encode_retell_event(event).decode())
            except (aiohttp.ClientError, ConnectionError) as exc:
                raise _SocketGone(str(exc)) from None

    async def _lost_while_sending(self) -> None:
        """A send failed: give the reader a moment to find the close frame and its code."""
        assert self._reader_done is not None
        with anyio.move_on_after(self.timings.close_timeout_s):
            await self._reader_done.wait()
        self._end(LOST_CONNECTION, "the connection closed while Retell was sending")

    # -- what the caller does -------------------------------------------------------------

    async def _play(self) -> None:
        script = self.script
        await self._await_answer()
        for turn in script.turns:
            if isinstance(turn, Silence):
                await self._await_answer()
                await self._silence(turn.seconds)
                continue
            barged = await self._await_answer(turn.interrupt_after_chunks)
            if not barged:
                await self._silence(turn.pause_s)
            await self._speak(turn.text)
        await self._await_answer()
        await self._silence(script.hang_up_after_s)

    async def _await_answer(self, interrupt_after_chunks: int | None = None) -> bool:
        """Wait for the current answer to complete (then tell the server the transcript), or,
        with ``interrupt_after_chunks``, until it has streamed that many chunks and the user
        barges in (returns ``True``). Gives up after ``response_timeout_s``."""
        turn = self._current
        if turn.interrupted or turn.response_id in self._settled_ids:
            return False
        remaining = self._asked_at + self.timings.response_timeout_s - self._clock()
        with anyio.move_on_after(max(0.0, remaining)):
            while turn.complete_s is None:
                if (
                    interrupt_after_chunks is not None
                    and turn.chunks >= interrupt_after_chunks
                    and not turn.no_interruption_allowed
                ):
                    turn.interrupted = True
                    self._speaking_at = None
                    return True
                assert self._changed is not None
                await self._changed.wait()
        self._settled_ids.add(turn.response_id)
        self._quiet_since = self._clock()
        if turn.complete_s is not None:
            await self._send(
                UpdateOnly(
                    transcript=self._transcript(),
                    transcript_with_tool_calls=self._with_tool_calls(),
                    turntaking="user_turn",
                )
            )
        return False

    async def _silence(self, seconds: float) -> None:
        """The user says nothing for ``seconds``. Once the line has been quiet for the
        agent's ``reminder_trigger`` since its last answer, Retell asks for a reminder, up to
        ``reminder_max_count`` times until the user speaks again."""
        end = self._clock() + seconds
        while True:
            now = self._clock()
            due = self._quiet_since + self._reminder_trigger_s
            if self._reminders >= self._reminder_max_count or due >= end:
                if end > now:
                    await anyio.sleep(end - now)
                return
            if due > now:
                await anyio.sleep(due - now)
            self._reminders += 1
            await self._ask("reminder")
            await self._await_answer()

    async def _speak(self, text: str) -> None:
        words = text.split()
        utterance = UtteranceOrToolCall(role="user", content=" ".join(words[: len(words) // 2]))
        self._add(utterance)
        if len(words) > 1:  # the server hears the user mid-sentence
            await self._send(
                UpdateOnly(
                    transcript=self._transcript(),
                    transcript_with_tool_calls=self._with_tool_calls(),
                    turntaking="user_turn",
                )
            )
        utterance.content = text
        self._reminders = 0
        await self._ask("response")

    async def _ask(self, kind: str) -> None:
        turn = TurnResult(self._current.response_id + 1, kind)
        self._current = turn
        self._speaking_at = None
        self._asked_at = self._clock()
        self.result.turns.append(turn)
        request_type = ReminderRequired if kind == "reminder" else ResponseRequired
        await self._send(
            request_type(
                response_id=turn.response_id,
                transcript=self._transcript(),
                transcript_with_tool_calls=self._with_tool_calls(),
            )
        )

    def _add(self, item: UtteranceOrToolCall) -> int:
        """Append ``item`` to the transcript; returns its index."""
        self.result.transcript.append(item)
        self.result.started_s.append(self._clock() - self._opened_at)
        return len(self.result.transcript) - 1

    def _transcript(self) -> list[Utterance]:
        return [Utterance(role=i.role, content=i.content or "") for i in self.result.utterances]

    def _with_tool_calls(self) -> list[UtteranceOrToolCall] | None:
        if self._config is None or not self._config.transcript_with_tool_calls:
            return None
        return [msgspec.structs.replace(item) for item in self.result.transcript]

    async def _ping_forever(self) -> None:
        last = 0
        while True:
            stamp = max(self._wall_ms(), last + 1)
            last = stamp
            self._pings[stamp] = (self._clock(), self._current.response_id)
            try:
                await self._send(PingPong(timestamp=stamp))
            except _SocketGone:
                await self._lost_while_sending()
                return
            await anyio.sleep(self.timings.ping_interval_s)
            if self._pings:
                oldest = min(sent for sent, _ in self._pings.values())
                if self._clock() - oldest >= self.timings.ping_timeout_s:
                    self._end(
                        LOST_CONNECTION,
                        f"no ping_pong echo for {self.timings.ping_timeout_s:g} s",
                    )
                    return

    # -- what the server says -----------------------------------------------------------

    async def _read_frames(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        assert self._reader_done is not None
        try:
            await self._read_until_closed(ws)
        finally:
            self._reader_done.set()

    async def _read_until_closed(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        close_reason = ""
        while True:
            message = await ws.receive()
            kind = message.type
            if kind is aiohttp.WSMsgType.TEXT or kind is aiohttp.WSMsgType.BINARY:
                if kind is aiohttp.WSMsgType.BINARY:
                    self._violation("binary frame", "Retell expects text frames")
                try:
                    event = decode_server_event(message.data)
                except MalformedEventError as exc:
                    self._violation("corrupt payload", str(exc))
                    self._end(CORRUPT_PAYLOAD, str(exc))
                    return
                with contextlib.suppress(_SocketGone):  # the next receive says why
                    await self._on_event(event)
                self._pulse()
            elif kind is aiohttp.WSMsgType.CLOSE:
                close_reason = message.extra or ""
            elif kind is aiohttp.WSMsgType.ERROR:
                error = ws.exception() or message.data
                self._end(LOST_CONNECTION, f"the connection failed: {error}")
                return
            elif kind in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                break
        code = ws.close_code
        why = f": {close_reason}" if close_reason else ""
        if code is None or code == _ABNORMAL_CLOSE:
            self._end(LOST_CONNECTION, "the connection dropped without a close frame")
        elif code in _NORMAL_CLOSE:
            self._end(LOST_CONNECTION, f"the server closed the socket (code {code}) mid-call{why}")
        else:
            self._end(RUNTIME_ERROR, f"the server closed the socket with code {code}{why}")

    async def _on_event(self, event: ServerEvent) -> None:
        if isinstance(event, Response):
            self._on_response(event)
        elif isinstance(event, PingPongReply):
            self._on_pong(event.timestamp)
        elif isinstance(event, ConfigEvent):
            await self._on_config(event.config)
        elif isinstance(event, AgentInterrupt):
            self._on_interrupt(event)
        elif isinstance(event, ToolCallInvocation):
            self._tool_calls.add(event.tool_call_id)
            self._add(
                UtteranceOrToolCall(
                    role="tool_call_invocation",
                    tool_call_id=event.tool_call_id,
                    name=event.name,
                    arguments=event.arguments,
                )
            )
        elif isinstance(event, ToolCallResult):
            if event.tool_call_id not in self._tool_calls:
                self._violation(
                    "tool_call_result without invocation",
                    f"tool_call_result for {event.tool_call_id!r}, never invoked",
                )
            self._add(
                UtteranceOrToolCall(
                    role="tool_call_result", tool_call_id=event.tool_call_id, content=event.content
                )
            )
        elif isinstance(event, Metadata):
            self.result.metadata = event.metadata
        elif isinstance(event, UpdateAgent):
            self._on_update_agent(event)
        elif isinstance(event, UnknownEvent):
            self._violation("unknown response_type", f"response_type {event.type!r}")

    def _on_response(self, event: Response) -> None:
        response_id = event.response_id
        turn = self._current
        if response_id > turn.response_id or response_id < 0:
            self._violation(
                "response to an id never sent", f"response_id {response_id} was never sent"
            )
            return
        if response_id < turn.response_id:
            if self._known_id > response_id:
                self.result.stale_responses += 1
            else:
                self.result.late_responses += 1
            return
        self._known_id = max(self._known_id, response_id)
        if turn.complete_s is not None:
            self._violation(
                "response after content_complete",
                f"response_id {response_id} went on after content_complete",
            )
            return
        elapsed = self._clock() - self._asked_at
        if turn.chunks == 0:
            turn.first_chunk_s = elapsed
        turn.chunks += 1
        turn.content += event.content
        if event.end_call is True:
            turn.end_call = True
        if isinstance(event.transfer_number, str) and event.transfer_number:
            turn.transfer_number = event.transfer_number
        if event.no_interruption_allowed is True:
            turn.no_interruption_allowed = True
        if not turn.interrupted:
            self._speaking_at = self._say(self._speaking_at, event.content)
        if event.content_complete:
            turn.complete_s = elapsed
            if not turn.interrupted:
                self._after_agent_spoke(turn.end_call, turn.transfer_number)

    def _say(self, index: int | None, content: str) -> int | None:
        """Add ``content`` to the agent utterance at ``index`` (a new one if ``None``)."""
        if index is None:
            if not content:
                return None
            return self._add(UtteranceOrToolCall(role="agent", content=content))
        item = self.result.transcript[index]
        item.content = (item.content or "") + content
        return index

    def _after_agent_spoke(self, end_call: bool, transfer_number: str | None) -> None:
        if end_call:
            self._end(AGENT_HANGUP)
        elif transfer_number is not None:
            self.result.transfer_destination = transfer_number
            self._end(CALL_TRANSFER)

    def _on_interrupt(self, event: AgentInterrupt) -> None:
        index = self._say(self._interrupts.get(event.interrupt_id), event.content)
        if index is not None:
            self._interrupts[event.interrupt_id] = index
        if event.content_complete:
            transfer = event.transfer_number
            self._after_agent_spoke(
                event.end_call is True, transfer if isinstance(transfer, str) and transfer else None
            )

    def _on_pong(self, timestamp: int) -> None:
        sent = self._pings.pop(timestamp, None)
        if sent is None:
            self._violation("ping_pong echo of nothing", f"timestamp {timestamp} was never sent")
            return
        sent_at, newest_id = sent
        self.result.ping_rtts_s.append(self._clock() - sent_at)
        self._known_id = max(self._known_id, newest_id)
        for older in [stamp for stamp in self._pings if stamp < timestamp]:
            del self._pings[older]  # the server is alive; it may skip an echo

    async def _on_config(self, config: LLMConfig) -> None:
        if self._config is not None:
            self._violation("config sent twice", "a second config event")
        elif self._current.response_id > 0 or self._current.chunks > 0:
            self._violation("config after the begin message", "config came after response 0")
        first = self._config is None
        self._config = config
        if first and config.call_details:
            await self._send(CallDetails(call=self._call_details()))
        if config.auto_reconnect and not self._pinging:
            self._pinging = True
            assert self._group is not None
            self._group.start_soon(self._ping_forever)

    def _on_update_agent(self, event: UpdateAgent) -> None:
        settings = event.agent_config
        trigger = settings.reminder_trigger_ms
        if isinstance(trigger, int) and not isinstance(trigger, bool):
            if trigger > 0:
                self._reminder_trigger_s = trigger / 1000
            else:
                self._violation("bad update_agent", f"reminder_trigger_ms {trigger}")
        count = settings.reminder_max_count
        if isinstance(count, int) and not isinstance(count, bool):
            if count >= 0:
                self._reminder_max_count = count
            else:
                self._violation("bad update_agent", f"reminder_max_count {count}")
