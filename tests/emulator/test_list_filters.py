"""list-calls and list-chats filter, order and page their records before rendering any: the
pages must be exactly those of rendering every record, filtering the renderings and slicing."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from aioretell.emulator import EmulatorConfig, ManualClock
from aioretell.emulator.handlers.calls import list_calls
from aioretell.emulator.handlers.chats import list_chats
from aioretell.emulator.listing import match_criteria
from aioretell.emulator.registry import ApiError, Reply, Request
from aioretell.emulator.render import render_call, render_chat
from aioretell.emulator.state import DEFAULT_AGENT_ID, JSON, EmulatorState

START = 1_700_000_000.0
TERMINAL = ["ended", "not_connected", "error"]


class _Talk:
    """A live conversation's fields (a custom-LLM call's), as the renderer reads them."""

    def call_fields(self, *, transcript: bool) -> JSON:
        fields: JSON = {"transfer_destination": "+14155550999", "disconnection_reason": "x"}
        if transcript:
            turns = [{"role": "agent", "content": "hi", "words": []}]
            fields.update(
                transcript="Agent: hi", transcript_object=turns, transcript_with_tool_calls=turns
            )
        return fields


def _eq(key: str, value: Any, kind: str = "string") -> JSON:
    return {"type": kind, "op": "eq", "key": key, "value": value}


def _calls(state: EmulatorState, clock: ManualClock) -> None:
    """Calls in every state: ringing, ongoing (one in a live conversation), ended, stopped,
    refused a line, forced not to connect; phone and web calls, two agents, metadata."""
    agents = (DEFAULT_AGENT_ID, "agent_other")
    for i in range(24):
        clock.advance(0.7)
        fields: JSON = {
            "metadata": {"batch": i % 3, "tag": "ab"[i % 2]},
            "dynamic_variables": {"customer_name": f"N{i % 4}"} if i % 5 else {},
        }
        if i % 7 == 3:
            call = state.create_call("web_call", agents[i % 2], access_token=f"t{i}", **fields)
        else:
            number = f"+1415555{i:04d}" if i != 9 else "+14155550013"  # ...13: busy
            call = state.create_call(
                "phone_call",
                agents[i % 2],
                dial=True,
                from_number="+14155550100",
                to_number=number,
                direction="outbound",
                **fields,
            )
        if i % 6 == 5:
            call.custom_attributes = {"tier": i % 2}
        if i in (19, 20):
            call.conversation = _Talk()
        if i in (4, 11):
            state.stop_call(call)
        if i % 4 == 0:
            clock.advance(3.0)  # some end before the next begins, some overlap


def _chats(state: EmulatorState, clock: ManualClock) -> None:
    agent = state.chat_agents["agent_emulator_default_chat"]
    for i in range(9):
        clock.advance(1.0)
        chat = state.create_chat(agent, "api_chat", metadata={"batch": i % 2})
        for turn in range(i % 3):
            state.add_message(chat, "user", f"m{turn}")
        if i % 2:
            state.end_chat(chat)


def _state(**config: Any) -> tuple[EmulatorState, ManualClock]:
    clock = ManualClock(START)
    settings: JSON = {
        "api_key": "key_test",
        "concurrency_limit": 4,
        "ring_duration_s": 1.0,
        "call_duration_range_s": (1.0, 9.0),
        "outcomes_by_suffix": (("13", "dial_busy"),),
        "clock": clock,
    }
    settings.update(config)
    return EmulatorState(EmulatorConfig(**settings)), clock


def _reference(body: JSON, rendered: list[JSON], id_field: str) -> JSON:
    """Render everything, filter, order, page: what the answer must be."""
    criteria = body.get("filter_criteria") or {}
    matching = [item for item in rendered if match_criteria(criteria, item)]
    if body.get("sort_order") != "ascending":
        matching.reverse()
    start = 0
    if "pagination_key" in body:
        ids = [item[id_field] for item in matching]
        if body["pagination_key"] not in ids:
            return {"error": 400}
        start = ids.index(body["pagination_key"]) + 1
    start += body.get("skip", 0)
    limit = body.get("limit", 50)
    out: JSON = {"items": matching[start : start + limit]}
    out["has_more"] = start + limit < len(matching)
    if out["has_more"] and out["items"]:
        out["pagination_key"] = out["items"][-1][id_field]
    if body.get("include_total"):
        out["total"] = len(matching)
    return out


def _answer(handler: Callable[[Request], Reply], state: EmulatorState, body: JSON) -> JSON:
    try:
        reply = handler(Request(state, {}, body, {}))
    except ApiError as exc:
        return {"error": exc.status}
    assert reply.status == 200
    answer: JSON = reply.body
    return answer


def _walk(
    handler: Callable[[Request], Reply],
    state: EmulatorState,
    rendered: list[JSON],
    id_field: str,
    body: JSON,
) -> int:
    """Every page of ``body``'s listing, cursor after cursor, against the reference; returns
    how many items were listed."""
    listed = 0
    while True:
        expected = _reference(body, rendered, id_field)
        assert _answer(handler, state, body) == expected, body
        listed += len(expected["items"])
        if not expected["has_more"]:
            return listed
        body = {**body, "pagination_key": expected["pagination_key"]}
        body.pop("skip", None)  # list-calls and list-chats take one or the other


CALL_CRITERIA: list[JSON] = [
    {},
    {"metadata": [_eq("batch", 0, "number")]},
    {"metadata": [_eq("batch", 1, "number"), _eq("tag", "b")]},
    {"agent": [{"agent_id": "agent_other"}]},
    {"call_status": {"type": "enum", "op": "in", "value": TERMINAL}},
    {"call_status": {"type": "enum", "op": "eq", "value": "ongoing"}},
    {"call_status": {"type": "enum", "op": "eq", "value": "registered"}},
    {
        "metadata": [_eq("tag", "a")],
        "call_status": {"type": "enum", "op": "in", "value": TERMINAL},
        "end_timestamp": {"type": "number", "op": "ge", "value": int(START * 1000) + 9000},
    },
    {"end_timestamp": {"type": "number", "op": "np"}},
    {"start_timestamp": {"type": "number", "op": "lt", "value": int(START * 1000) + 12000}},
    {"duration_ms": {"type": "number", "op": "gt", "value": 4000}},
    {"disconnection_reason": {"type": "enum", "op": "eq", "value": "manual_stopped"}},
    {"disconnection_reason": {"type": "enum", "op": "in", "value": ["dial_busy"]}},
    {"disconnection_reason": {"type": "enum", "op": "eq", "value": "concurrency_limit_reached"}},
    {"user_sentiment": {"type": "enum", "op": "eq", "value": "Positive"}},
    {"combined_cost": {"type": "number", "op": "gt", "value": 0.5}},
    {"e2e_latency_p50": {"type": "number", "op": "pr"}},
    {"transfer_destination": {"type": "string", "op": "pr"}},
    {"dynamic_variables": [_eq("customer_name", "N1")]},
    {"custom_attributes": [_eq("tier", 1, "number")]},
    {"call_type": {"type": "enum", "op": "eq", "value": "web_call"}},
    {"to_number": {"type": "string", "op": "sw", "value": "+141555500"}},
    {"metadata": [_eq("batch", 7, "number")]},
]

PAGING: list[JSON] = [
    {},
    {"limit": 1},
    {"limit": 2, "sort_order": "ascending"},
    {"limit": 3, "include_total": True},
    {"limit": 2, "skip": 1, "sort_order": "ascending", "include_total": True},
    {"skip": 4},
    {"limit": 1000, "sort_order": "descending"},
]


@pytest.mark.parametrize("criteria", CALL_CRITERIA)
def test_list_calls_pages_are_those_of_rendering_everything(criteria: JSON) -> None:
    state, clock = _state()
    _calls(state, clock)
    rendered = [render_call(c, state, transcript=False) for c in state.calls.values()]
    statuses = {call["call_status"] for call in rendered}
    assert statuses == {"registered", "ongoing", "ended", "not_connected"}
    talking = {c["call_status"] for c in rendered if "transfer_destination" in c}
    assert talking == {"ongoing", "ended"}
    for paging in PAGING:
        body = {**paging, "filter_criteria": criteria} if criteria else paging
        listed = _walk(list_calls, state, rendered, "call_id", body)
        matching = sum(1 for item in rendered if match_criteria(criteria, item))
        assert listed == max(0, matching - paging.get("skip", 0))


def test_list_calls_cursor_must_be_a_matching_call() -> None:
    state, clock = _state()
    _calls(state, clock)
    first = next(iter(state.calls))
    assert _answer(list_calls, state, {"pagination_key": first}) == {
        "items": [],
        "has_more": False,
    }
    batch = {"metadata": [_eq("batch", 2, "number")]}
    renders = render_call(state.calls[first], state, transcript=False)
    assert not match_criteria(batch, renders)
    body = {"pagination_key": first, "filter_criteria": batch}
    assert _answer(list_calls, state, body) == {"error": 400}
    assert _answer(list_calls, state, {"pagination_key": "call_nope"}) == {"error": 400}
    assert _answer(list_calls, state, {"limit": 0}) == {"error": 400}


def test_a_listed_call_reports_what_it_reports_now() -> None:
    """What an ended call reports is made once for list-calls: it follows a change of the
    times it is made from, and get-call (with transcript) is made as before."""
    state, clock = _state(concurrency_limit=10)
    call = state.create_call("phone_call", DEFAULT_AGENT_ID, dial=True, to_number="+14155550101")
    clock.advance(20.0)
    listed = _answer(list_calls, state, {})["items"][0]
    assert listed == render_call(call, state, transcript=False)
    assert listed["disconnection_reason"] in ("agent_hangup", "user_hangup")
    call.stopped_at = call.connect_at + 0.5  # as if stopped then (a restored record, say)
    again = _answer(list_calls, state, {})["items"][0]
    assert again["disconnection_reason"] == "manual_stopped"
    assert again["duration_ms"] == 500 != listed["duration_ms"]
    full = render_call(call, state)
    assert {k: v for k, v in full.items() if not k.startswith("transcript")} == again


CHAT_CRITERIA: list[JSON] = [
    {},
    {"metadata": [_eq("batch", 1, "number")]},
    {"chat_status": {"type": "enum", "op": "eq", "value": "ended"}},
    {"end_timestamp": {"type": "number", "op": "pr"}},
    {"combined_cost": {"type": "number", "op": "gt", "value": 0.1}},
    {"chat_successful": {"type": "boolean", "op": "eq", "value": True}},
]


@pytest.mark.parametrize("criteria", CHAT_CRITERIA)
def test_list_chats_pages_are_those_of_rendering_everything(criteria: JSON) -> None:
    state, clock = _state()
    _chats(state, clock)
    rendered = [render_chat(c) for c in state.chats.values()]
    for paging in PAGING:
        body = {**paging, "filter_criteria": criteria} if criteria else paging
        _walk(list_chats, state, rendered, "chat_id", body)


def test_the_reference_walk_sees_every_matching_call_once() -> None:
    """The reference itself: pages of 1 to 3, in both orders, list each call exactly once."""
    state, clock = _state()
    _calls(state, clock)
    rendered = [render_call(c, state, transcript=False) for c in state.calls.values()]
    ids = [call["call_id"] for call in rendered]
    for limit, order in itertools.product((1, 2, 3), ("ascending", "descending")):
        seen: list[str] = []
        body: JSON = {"limit": limit, "sort_order": order}
        while True:
            page = _reference(body, rendered, "call_id")
            seen += [item["call_id"] for item in page["items"]]
            if not page["has_more"]:
                break
            body["pagination_key"] = page["pagination_key"]
        assert seen == (ids if order == "ascending" else ids[::-1])
