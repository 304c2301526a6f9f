"""Calls to custom-LLM agents: the emulator plays Retell on the agent's LLM WebSocket.

While an :class:`~aioretell.emulator.Emulator` runs, a call (phone, web or registered) whose
agent has ``response_engine: {"type": "custom-llm", "llm_websocket_url": ...}`` no longer
follows ``call_duration_s``: once it has rung, the emulator connects to
``{llm_websocket_url}/{call_id}`` and plays a scripted caller through
:class:`~aioretell.llm.retell_side.RetellSide` (the driver ``aioretell llm-test`` uses too).
The call ends when the conversation does, with its disconnection reason (``user_hangup`` when
the script runs out, ``agent_hangup``, ``call_transfer``, ``error_llm_websocket_*``); get-call
and the webhooks carry the transcript (also while the call is ongoing), and
``latency.llm`` (first chunk of each answer) and ``latency.llm_websocket_network_rtt`` (ping
round trips) as measured. Stop-call hangs up at once (``manual_stopped``).

The script is ``EmulatorConfig.llm_script`` (default: ``DEFAULT_SCRIPT``), or per call
``metadata["aioretell_llm_script"]`` in the ``aioretell llm-test`` script format (checked when
the call is created: a bad one is a 400). The agent's ``reminder_trigger_ms`` and
``reminder_max_count`` override the script's.

Each conversation is a task owned here: stopping the emulator cancels and awaits them all; a
conversation that fails on our side (a bug) is logged and ends its call with ``error_retell``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import aiohttp
import msgspec

from aioretell.llm.latency import latency_stats
from aioretell.llm.retell_side import RetellSide
from aioretell.llm.script import DEFAULT_SCRIPT, ConversationScript, ScriptError, parse_script
from aioretell.types import CallResponse

from .config import EmulatorConfig
from .registry import ApiError
from .render import render_call
from .state import JSON, CallRecord, ChatRecord, EmulatorState

__all__ = ["SCRIPT_METADATA_KEY", "LiveCalls"]

logger = logging.getLogger("aioretell.emulator")

#: The call metadata key holding a per-call script.
SCRIPT_METADATA_KEY = "aioretell_llm_script"
#: Our side failed (not the LLM server): Retell's own error reason.
_OUR_ERROR = "error_retell"
_SECONDS_PER_WORD = 0.3


def _custom_llm_url(agent: JSON | None) -> str | None:
    """The agent's ``llm_websocket_url`` if it answers through a custom LLM."""
    engine = agent.get("response_engine") if agent is not None else None
    if not isinstance(engine, dict) or engine.get("type") != "custom-llm":
        return None
    url = engine.get("llm_websocket_url")
    return url if isinstance(url, str) else ""


def _words(content: str, started_s: float) -> list[JSON]:
    """Word timings from when the utterance began, at an even speaking pace (the emulator
    hears no audio)."""
    return [
        {
            "word": word,
            "start": round(started_s + i * _SECONDS_PER_WORD, 3),
            "end": round(started_s + (i + 1) * _SECONDS_PER_WORD, 3),
        }
        for i, word in enumerate(content.split())
    ]


def _ms(values: list[float]) -> list[float]:
    return [round(value * 1000, 3) for value in values]


class _Conversation:
    """A call's live conversation, as :class:`~.state.CallConversation` renders it."""

    def __init__(self, side: RetellSide | None) -> None:
        #: ``None`` when the agent's URL is not a WebSocket URL: the call fails to open it.
        self.side = side

    def call_fields(self, *, transcript: bool) -> JSON:
        if self.side is None:
            out: JSON = {"disconnection_reason": "error_llm_websocket_open", "latency": {}}
            if transcript:
                out.update(transcript="", transcript_object=[], transcript_with_tool_calls=[])
            return out
        result = self.side.result
        out = {}
        if transcript:
            items: list[JSON] = []
            spoken: list[JSON] = []
            for item, started_s in zip(result.transcript, result.started_s, strict=True):
                data = {k: v for k, v in msgspec.to_builtins(item).items() if v is not None}
                if item.role in ("agent", "user"):
                    if not item.content:
                        continue
                    data = {
                        "role": item.role,
                        "content": item.content,
                        "words": _words(item.content, started_s),
                    }
                    spoken.append(data)
                items.append(data)
            out["transcript"] = "\n".join(
                f"{item['role'].capitalize()}: {item['content']}" for item in spoken
            )
            out["transcript_object"] = spoken
            out["transcript_with_tool_calls"] = items
        latency: JSON = {}
        first_chunks = [
            t.first_chunk_s
            for t in result.turns
            if t.kind != "begin" and t.first_chunk_s is not None
        ]
        if first_chunks:
            latency["llm"] = latency_stats(_ms(first_chunks))
        if result.ping_rtts_s:
            latency["llm_websocket_network_rtt"] = latency_stats(_ms(result.ping_rtts_s))
        out["latency"] = latency
        if result.disconnection_reason is not None:
            out["disconnection_reason"] = result.disconnection_reason
        if result.transfer_destination is not None:
            out["transfer_destination"] = result.transfer_destination
        return out


class LiveCalls:
    """Runs the conversations of custom-LLM calls while the emulator is up."""

    def __init__(self, state: EmulatorState, config: EmulatorConfig) -> None:
        self.state = state
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        state.call_checks.append(self._check_script)
        state.lifecycle_listeners.append(self._on_change)

    @property
    def running(self) -> bool:
        return self._session is not None

    async def start(self) -> None:
        if self._session is not None:
            raise RuntimeError("live calls are already running")
        # No connection limit: every ongoing call holds one WebSocket.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def stop(self) -> None:
        """Cancel every conversation, wait for them, and end their calls (``manual_stopped``)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for call in self.state.calls.values():
            if call.conversation is not None:
                self.state.stop_call(call)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def wait(self) -> None:
        """Wait until every conversation running now has ended (for tests)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    # -- hooks into the call lifecycle ----------------------------------------------------

    def _check_script(self, agent_id: str, fields: JSON) -> None:
        metadata = fields.get("metadata")
        if isinstance(metadata, dict) and SCRIPT_METADATA_KEY in metadata:
            try:
                parse_script(metadata[SCRIPT_METADATA_KEY])
            except ScriptError as exc:
                raise ApiError(400, f"metadata.{SCRIPT_METADATA_KEY}: {exc}") from None

    def _on_change(self, change: str, record: CallRecord | ChatRecord) -> None:
        if not isinstance(record, CallRecord):
            return
        if change == "call_created":
            self._begin(record)
        elif change == "call_stopped" and isinstance(record.conversation, _Conversation):
            side = record.conversation.side
            if side is not None:
                side.hang_up("manual_stopped")

    def _begin(self, call: CallRecord) -> None:
        session = self._session
        if session is None or call.rejected_reason is not None:
            return
        url = _custom_llm_url(self.state.agents.get(call.agent_id))
        if url is None:
            return
        self.state.hold_open(call)
        try:
            side = RetellSide(
                session,
                url,
                call.call_id,
                self._script(call),
                timings=self.config.llm_timings,
                call_details=lambda: msgspec.convert(
                    render_call(call, self.state), CallResponse, strict=False
                ),
            )
        except ValueError as exc:
            logger.warning("call %s cannot reach its custom LLM: %s", call.call_id, exc)
            call.conversation = _Conversation(None)
            task = asyncio.create_task(self._end_at_once(call))
        else:
            call.conversation = _Conversation(side)
            task = asyncio.create_task(self._converse(call, side))
        task.set_name(f"aioretell-emulator-llm-{call.call_id}")
        self._tasks[call.call_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(call.call_id, None))

    def _script(self, call: CallRecord) -> ConversationScript:
        raw: Any = call.metadata.get(SCRIPT_METADATA_KEY)
        script = parse_script(raw) if raw is not None else self.config.llm_script
        script = script or DEFAULT_SCRIPT
        agent = self.state.agents.get(call.agent_id) or {}
        trigger = agent.get("reminder_trigger_ms")
        count = agent.get("reminder_max_count")
        if isinstance(trigger, int | float) and not isinstance(trigger, bool) and trigger > 0:
            script = dataclasses.replace(script, reminder_trigger_s=trigger / 1000)
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            script = dataclasses.replace(script, reminder_max_count=count)
        return script

    async def _end_at_once(self, call: CallRecord) -> None:
        await self._ring(call)
        self.state.end_held_call(call)

    async def _ring(self, call: CallRecord) -> None:
        await asyncio.sleep(max(0.0, call.connect_at - self.state.now()))

    async def _converse(self, call: CallRecord, side: RetellSide) -> None:
        try:
            await self._ring(call)
            await side.run()
        except Exception:
            logger.exception("the emulated Retell side of call %s failed", call.call_id)
            side.hang_up(_OUR_ERROR, "the emulator failed")
        self.state.end_held_call(call)
