"""Webhook delivery: the emulator posts signed events to agents' ``webhook_url``, like Retell.

Calls send ``call_started`` when they connect (never for a call that did not connect),
``call_ended`` when they end (the call object without ``call_analysis``) and ``call_analyzed``
``analysis_delay_s`` later; chats send ``chat_started``, ``chat_ended`` and ``chat_analyzed``.
The URL is the agent's ``webhook_url``, else ``EmulatorConfig.webhook_url``; an agent's
``webhook_events`` list restricts what it receives.

Each attempt is signed (``X-Retell-Signature``) at the time it is sent; a non-2xx answer, a
timeout (``webhook_timeout_s``) or a connection error is retried up to ``webhook_max_retries``
times with a doubling backoff. Events of one call or chat found due together are sent in order;
different calls are delivered concurrently.

A background task checks the clock every ``webhook_tick_s``; with a :class:`ManualClock`,
advance it and ``await emulator.webhooks.flush()``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from aioretell.webhooks import SIGNATURE_HEADER, sign

from .config import EmulatorConfig
from .render import render_call, render_chat
from .state import JSON, CallRecord, ChatRecord, EmulatorState

__all__ = ["DeliveryAttempt", "WebhookDispatcher"]

logger = logging.getLogger("aioretell.emulator")

_VOICE_DEFAULT = frozenset({"call_started", "call_ended", "call_analyzed"})
_CHAT_DEFAULT = frozenset({"chat_started", "chat_ended", "chat_analyzed"})
_CHAT_STARTED_FIELDS = (
    "chat_id",
    "agent_id",
    "version",
    "chat_type",
    "retell_llm_dynamic_variables",
    "metadata",
    "start_timestamp",
)
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of one webhook."""

    event: str
    #: The ``call_id`` or ``chat_id``.
    session_id: str
    url: str
    #: 1 for the first try, 2 for the first retry, ...
    attempt: int
    #: 0 for the webhook itself, 1.. for the duplicates asked for.
    copy: int
    #: The HTTP status, ``None`` on a timeout or connection error.
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class _Outgoing:
    event: str
    session_id: str
    url: str
    body: bytes
    timeout_s: float
    copies: int


class WebhookDispatcher:
    """Watches call and chat lifecycles in ``state`` and delivers their webhooks."""

    def __init__(self, state: EmulatorState, config: EmulatorConfig) -> None:
        self.state = state
        self.config = config
        #: Extra copies of every webhook from now on (starts at ``config.webhook_duplicates``).
        self.duplicates = config.webhook_duplicates
        #: Every attempt, oldest first (the latest 10 000).
        self.attempts: deque[DeliveryAttempt] = deque(maxlen=10_000)
        self._due: list[tuple[float, int, str, str]] = []  # (clock time, seq, event, id)
        self._seq = itertools.count()
        self._queued: dict[str, set[str]] = {}  # session id -> events already queued
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._ticker: asyncio.Task[None] | None = None
        state.lifecycle_listeners.append(self._on_change)

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._session is not None

    async def start(self) -> None:
        if self._session is not None:
            raise RuntimeError("webhook delivery is already running")
        self._session = aiohttp.ClientSession()
        self._ticker = asyncio.create_task(self._tick_forever(), name="aioretell-emulator-hooks")

    async def stop(self) -> None:
        """Stop ticking and cancel deliveries in flight."""
        ticker, self._ticker = self._ticker, None
        tasks = [*self._tasks, *([ticker] if ticker is not None else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def flush(self) -> None:
        """Queue every webhook due at the clock's current time and wait until all are
        delivered (or have run out of retries)."""
        if self._session is None:
            raise RuntimeError("webhook delivery is not running; start the emulator")
        self.tick()
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _tick_forever(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                logger.exception("webhook scheduler failed")
            await asyncio.sleep(self.config.webhook_tick_s)

    # -- scheduling ---------------------------------------------------------------------

    def _push(self, when: float, event: str, session_id: str) -> None:
        heapq.heappush(self._due, (when, next(self._seq), event, session_id))

    def _on_change(self, change: str, record: CallRecord | ChatRecord) -> None:
        if isinstance(record, CallRecord):
            if change == "call_created":
                if record.rejected_reason is None:
                    self._push(record.connect_at, "call_started", record.call_id)
                self._push(record.end_at, "call_ended", record.call_id)
            elif change == "call_stopped":
                self._push(record.end_at, "call_ended", record.call_id)
        elif change == "chat_created":
            self._push(record.start_ms / 1000, "chat_started", record.chat_id)
        elif change == "chat_ended" and record.end_ms is not None:
            self._push(record.end_ms / 1000, "chat_ended", record.chat_id)

    def tick(self) -> int:
        """Start delivering every webhook due by now; returns how many were queued."""
        if self._session is None:
            return 0
        now = self.state.now()
        batches: dict[str, list[_Outgoing]] = {}
        while self._due and self._due[0][0] <= now:
            _, _, event, session_id = heapq.heappop(self._due)
            outgoing = self._prepare(event, session_id, now)
            if outgoing is not None:
                batches.setdefault(session_id, []).append(outgoing)
        for session_id, batch in batches.items():
            task = asyncio.create_task(
                self._deliver_batch(batch), name=f"aioretell-emulator-hook-{session_id}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return sum(len(batch) for batch in batches.values())

    def _prepare(self, event: str, session_id: str, now: float) -> _Outgoing | None:
        """The webhook for ``event`` now, or ``None`` if it is stale, sent or unwanted."""
        queued = self._queued.setdefault(session_id, set())
        if event in queued:
            return None
        payload: JSON
        agent: JSON | None
        if event.startswith("call_"):
            call = self.state.calls.get(session_id)
            if call is None:
                return None
            end = call.end_at
            if event == "call_started":
                if call.rejected_reason is not None or end <= call.connect_at:
                    return None  # never connected: Retell sends no call_started
                payload = render_call(call, self.state, at=call.connect_at)
            elif event == "call_ended":
                if now < end:
                    return None
                payload = render_call(call, self.state, at=end)
                payload.pop("call_analysis", None)
                self._push(end + self.config.analysis_delay_s, "call_analyzed", session_id)
            else:
                payload = render_call(call, self.state, at=end)
            agent = self.state.agents.get(call.agent_id)
            wanted = _VOICE_DEFAULT
            key = "call"
        else:
            chat = self.state.chats.get(session_id)
            if chat is None:
                return None
            payload = render_chat(chat)
            if event == "chat_started":
                payload = {name: payload[name] for name in _CHAT_STARTED_FIELDS}
                payload["chat_status"] = "ongoing"
            elif event == "chat_ended":
                payload.pop("chat_analysis", None)
                end_s = (chat.end_ms or 0) / 1000
                self._push(end_s + self.config.analysis_delay_s, "chat_analyzed", session_id)
            agent = self.state.chat_agents.get(chat.agent_id)
            wanted = _CHAT_DEFAULT
            key = "chat"
        # Kept for good: a stopped call still has its natural end in the heap.
        queued.add(event)
        url, wanted, timeout_s = self._route(agent, wanted)
        if url is None or event not in wanted:
            return None
        body = _encode({"event": event, key: payload})
        return _Outgoing(event, session_id, url, body, timeout_s, self.duplicates)

    def _route(
        self, agent: JSON | None, default: frozenset[str]
    ) -> tuple[str | None, frozenset[str], float]:
        url: Any = None
        events: Any = None
        timeout_ms: Any = None
        if agent is not None:
            url = agent.get("webhook_url")
            events = agent.get("webhook_events")
            timeout_ms = agent.get("webhook_timeout_ms")
        if not isinstance(url, str) or not url:
            url = self.config.webhook_url
        wanted = frozenset(events) if isinstance(events, list) else default
        timeout_s = self.config.webhook_timeout_s
        if isinstance(timeout_ms, int) and timeout_ms > 0:
            timeout_s = timeout_ms / 1000
        return url, wanted, timeout_s

    # -- delivery -----------------------------------------------------------------------

    async def _deliver_batch(self, batch: list[_Outgoing]) -> None:
        for outgoing in batch:
            for copy in range(1 + outgoing.copies):
                await self._deliver(outgoing, copy)

    async def _deliver(self, out: _Outgoing, copy: int) -> bool:
        session = self._session
        if session is None:
            return False
        tries = 1 + max(0, self.config.webhook_max_retries)
        timeout = aiohttp.ClientTimeout(total=out.timeout_s)
        for attempt in range(1, tries + 1):
            signature = sign(
                out.body, api_key=self.config.api_key, timestamp_ms=self.state.now_ms()
            )
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
            status: int | None = None
            error: str | None = None
            try:
                async with session.post(
                    out.url, data=out.body, headers=headers, timeout=timeout
                ) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            result = DeliveryAttempt(
                out.event, out.session_id, out.url, attempt, copy, status, error
            )
            self.attempts.append(result)
            if result.ok:
                return True
            if attempt < tries:
                await asyncio.sleep(self.config.webhook_retry_backoff_s * 2 ** (attempt - 1))
        logger.warning(
            "webhook %s for %s to %s failed after %d attempts",
            out.event,
            out.session_id,
            out.url,
            tries,
        )
        return False
