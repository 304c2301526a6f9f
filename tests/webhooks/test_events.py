"""Decoding webhook bodies into typed events."""

from __future__ import annotations

import msgspec
import pytest

from aioretell.types import CallResponse, ChatResponse
from aioretell.webhooks import (
    CALL_EVENTS,
    CHAT_EVENTS,
    EVENT_TYPES,
    TRANSFER_EVENTS,
    CallEvent,
    ChatEvent,
    TransferEvent,
    UnknownEvent,
    WebhookPayloadError,
    default_dedup_key,
    parse_event,
)

from .conftest import call_payload, event_body

CHAT = {
    "chat_id": "chat_1",
    "agent_id": "agent_chat",
    "chat_status": "ended",
    "chat_analysis": {"chat_summary": "short", "chat_successful": True},
}


def test_the_documented_event_types() -> None:
    documented = {
        "call_started",
        "call_ended",
        "call_analyzed",
        "transcript_updated",
        "transfer_started",
        "transfer_bridged",
        "transfer_cancelled",
        "transfer_ended",
        "chat_started",
        "chat_ended",
        "chat_analyzed",
    }
    assert documented == EVENT_TYPES


@pytest.mark.parametrize("kind", sorted(CALL_EVENTS))
def test_call_events_decode_the_call_object(kind: str) -> None:
    body = event_body(
        kind,
        "call_9",
        call_analysis={"call_summary": "fine", "user_sentiment": "Positive"},
        transcript_object=[{"role": "agent", "content": "Hi", "words": []}],
    )
    event = parse_event(body)
    assert type(event) is CallEvent
    assert event.event == kind
    assert isinstance(event.call, CallResponse)
    assert event.call.call_id == "call_9" == event.session_id
    assert event.call.call_analysis is not None
    assert event.call.call_analysis.user_sentiment == "Positive"
    assert event.call.transcript_object and event.call.transcript_object[0].content == "Hi"


@pytest.mark.parametrize("kind", sorted(TRANSFER_EVENTS))
def test_transfer_events_keep_destination_and_option(kind: str) -> None:
    body = msgspec.json.encode(
        {
            "event": kind,
            "call": call_payload("call_t"),
            "transfer_destination": {"type": "predefined", "number": "+14155550100"},
            "transfer_option": {"type": "warm_transfer"},
        }
    )
    event = parse_event(body)
    assert isinstance(event, TransferEvent)
    assert event.call.call_id == "call_t"
    assert event.transfer_destination == {"type": "predefined", "number": "+14155550100"}
    assert event.transfer_option == {"type": "warm_transfer"}
    bare = parse_event(event_body(kind, "call_t"))
    assert isinstance(bare, TransferEvent) and bare.transfer_destination is None


@pytest.mark.parametrize("kind", sorted(CHAT_EVENTS))
def test_chat_events_decode_the_chat_object(kind: str) -> None:
    event = parse_event(msgspec.json.encode({"event": kind, "chat": CHAT}))
    assert type(event) is ChatEvent
    assert isinstance(event.chat, ChatResponse)
    assert event.chat.chat_id == "chat_1" == event.session_id
    assert event.chat.chat_analysis is not None and event.chat.chat_analysis.chat_successful


def test_unknown_fields_are_ignored() -> None:
    body = msgspec.json.encode(
        {
            "event": "call_ended",
            "event_version": 7,
            "call": call_payload("call_x", brand_new_field={"nested": [1, 2]}),
        }
    )
    event = parse_event(body)
    assert isinstance(event, CallEvent) and event.call.call_id == "call_x"


def test_unknown_event_types_give_a_generic_event() -> None:
    payload = {"event": "voicemail_detected", "call": {"call_id": "call_v"}, "extra": [1]}
    event = parse_event(msgspec.json.encode(payload))
    assert type(event) is UnknownEvent
    assert event.event == "voicemail_detected"
    assert event.payload == payload
    assert event.session_id == "call_v"
    assert parse_event(b'{"event": "x"}').session_id is None


def test_str_and_non_ascii_bodies() -> None:
    text = (
        '{"event":"call_ended","call":'
        + msgspec.json.encode(call_payload("call_ü", transcript="Agent: Grüß dich 👋")).decode()
        + "}"
    )
    event = parse_event(text)
    assert isinstance(event, CallEvent)
    assert event.call.call_id == "call_ü"
    assert event.call.transcript == "Agent: Grüß dich 👋"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"call": {}}',
        b'{"event": 5}',
        b'{"event": "call_ended"}',  # known event without its object
        b'{"event": "call_ended", "call": null}',
        b'{"event": "call_ended", "call": {"call_id": "c"}}',  # required fields missing
        b'{"event": "chat_ended"}',
        b'{"event": "chat_ended", "chat": {"chat_id": 3}}',
    ],
)
def test_malformed_bodies_raise(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_event(body)
    assert issubclass(WebhookPayloadError, ValueError)


def test_default_dedup_key() -> None:
    ended = event_body("call_ended", "call_1")
    ended_again = event_body("call_ended", "call_1", duration_ms=5)  # re-rendered payload
    assert default_dedup_key(parse_event(ended), ended) == "call_ended:call_1"
    assert default_dedup_key(parse_event(ended_again), ended_again) == "call_ended:call_1"
    first = event_body("transcript_updated", "call_1", transcript="Agent: Hi")
    second = event_body("transcript_updated", "call_1", transcript="Agent: Hi\nUser: Hey")
    key1 = default_dedup_key(parse_event(first), first)
    key2 = default_dedup_key(parse_event(second), second)
    assert key1 is not None and key2 is not None and key1 != key2
    assert key1.startswith("transcript_updated:call_1:")
    assert default_dedup_key(parse_event(first), first) == key1
