"""Records to response bodies, shaped like the spec's response schemas.

Everything a finished call reports (transcript, latency, cost, analysis) is synthesised on read
from the call's own seed, so it is deterministic and costs nothing until asked for.
"""

from __future__ import annotations

import random

from aioretell.llm.latency import latency_stats

from .listing import Lazy
from .state import JSON, CallRecord, ChatRecord, EmulatorState

_SCRIPT = (
    ("agent", "Hi{name}, this is an emulated Retell agent calling."),
    ("user", "Hi, what is this about?"),
    ("agent", "Just a quick check-in about your recent request."),
    ("user", "Sounds good, thanks for calling."),
    ("agent", "Happy to help. Have a nice day!"),
    ("user", "You too, bye."),
)
_HANGUPS = ("agent_hangup", "user_hangup")
_SENTIMENTS = ("Positive", "Neutral", "Negative")
_PRICE_CENTS_PER_S = {"retell_platform": 0.1167, "elevenlabs_tts": 0.0117, "gpt_4o_mini": 0.0017}
_STORAGE = "https://emulator.invalid/calls"
_TRANSCRIPT_FIELDS = ("transcript", "transcript_object", "transcript_with_tool_calls")
WEB_TOKEN_TTL_MS = 30_000


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def render_call(
    call: CallRecord, state: EmulatorState, *, transcript: bool = True, at: float | None = None
) -> JSON:
    """A call as get-call answers it; ``transcript=False`` gives the list-calls (v3) shape.

    ``at``: render the call as it was at that clock time instead of now (webhook payloads).
    """
    status = call.status(state.now() if at is None else at)
    out = _call_head(call, state, status)
    out.update(_call_rest(call, status, transcript))
    return out


def call_view(call: CallRecord, state: EmulatorState, at: float) -> Lazy:
    """What list-calls' filters read of ``call`` at clock time ``at``: its cheap fields at
    once, the rest of its list-calls rendering only when a filter asks for one of them."""
    status = call.status(at)
    head = _call_head(call, state, status)
    return Lazy(head, lambda: {**head, **_call_rest(call, status, False)})


def _call_head(call: CallRecord, state: EmulatorState, status: str) -> JSON:
    """The fields of a rendered call that cost nothing to make; the rest of the rendering
    adds fields to them and changes none."""
    out: JSON
    if call.call_type == "phone_call":
        out = {
            "call_type": "phone_call",
            "from_number": call.from_number or "",
            "to_number": call.to_number or "",
            "direction": call.direction or "outbound",
        }
    else:
        out = {"call_type": "web_call", "access_token": call.access_token or ""}
    out["call_id"] = call.call_id
    out["agent_id"] = call.agent_id
    agent = state.agents.get(call.agent_id)
    if agent is not None and isinstance(agent.get("agent_name"), str):
        out["agent_name"] = agent["agent_name"]
    out["agent_version"] = call.agent_version
    out["call_status"] = status
    out["metadata"] = call.metadata
    out["retell_llm_dynamic_variables"] = call.dynamic_variables
    if call.custom_sip_headers is not None:
        out["custom_sip_headers"] = call.custom_sip_headers
    if call.custom_attributes is not None:
        out["custom_attributes"] = call.custom_attributes
    out["data_storage_setting"] = call.data_storage_setting
    out["opt_in_signed_url"] = False
    if status in ("ongoing", "ended") and _connected(call):
        out["start_timestamp"] = _ms(call.connect_at)
    if status in ("not_connected", "ended"):
        out["end_timestamp"] = _ms(call.end_at)
    if status == "not_connected":
        out["disconnection_reason"] = call.rejected_reason
    return out


def _call_rest(call: CallRecord, status: str, transcript: bool) -> JSON:
    """The fields a rendered call has beyond its head: what a call that ended reports, or
    what its live conversation has said so far."""
    if status == "ended":
        if transcript or call.conversation is not None:
            return _ended_fields(call, _connected(call), transcript)
        # The same for as long as these times stay (the rest of what it is made from is
        # fixed at creation): made once, not at every poll.
        made_from = (call.connect_at, call.end_at, call.stopped_at)
        kept = call.listed_report
        if kept is None or kept[0] != made_from:
            kept = call.listed_report = (made_from, _ended_fields(call, _connected(call), False))
        return kept[1]
    if status == "ongoing" and call.conversation is not None:
        live = call.conversation.call_fields(transcript=transcript)
        live.pop("disconnection_reason", None)  # decided, but the call has not ended yet
        return live
    return {}


def _connected(call: CallRecord) -> bool:
    return call.rejected_reason is None and call.end_at > call.connect_at


def _ended_fields(call: CallRecord, connected: bool, with_transcript: bool) -> JSON:
    rng = random.Random(call.outcome_seed)
    # A live conversation (custom-LLM agent) says what was said and how it ended.
    live = call.conversation.call_fields(transcript=True) if call.conversation else None
    reason = live.pop("disconnection_reason", None) if live is not None else None
    if reason is None:
        reason = "manual_stopped" if call.stopped_at == call.end_at else rng.choice(_HANGUPS)
    start = call.connect_at if connected else call.end_at
    duration_ms = _ms(call.end_at) - _ms(start)
    out: JSON = {"duration_ms": duration_ms, "disconnection_reason": reason}
    if live is not None:
        turns = live["transcript_object"]
        if not with_transcript:
            for name in _TRANSCRIPT_FIELDS:
                live.pop(name, None)
    else:
        turns = _turns(call, duration_ms / 1000, rng) if connected else []
        if with_transcript:
            out["transcript"] = "\n".join(
                f"{t['role'].capitalize()}: {t['content']}" for t in turns
            )
            out["transcript_object"] = turns
            out["transcript_with_tool_calls"] = turns
    url = f"{_STORAGE}/{call.call_id}"
    out["recording_url"] = f"{url}/recording.wav"
    out["public_log_url"] = f"{url}/public_log.txt"
    e2e = [float(rng.randint(550, 1500)) for _ in range(max(1, len(turns) // 2))]
    out["latency"] = {"e2e": latency_stats(e2e), "llm": latency_stats([v * 0.45 for v in e2e])}
    out["call_cost"] = _call_cost(duration_ms / 1000)
    out["call_analysis"] = {
        "call_summary": f"Emulated call with {len(turns)} turns, ended by {reason}.",
        "in_voicemail": False,
        "user_sentiment": rng.choice(_SENTIMENTS),
        "call_successful": reason != "manual_stopped",
        "custom_analysis_data": {},
    }
    if live is not None:
        out.update(live)
    return out


def _turns(call: CallRecord, duration_s: float, rng: random.Random) -> list[JSON]:
    name = call.dynamic_variables.get("customer_name")
    count = max(1, min(len(_SCRIPT), int(duration_s / 2) + 1))
    slot = duration_s / count
    turns: list[JSON] = []
    for index, (role, text) in enumerate(_SCRIPT[:count]):
        content = text.format(name=f" {name}" if name else "")
        words = content.split()
        begin = index * slot + 0.2 * slot * rng.random()
        step = 0.8 * slot / len(words)
        timed = [
            {
                "word": w,
                "start": round(begin + i * step, 3),
                "end": round(begin + (i + 1) * step, 3),
            }
            for i, w in enumerate(words)
        ]
        turns.append({"role": role, "content": content, "words": timed})
    return turns


def _call_cost(seconds: float) -> JSON:
    costs = {name: round(price * seconds, 4) for name, price in _PRICE_CENTS_PER_S.items()}
    return {
        "product_costs": [
            {"product": name, "unit_price": _PRICE_CENTS_PER_S[name], "cost": cost}
            for name, cost in costs.items()
        ],
        "total_duration_seconds": round(seconds, 3),
        "total_duration_unit_price": round(sum(_PRICE_CENTS_PER_S.values()), 4),
        "combined_cost": round(sum(costs.values()), 4),
    }


def render_web_call_created(call: CallRecord) -> JSON:
    """The create-web-call (v3) answer: browser connection details only."""
    return {
        "call_id": call.call_id,
        "access_token": call.access_token or "",
        "transport": "gateway",
        "ice_servers": [{"urls": ["stun:stun.emulator.invalid:3478"]}],
        "expires_at": _ms(call.created_at) + WEB_TOKEN_TTL_MS,
    }


def render_chat(chat: ChatRecord) -> JSON:
    out = _chat_head(chat)
    out.update(_chat_rest(chat))
    return out


def chat_view(chat: ChatRecord) -> Lazy:
    """What list-chats' filters read of ``chat``: its cheap fields at once, the rest of its
    rendering (the transcript, what an ended chat reports) only when a filter asks for it."""
    head = _chat_head(chat)
    return Lazy(head, lambda: {**head, **_chat_rest(chat)})


def _chat_head(chat: ChatRecord) -> JSON:
    return {
        "chat_id": chat.chat_id,
        "agent_id": chat.agent_id,
        "version": chat.agent_version,
        "chat_status": chat.status,
        "chat_type": chat.chat_type,
        "retell_llm_dynamic_variables": chat.dynamic_variables,
        "metadata": chat.metadata,
        "start_timestamp": chat.start_ms,
    }


def _chat_rest(chat: ChatRecord) -> JSON:
    out: JSON = {
        "transcript": "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in chat.messages),
        "message_with_tool_calls": chat.messages,
    }
    if chat.end_ms is not None:
        user_turns = sum(1 for m in chat.messages if m["role"] == "user")
        out["end_timestamp"] = chat.end_ms
        out["chat_cost"] = {
            "product_costs": [
                {"product": "retell_chat", "unit_price": 0.2, "cost": 0.2 * user_turns}
            ],
            "combined_cost": 0.2 * user_turns,
        }
        out["chat_analysis"] = {
            "chat_summary": f"Emulated chat with {len(chat.messages)} messages.",
            "user_sentiment": "Neutral",
            "chat_successful": True,
            "custom_analysis_data": {},
        }
    return out


def render_concurrency(state: EmulatorState) -> JSON:
    limit = state.config.concurrency_limit
    return {
        "current_concurrency": state.current_concurrency(),
        "concurrency_limit": limit,
        "base_concurrency": limit,
        "purchased_concurrency": 0,
        "concurrency_purchase_limit": 100,
        "remaining_purchase_limit": 100,
        "reserved_inbound_concurrency": state.config.reserved_inbound_concurrency,
        "concurrency_burst_enabled": False,
        "concurrency_burst_limit": 0,
    }
