"""The custom-LLM socket's typed events: both directions, round trips, forward compatibility and
malformed frames."""

from __future__ import annotations

import json
import types
import typing

import msgspec
import pytest

import aioretell.llm
from aioretell.llm import (
    AgentConfig,
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
    UtteranceWords,
    decode_retell_event,
    decode_server_event,
    encode_retell_event,
    encode_server_event,
)
from aioretell.llm import events as events_module
from aioretell.types import CallResponse

CALL = CallResponse(
    call_type="phone_call",
    call_id="call_1",
    agent_id="agent_1",
    agent_version=2,
    call_status="ongoing",
    metadata={"crm_id": 7},
    retell_llm_dynamic_variables={"name": "Ada"},
)
TRANSCRIPT = [
    Utterance(role="agent", content="Hi"),
    Utterance(
        role="user",
        content="hello there",
        words=[UtteranceWords(word="hello", start=0.1, end=0.4)],
    ),
]

RETELL_EVENTS: list[RetellEvent] = [
    CallDetails(call=CALL),
    PingPong(timestamp=1_700_000_000_123),
    UpdateOnly(transcript=TRANSCRIPT, turntaking="agent_turn"),
    UpdateOnly(transcript=[]),
    ResponseRequired(response_id=3, transcript=TRANSCRIPT),
    ReminderRequired(
        response_id=4,
        transcript=TRANSCRIPT,
        transcript_with_tool_calls=[
            UtteranceOrToolCall(role="user", content="hello there"),
            UtteranceOrToolCall(
                role="tool_call_invocation", tool_call_id="t1", name="f", arguments="{}"
            ),
            UtteranceOrToolCall(role="tool_call_result", tool_call_id="t1", content="42"),
        ],
    ),
]

SERVER_EVENTS: list[ServerEvent] = [
    ConfigEvent(config=LLMConfig(auto_reconnect=True, call_details=True)),
    PingPongReply(timestamp=1_700_000_000_123),
    Response(response_id=0, content="Hello", content_complete=True),
    Response(
        response_id=5,
        content="Transferring you",
        content_complete=True,
        transfer_number="+14155550100",
        no_interruption_allowed=True,
    ),
    Response(response_id=6, content="", content_complete=True, end_call=True),
    Response(response_id=7, content="", digit_to_press="5"),
    AgentInterrupt(interrupt_id=1, content="Sorry,", end_call=False),
    ToolCallInvocation(tool_call_id="t1", name="lookup", arguments='{"q": 1}'),
    ToolCallResult(tool_call_id="t1", content="found it"),
    Metadata(metadata={"stage": "qualified", "score": [1, 2]}),
    Metadata(metadata=None),
    UpdateAgent(agent_config=AgentConfig(responsiveness=0.8, reminder_trigger_ms=5000)),
]


@pytest.mark.parametrize("event", RETELL_EVENTS, ids=lambda e: type(e).__name__)
def test_retell_events_round_trip(event: RetellEvent) -> None:
    frame = encode_retell_event(event)
    assert decode_retell_event(frame) == event
    assert decode_retell_event(frame.decode()) == event
    assert decode_retell_event(memoryview(frame)) == event


@pytest.mark.parametrize("event", SERVER_EVENTS, ids=lambda e: type(e).__name__)
def test_server_events_round_trip(event: ServerEvent) -> None:
    frame = encode_server_event(event)
    assert decode_server_event(frame) == event
    assert decode_server_event(frame.decode()) == event


def test_wire_names_match_the_protocol() -> None:
    tags = [json.loads(encode_retell_event(e))["interaction_type"] for e in RETELL_EVENTS]
    assert tags == [
        "call_details",
        "ping_pong",
        "update_only",
        "update_only",
        "response_required",
        "reminder_required",
    ]
    tags = [json.loads(encode_server_event(e))["response_type"] for e in SERVER_EVENTS]
    assert set(tags) == {
        "config",
        "ping_pong",
        "response",
        "agent_interrupt",
        "tool_call_invocation",
        "tool_call_result",
        "metadata",
        "update_agent",
    }


def test_the_package_exports_every_class_and_function_of_the_events_module() -> None:
    # Judged by what the module defines, not by its __all__, from which the package's is derived.
    defined = {
        name: value
        for name, value in vars(events_module).items()
        if not name.startswith("_")
        and isinstance(value, type | types.FunctionType)
        and value.__module__ == events_module.__name__
    }
    assert "Response" in defined and "decode_retell_event" in defined
    for union in (RetellEvent, ServerEvent):
        defined.update((member.__name__, member) for member in typing.get_args(union))
    exported = {name: getattr(aioretell.llm, name) for name in aioretell.llm.__all__}
    assert {name: exported.get(name) for name in defined} == defined


def test_unset_options_are_left_out_and_required_fields_always_sent() -> None:
    assert json.loads(encode_server_event(Response(response_id=0))) == {
        "response_type": "response",
        "response_id": 0,
        "content": "",
        "content_complete": False,
    }
    assert json.loads(encode_server_event(ConfigEvent())) == {
        "response_type": "config",
        "config": {
            "auto_reconnect": True,
            "call_details": False,
            "transcript_with_tool_calls": False,
        },
    }
    assert json.loads(encode_server_event(UpdateAgent(agent_config=AgentConfig()))) == {
        "response_type": "update_agent",
        "agent_config": {},
    }
    # Retell-side: None options are not sent; the transcript always is.
    assert json.loads(encode_retell_event(UpdateOnly(transcript=[]))) == {
        "interaction_type": "update_only",
        "transcript": [],
    }
    assert json.loads(encode_retell_event(ResponseRequired(response_id=1, transcript=[]))) == {
        "interaction_type": "response_required",
        "response_id": 1,
        "transcript": [],
    }


def test_reminder_required_is_a_response_required() -> None:
    event = decode_retell_event(
        b'{"interaction_type":"reminder_required","response_id":2,"transcript":[]}'
    )
    assert isinstance(event, ReminderRequired) and isinstance(event, ResponseRequired)


def test_request_response_helper_fills_in_the_id() -> None:
    request = ResponseRequired(response_id=9, transcript=[])
    assert request.response("bye", content_complete=True, end_call=True) == Response(
        response_id=9, content="bye", content_complete=True, end_call=True
    )


# ---------------------------------------------------------------- forward compatibility


def test_unknown_fields_are_ignored_everywhere() -> None:
    frame = {
        "interaction_type": "response_required",
        "response_id": 2,
        "brand_new": {"x": 1},
        "transcript": [
            {"role": "user", "content": "a", "words": [{"word": "a", "conf": 1}], "z": 0}
        ],
        "transcript_with_tool_calls": [{"role": "node_transition", "new_node_id": "n2", "q": 1}],
    }
    event = decode_retell_event(json.dumps(frame))
    assert isinstance(event, ResponseRequired)
    assert event.transcript == [
        Utterance(role="user", content="a", words=[UtteranceWords(word="a")])
    ]
    assert event.transcript_with_tool_calls is not None
    assert event.transcript_with_tool_calls[0].role == "node_transition"
    server = {"response_type": "response", "response_id": 1, "content": "x", "future": True}
    assert decode_server_event(json.dumps(server)) == Response(response_id=1, content="x")


def test_nulls_in_optional_fields_decode() -> None:
    event = decode_retell_event(
        b'{"interaction_type":"update_only","transcript":[{"role":"user","content":"a","words":null}],'
        b'"transcript_with_tool_calls":null,"turntaking":null}'
    )
    assert event == UpdateOnly(transcript=[Utterance(role="user", content="a")])
    reply = decode_server_event(
        b'{"response_type":"response","response_id":1,"content":"a","content_complete":true,'
        b'"end_call":null,"transfer_number":null}'
    )
    assert isinstance(reply, Response)
    assert (reply.end_call, reply.transfer_number, reply.digit_to_press) == (
        None,
        None,
        msgspec.UNSET,
    )


@pytest.mark.parametrize(
    ("decode", "encode", "tag"),
    [
        (decode_retell_event, encode_retell_event, "interaction_type"),
        (decode_server_event, encode_server_event, "response_type"),
    ],
)
def test_an_unknown_type_decodes_to_unknown_event_and_re_encodes(
    decode: object, encode: object, tag: str
) -> None:
    frame = json.dumps({tag: "hologram", "depth": 3, "nested": {"a": [1]}})
    event = decode(frame)  # type: ignore[operator]
    assert event == UnknownEvent(
        type="hologram", data={tag: "hologram", "depth": 3, "nested": {"a": [1]}}
    )
    assert json.loads(encode(event)) == json.loads(frame)  # type: ignore[operator]


# ---------------------------------------------------------------- malformed frames

MALFORMED = [
    (b"", "not a JSON object"),
    (b"{not json", "not a JSON object"),
    (b"[1, 2]", "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (b"{}", "no string"),
    (b'{"TYPE": 1}', "no string"),
]


@pytest.mark.parametrize(("frame", "message"), MALFORMED)
@pytest.mark.parametrize("decode", [decode_retell_event, decode_server_event])
def test_frames_that_are_not_events_raise(frame: bytes, message: str, decode: object) -> None:
    with pytest.raises(MalformedEventError, match=message):
        decode(frame)  # type: ignore[operator]


@pytest.mark.parametrize("tag_value", [7, None, ["ping_pong"]])
def test_a_type_that_is_not_a_string_raises(tag_value: object) -> None:
    with pytest.raises(MalformedEventError, match="interaction_type"):
        decode_retell_event(json.dumps({"interaction_type": tag_value}))
    with pytest.raises(MalformedEventError, match="response_type"):
        decode_server_event(json.dumps({"response_type": tag_value}))


@pytest.mark.parametrize(
    ("frame", "where"),
    [
        ({"interaction_type": "ping_pong", "timestamp": "now"}, "timestamp"),
        ({"interaction_type": "ping_pong"}, "timestamp"),
        ({"interaction_type": "response_required", "transcript": []}, "response_id"),
        ({"interaction_type": "response_required", "response_id": 1}, "transcript"),
        ({"interaction_type": "update_only", "transcript": "hi"}, "transcript"),
        ({"interaction_type": "update_only", "transcript": [{"content": "x"}]}, "role"),
        ({"interaction_type": "call_details", "call": {"call_id": 5}}, "call"),
    ],
)
def test_a_known_retell_event_with_wrong_fields_raises_naming_the_field(
    frame: dict[str, object], where: str
) -> None:
    with pytest.raises(MalformedEventError, match=where) as caught:
        decode_retell_event(json.dumps(frame))
    assert str(frame["interaction_type"]) in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("frame", "where"),
    [
        ({"response_type": "response", "content": "x"}, "response_id"),
        ({"response_type": "response", "response_id": "1"}, "response_id"),
        ({"response_type": "response", "response_id": 1, "content": 5}, "content"),
        ({"response_type": "response", "response_id": 1, "end_call": "yes"}, "end_call"),
        ({"response_type": "ping_pong", "timestamp": 1.5}, "timestamp"),
        ({"response_type": "config", "config": {"call_details": "true"}}, "call_details"),
        ({"response_type": "tool_call_invocation", "tool_call_id": "t"}, "name"),
        (
            {"response_type": "update_agent", "agent_config": {"responsiveness": "x"}},
            "responsiveness",
        ),
        ({"response_type": "agent_interrupt", "content": "x"}, "interrupt_id"),
    ],
)
def test_a_known_server_event_with_wrong_fields_raises_naming_the_field(
    frame: dict[str, object], where: str
) -> None:
    with pytest.raises(MalformedEventError, match=where):
        decode_server_event(json.dumps(frame))


def test_malformed_errors_do_not_chain_the_decoder_internals() -> None:
    with pytest.raises(MalformedEventError) as caught:
        decode_retell_event(b'{"interaction_type":"ping_pong","timestamp":"x"}')
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
