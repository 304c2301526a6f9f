"""The in-memory account: agents, LLMs, calls and chats, the call lifecycle, and a generic
store per other resource (see :mod:`.crud`).

No background tasks: a call's status is derived from timestamps whenever it is read. A call is
``registered`` for ``ring_duration_s`` after creation, then ``ongoing`` for ``call_duration_s``
(or a duration drawn from ``call_duration_range_s``), then ``ended``. Stopping a call moves its
end to now; a call created while the concurrency limit is reached is ``not_connected`` from the
start.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .catalog import BUILTIN_VOICES
from .config import EmulatorConfig

JSON = dict[str, Any]

DEFAULT_LLM_ID = "llm_emulator_default"
DEFAULT_AGENT_ID = "agent_emulator_default"
DEFAULT_CHAT_AGENT_ID = "agent_emulator_default_chat"
IDEMPOTENCY_WINDOW_S = 3600.0
TERMINAL_CALL_STATUSES = frozenset({"ended", "not_connected", "error"})


class CallConversation(Protocol):
    """A conversation played live during a call (custom-LLM agents: ``emulator.custom_llm``)."""

    def call_fields(self, *, transcript: bool) -> JSON:
        """Call fields as the conversation has them so far, rendered over the synthesised
        ones: ``latency``; ``transcript``, ``transcript_object`` and
        ``transcript_with_tool_calls`` if ``transcript``; ``disconnection_reason`` and
        ``transfer_destination`` once decided."""
        ...


@dataclass(slots=True)
class CallRecord:
    call_id: str
    call_type: str  # "phone_call" | "web_call"
    agent_id: str
    agent_version: int
    created_at: float
    connect_at: float
    natural_end_at: float
    outcome_seed: int
    from_number: str | None = None
    to_number: str | None = None
    direction: str | None = None
    metadata: JSON = field(default_factory=dict)
    dynamic_variables: dict[str, str] = field(default_factory=dict)
    custom_sip_headers: dict[str, str] | None = None
    data_storage_setting: str = "everything"
    custom_attributes: JSON | None = None
    access_token: str | None = None
    #: Set when the call never connected (e.g. "concurrency_limit_reached").
    rejected_reason: str | None = None
    stopped_at: float | None = None
    #: Set while and after a live conversation decides how the call goes (see hold_open).
    conversation: CallConversation | None = None
    #: the create's ``idempotency_key``, if it had one
    idempotency_key: str | None = None
    #: placed outbound by create-phone-call (its ``to_number`` counts as dialled)
    dialed: bool = False
    #: What the call reported at its end in the list-calls shape, kept by the renderer with
    #: the times it was made from (list-calls polls read ended calls over and over)
    listed_report: tuple[tuple[float, float, float | None], JSON] | None = None

    @property
    def end_at(self) -> float:
        if self.rejected_reason is not None:
            return self.created_at
        if self.stopped_at is not None and self.stopped_at < self.natural_end_at:
            return self.stopped_at
        return self.natural_end_at

    def status(self, now: float) -> str:
        if self.rejected_reason is not None:
            return "not_connected"
        end = self.end_at
        if now >= end:
            return "ended"
        return "registered" if now < self.connect_at else "ongoing"


@dataclass(slots=True)
class ChatRecord:
    chat_id: str
    agent_id: str
    agent_version: int
    chat_type: str  # "api_chat" | "sms_chat"
    start_ms: int
    metadata: JSON = field(default_factory=dict)
    dynamic_variables: dict[str, str] = field(default_factory=dict)
    messages: list[JSON] = field(default_factory=list)
    end_ms: int | None = None

    @property
    def status(self) -> str:
        return "ongoing" if self.end_ms is None else "ended"


class EmulatorState:
    """Everything the emulated account holds. Handlers are its only writers."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._rng = random.Random(f"ids:{config.seed}")
        # Its own generator, so drawing durations leaves ids and outcomes as they were.
        self._durations = random.Random(f"durations:{config.seed}")
        self.calls: dict[str, CallRecord] = {}
        self.chats: dict[str, ChatRecord] = {}
        #: Records of the table-driven resources: store name -> record id -> record.
        self.records: dict[str, dict[str, JSON]] = {
            "voices": {v["voice_id"]: dict(v) for v in BUILTIN_VOICES}
        }
        #: The agent and LLM stores, named for the handlers that reach into them.
        self.llms = self.store("llms")
        self.agents = self.store("agents")
        self.chat_agents = self.store("chat_agents")
        #: Earlier versions of voice and chat agents: agent id -> version -> snapshot.
        #: The agent record itself (``agents`` / ``chat_agents``) is the newest version.
        self.agent_versions: dict[str, dict[int, JSON]] = {}
        #: Account-wide background jobs (contact import, backfill, CRM sync) by kind.
        self.jobs: dict[str, JSON] = {}
        self._dialed: list[str] = []
        self._idempotency: dict[str, tuple[str, float]] = {}
        # Calls holding a concurrency slot: call_id -> end time, plus a heap to expire them.
        self._active: dict[str, float] = {}
        self._ends: list[tuple[float, str]] = []
        #: Called with ``(change, record)`` when a call or chat is created or ended early:
        #: ``"call_created"``, ``"call_stopped"``, ``"chat_created"``, ``"chat_ended"``.
        #: Webhook delivery (``emulator.webhooks``) listens here.
        self.lifecycle_listeners: list[Callable[[str, CallRecord | ChatRecord], None]] = []
        #: Called with ``(agent_id, fields)`` before a call is created; raising
        #: ``registry.ApiError`` refuses the request (custom-LLM scripts are checked here).
        self.call_checks: list[Callable[[str, JSON], None]] = []
        engine = {"type": "retell-llm", "llm_id": DEFAULT_LLM_ID, "version": 0}
        seeded = {"version": 0, "is_published": False, "last_modification_timestamp": self.now_ms()}
        self.llms[DEFAULT_LLM_ID] = {"llm_id": DEFAULT_LLM_ID, **seeded}
        self.agents[DEFAULT_AGENT_ID] = {
            "agent_id": DEFAULT_AGENT_ID,
            "agent_name": "Emulator voice agent",
            "response_engine": engine,
            "voice_id": "11labs-Adrian",
            **seeded,
        }
        self.chat_agents[DEFAULT_CHAT_AGENT_ID] = {
            "agent_id": DEFAULT_CHAT_AGENT_ID,
            "agent_name": "Emulator chat agent",
            "response_engine": engine,
            **seeded,
        }

    # -- time and ids -------------------------------------------------------------------

    def now(self) -> float:
        return self.config.clock()

    def now_ms(self) -> int:
        return int(self.config.clock() * 1000)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{self._rng.getrandbits(128):032x}"

    def _notify(self, change: str, record: CallRecord | ChatRecord) -> None:
        for listener in self.lifecycle_listeners:
            listener(change, record)

    def store(self, name: str) -> dict[str, JSON]:
        """The records of one table-driven resource (created empty on first use)."""
        return self.records.setdefault(name, {})

    # -- calls --------------------------------------------------------------------------

    def dialed_numbers(self) -> list[str]:
        """``to_number`` of every phone call placed with create-phone-call, in order."""
        return list(self._dialed)

    def current_concurrency(self) -> int:
        now = self.now()
        while self._ends and self._ends[0][0] <= now:
            end, call_id = heapq.heappop(self._ends)
            if self._active.get(call_id) == end:
                del self._active[call_id]
        return len(self._active)

    def idempotent_call(self, key: str) -> CallRecord | None:
        """The call made earlier with ``key`` within the idempotency window, if any."""
        hit = self._idempotency.get(key)
        if hit is None or self.now() - hit[1] > IDEMPOTENCY_WINDOW_S:
            return None
        return self.calls.get(hit[0])

    def create_call(
        self,
        call_type: str,
        agent_id: str,
        *,
        idempotency_key: str | None = None,
        dial: bool = False,
        **fields: Any,
    ) -> CallRecord:
        """Create a call; it starts ringing now unless the concurrency limit is reached.

        ``dial``: Retell places this call outbound (create-phone-call), so it may not use the
        slots reserved for inbound calls and its ``to_number`` counts as dialled.
        """
        for check in self.call_checks:
            check(agent_id, fields)
        now = self.now()
        limit = self.config.concurrency_limit
        if dial:
            limit -= self.config.reserved_inbound_concurrency
        agent = self.agents.get(agent_id)
        call = CallRecord(
            call_id=self.new_id("call_"),
            call_type=call_type,
            agent_id=agent_id,
            agent_version=int(agent.get("version", 0)) if agent else 0,
            created_at=now,
            connect_at=now + self.config.ring_duration_s,
            natural_end_at=now + self.config.ring_duration_s + self._call_duration(),
            outcome_seed=self._rng.getrandbits(32),
            idempotency_key=idempotency_key,
            dialed=dial,
            **fields,
        )
        forced = self._forced_outcome(call.to_number) if dial else None
        if forced is not None:
            call.rejected_reason = forced
        elif self.current_concurrency() >= limit:
            call.rejected_reason = "concurrency_limit_reached"
        else:
            self._active[call.call_id] = call.natural_end_at
            heapq.heappush(self._ends, (call.natural_end_at, call.call_id))
        self.calls[call.call_id] = call
        if dial and call.to_number is not None:
            self._dialed.append(call.to_number)
        if idempotency_key is not None:
            self._idempotency[idempotency_key] = (call.call_id, now)
        self._notify("call_created", call)
        return call

    def _call_duration(self) -> float:
        span = self.config.call_duration_range_s
        if span is None:
            return self.config.call_duration_s
        return self._durations.uniform(*span)

    def restore_call(self, call: CallRecord) -> None:
        """Put back a call an earlier emulator made (read from its record): it keeps its id,
        its idempotency key and, while it lasts, its concurrency slot."""
        if call.call_id in self.calls:
            raise ValueError(f"call {call.call_id} already exists")
        self.calls[call.call_id] = call
        if call.idempotency_key is not None:
            self._idempotency[call.idempotency_key] = (call.call_id, call.created_at)
        if call.rejected_reason is None and call.end_at > self.now():
            self._active[call.call_id] = call.end_at
            heapq.heappush(self._ends, (call.end_at, call.call_id))
        if call.dialed and call.to_number is not None:
            self._dialed.append(call.to_number)

    def _forced_outcome(self, to_number: str | None) -> str | None:
        for suffix, reason in self.config.outcomes_by_suffix:
            if to_number is not None and to_number.endswith(suffix):
                return reason
        return None

    def stop_call(self, call: CallRecord) -> None:
        """End a call now; a call that already ended is left as it was."""
        now = self.now()
        if call.status(now) not in TERMINAL_CALL_STATUSES:
            call.stopped_at = now
            self._release(call.call_id)
            self._notify("call_stopped", call)

    def hold_open(self, call: CallRecord) -> None:
        """Keep ``call`` going until :meth:`end_held_call` (or stop-call) ends it: a live
        conversation decides when, not ``call_duration_s``."""
        call.natural_end_at = math.inf
        if call.call_id in self._active:
            self._active[call.call_id] = math.inf

    def end_held_call(self, call: CallRecord) -> None:
        """End a call kept open by :meth:`hold_open` now (not before it connects); a call
        that already ended is left as it was."""
        now = self.now()
        if call.status(now) in TERMINAL_CALL_STATUSES:
            return
        call.natural_end_at = max(now, call.connect_at)
        self._release(call.call_id)
        self._notify("call_stopped", call)

    def delete_call(self, call: CallRecord) -> None:
        del self.calls[call.call_id]
        self._release(call.call_id)

    def _release(self, call_id: str) -> None:
        # The heap entry goes stale; current_concurrency() skips it.
        self._active.pop(call_id, None)

    # -- chats --------------------------------------------------------------------------

    def create_chat(self, agent: JSON, chat_type: str, **fields: Any) -> ChatRecord:
        chat = ChatRecord(
            chat_id=self.new_id("chat_"),
            agent_id=agent["agent_id"],
            agent_version=int(agent.get("version", 0)),
            chat_type=chat_type,
            start_ms=self.now_ms(),
            **fields,
        )
        self.chats[chat.chat_id] = chat
        self._notify("chat_created", chat)
        return chat

    def add_message(self, chat: ChatRecord, role: str, content: str) -> JSON:
        message = {
            "message_id": self.new_id("msg_"),
            "role": role,
            "content": content,
            "created_timestamp": self.now_ms(),
        }
        chat.messages.append(message)
        return message

    def end_chat(self, chat: ChatRecord) -> None:
        """End a chat; ending an ended chat changes nothing."""
        if chat.end_ms is None:
            chat.end_ms = self.now_ms()
            self._notify("chat_ended", chat)
