"""Typed events of Retell's custom-LLM WebSocket, both directions, with msgspec codecs.

Retell (the WebSocket client) sends :data:`RetellEvent`\\ s tagged by ``interaction_type``; the
custom-LLM server answers with :data:`ServerEvent`\\ s tagged by ``response_type``. Each direction
has a decoder and an encoder, so a server decodes what Retell sends and encodes its answers, and
a Retell stand-in (tests, the emulator, ``aioretell llm-test``) does the opposite.

Decoding is forgiving where the protocol grows: unknown fields are ignored, an unknown event type
becomes :class:`UnknownEvent` (type name and decoded object kept), and transcript items that are
tool calls decode next to plain utterances. A frame that is not a JSON object, lacks its type, or
has a known type with fields of the wrong shape raises :class:`MalformedEventError`.

Optional fields of server events default to :data:`msgspec.UNSET` and are left out of the frame
when unset (a ``null`` from a server decodes to ``None``); optional fields of Retell events
default to ``None`` and are left out when ``None``.
"""

from __future__ import annotations

from typing import Any, TypeAlias, get_args

import msgspec
from msgspec import UNSET, UnsetType

from aioretell.types import CallResponse, UtteranceOrToolCall, UtteranceWords

__all__ = [
    "AgentConfig",
    "AgentInterrupt",
    "CallDetails",
    "ConfigEvent",
    "LLMConfig",
    "MalformedEventError",
    "Metadata",
    "PingPong",
    "PingPongReply",
    "ReminderRequired",
    "Response",
    "ResponseRequired",
    "RetellEvent",
    "ServerEvent",
    "ToolCallInvocation",
    "ToolCallResult",
    "UnknownEvent",
    "UpdateAgent",
    "UpdateOnly",
    "Utterance",
    "UtteranceOrToolCall",
    "UtteranceWords",
    "decode_retell_event",
    "decode_server_event",
    "encode_retell_event",
    "encode_server_event",
]


class MalformedEventError(ValueError):
    """A frame that is not a valid event: not JSON, not an object, no type, or wrong fields."""


class UnknownEvent(msgspec.Struct, kw_only=True, gc=False):
    """An event type this version does not know, in either direction.

    ``type`` is the ``interaction_type`` (from Retell) or ``response_type`` (from a server) as
    sent; ``data`` is the whole decoded frame. Encoding it sends ``data`` back unchanged.
    """

    type: str
    data: dict[str, Any]


# ---------------------------------------------------------------- Retell -> server


class Utterance(msgspec.Struct, kw_only=True, gc=False, omit_defaults=True):
    """One transcript turn: ``role`` is ``"agent"`` or ``"user"``; ``words`` has word timings
    when Retell sends them."""

    role: str
    content: str
    words: list[UtteranceWords] | None = None


class _RetellEventBase(msgspec.Struct, kw_only=True, gc=False, omit_defaults=True):
    pass


class CallDetails(_RetellEventBase, tag_field="interaction_type", tag="call_details"):
    """The call object (as get-call returns it); sent once when the config asked for it."""

    call: CallResponse


class PingPong(_RetellEventBase, tag_field="interaction_type", tag="ping_pong"):
    """Retell's keep-alive; ``timestamp`` (ms) is to be echoed back in a :class:`PingPongReply`."""

    timestamp: int


class UpdateOnly(_RetellEventBase, tag_field="interaction_type", tag="update_only"):
    """The transcript changed; nothing is to be said."""

    transcript: list[Utterance]
    transcript_with_tool_calls: list[UtteranceOrToolCall] | None = None
    #: ``"agent_turn"`` or ``"user_turn"`` when Retell sends it.
    turntaking: str | None = None


class ResponseRequired(_RetellEventBase, tag_field="interaction_type", tag="response_required"):
    """The agent should speak now; answer with :class:`Response` events for ``response_id``."""

    response_id: int
    transcript: list[Utterance]
    transcript_with_tool_calls: list[UtteranceOrToolCall] | None = None

    def response(
        self,
        content: str = "",
        *,
        content_complete: bool = False,
        end_call: bool | UnsetType = UNSET,
        transfer_number: str | UnsetType = UNSET,
        no_interruption_allowed: bool | UnsetType = UNSET,
        digit_to_press: str | UnsetType = UNSET,
    ) -> Response:
        """A :class:`Response` to this request (its ``response_id`` filled in)."""
        return Response(
            response_id=self.response_id,
            content=content,
            content_complete=content_complete,
            end_call=end_call,
            transfer_number=transfer_number,
            no_interruption_allowed=no_interruption_allowed,
            digit_to_press=digit_to_press,
        )


class ReminderRequired(ResponseRequired, tag="reminder_required"):
    """Like :class:`ResponseRequired`, sent after the user has been silent for a while."""


_KnownRetellEvent: TypeAlias = (
    CallDetails | PingPong | UpdateOnly | ResponseRequired | ReminderRequired
)
RetellEvent: TypeAlias = _KnownRetellEvent | UnknownEvent


# ---------------------------------------------------------------- server -> Retell


class LLMConfig(msgspec.Struct, kw_only=True, gc=False):
    """What the server asks of Retell for this call.

    ``auto_reconnect``: Retell pings every ~2 s and reconnects when the server goes silent;
    ``call_details``: Retell sends one :class:`CallDetails`; ``transcript_with_tool_calls``:
    requests carry the transcript with tool-call items.
    """

    auto_reconnect: bool = True
    call_details: bool = False
    transcript_with_tool_calls: bool = False


class AgentConfig(msgspec.Struct, kw_only=True, gc=False):
    """Agent settings an :class:`UpdateAgent` changes for the rest of the call; unset = keep."""

    responsiveness: float | UnsetType | None = UNSET
    interruption_sensitivity: float | UnsetType | None = UNSET
    reminder_trigger_ms: int | UnsetType | None = UNSET
    reminder_max_count: int | UnsetType | None = UNSET


class _ServerEventBase(msgspec.Struct, kw_only=True, gc=False):
    pass


class ConfigEvent(_ServerEventBase, tag_field="response_type", tag="config"):
    """Sent first (before the begin message) to configure the call."""

    config: LLMConfig = msgspec.field(default_factory=LLMConfig)


class PingPongReply(_ServerEventBase, tag_field="response_type", tag="ping_pong"):
    """The echo of a :class:`PingPong`'s ``timestamp``."""

    timestamp: int


class Response(_ServerEventBase, tag_field="response_type", tag="response"):
    """A chunk of what the agent says for ``response_id`` (0 is the begin message).

    The last chunk of a response has ``content_complete=True``.
    """

    response_id: int
    content: str = ""
    content_complete: bool = False
    end_call: bool | UnsetType | None = UNSET
    transfer_number: str | UnsetType | None = UNSET
    no_interruption_allowed: bool | UnsetType | None = UNSET
    digit_to_press: str | UnsetType | None = UNSET


class AgentInterrupt(_ServerEventBase, tag_field="response_type", tag="agent_interrupt"):
    """Make the agent say ``content`` now, without waiting for a request."""

    interrupt_id: int
    content: str = ""
    content_complete: bool = False
    end_call: bool | UnsetType | None = UNSET
    transfer_number: str | UnsetType | None = UNSET
    no_interruption_allowed: bool | UnsetType | None = UNSET


class ToolCallInvocation(_ServerEventBase, tag_field="response_type", tag="tool_call_invocation"):
    """Record a tool call in the transcript; ``arguments`` is a JSON string."""

    tool_call_id: str
    name: str
    arguments: str = "{}"


class ToolCallResult(_ServerEventBase, tag_field="response_type", tag="tool_call_result"):
    """Record the result of the tool call ``tool_call_id`` in the transcript."""

    tool_call_id: str
    content: str = ""


class Metadata(_ServerEventBase, tag_field="response_type", tag="metadata"):
    """Any JSON value, stored on the call."""

    metadata: Any = None


class UpdateAgent(_ServerEventBase, tag_field="response_type", tag="update_agent"):
    """Change agent settings for the rest of the call."""

    agent_config: AgentConfig


_KnownServerEvent: TypeAlias = (
    ConfigEvent
    | PingPongReply
    | Response
    | AgentInterrupt
    | ToolCallInvocation
    | ToolCallResult
    | Metadata
    | UpdateAgent
)
ServerEvent: TypeAlias = _KnownServerEvent | UnknownEvent


# ---------------------------------------------------------------- codecs

Frame: TypeAlias = "bytes | bytearray | memoryview | str"


def _wire_names(union: Any) -> frozenset[str]:
    """The type names on the wire of a union's events (their msgspec tags)."""
    return frozenset(str(member.__struct_config__.tag) for member in get_args(union))


#: The event types this version knows; another type decodes to :class:`UnknownEvent`.
RETELL_EVENT_TYPES = _wire_names(_KnownRetellEvent)
SERVER_EVENT_TYPES = _wire_names(_KnownServerEvent)

_retell_decoder = msgspec.json.Decoder(_KnownRetellEvent)
_server_decoder = msgspec.json.Decoder(_KnownServerEvent)
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def _unknown_or_error(
    frame: Frame, tag_field: str, known: frozenset[str], exc: msgspec.MsgspecError
) -> UnknownEvent:
    """After the typed decode failed: an :class:`UnknownEvent` if the type is new, else raise."""
    try:
        data = _object_decoder.decode(frame)
    except msgspec.MsgspecError as inner:
        raise MalformedEventError(f"frame is not a JSON object: {inner}") from None
    kind = data.get(tag_field)
    if not isinstance(kind, str):
        raise MalformedEventError(f"frame has no string {tag_field!r}") from None
    if kind in known:
        raise MalformedEventError(f"malformed {kind!r} event: {exc}") from None
    return UnknownEvent(type=kind, data=data)


def decode_retell_event(frame: Frame) -> RetellEvent:
    """Decode one frame Retell sent (``interaction_type``); see :data:`RetellEvent`."""
    try:
        return _retell_decoder.decode(frame)
    except msgspec.MsgspecError as exc:
        return _unknown_or_error(frame, "interaction_type", RETELL_EVENT_TYPES, exc)


def decode_server_event(frame: Frame) -> ServerEvent:
    """Decode one frame a custom-LLM server sent (``response_type``); see :data:`ServerEvent`."""
    try:
        return _server_decoder.decode(frame)
    except msgspec.MsgspecError as exc:
        return _unknown_or_error(frame, "response_type", SERVER_EVENT_TYPES, exc)


def _encode(event: msgspec.Struct, tag_field: str) -> bytes:
    if isinstance(event, UnknownEvent):
        return _encoder.encode({tag_field: event.type, **event.data})
    return _encoder.encode(event)


def encode_retell_event(event: RetellEvent) -> bytes:
    """The JSON frame (UTF-8 bytes) Retell would send for ``event``."""
    return _encode(event, "interaction_type")


def encode_server_event(event: ServerEvent) -> bytes:
    """The JSON frame (UTF-8 bytes) a server sends for ``event``."""
    return _encode(event, "response_type")
