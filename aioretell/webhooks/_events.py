"""Typed webhook events, decoded with msgspec straight from the delivered bytes.

Retell posts ``{"event": "<type>", "call": {...}}`` for voice events and
``{"event": "<type>", "chat": {...}}`` for chat events; the ``call`` and ``chat`` objects are the
ones get-call and get-chat answer, so they decode into :class:`aioretell.types.CallResponse` and
:class:`aioretell.types.ChatResponse`. Unknown fields are ignored everywhere and an unknown event
type decodes into :class:`UnknownEvent`, so a new Retell event never breaks a receiver.
"""

from __future__ import annotations

from typing import Any

import msgspec

from aioretell.types import CallResponse, ChatResponse

__all__ = [
    "CALL_EVENTS",
    "CHAT_EVENTS",
    "EVENT_TYPES",
    "TRANSFER_EVENTS",
    "CallEvent",
    "ChatEvent",
    "TransferEvent",
    "UnknownEvent",
    "WebhookEvent",
    "WebhookPayloadError",
    "parse_event",
]

#: Voice events whose payload is the call object.
CALL_EVENTS = frozenset({"call_started", "call_ended", "call_analyzed", "transcript_updated"})
#: Voice events about a transfer: the call object plus, when Retell sends them,
#: ``transfer_destination`` and ``transfer_option``.
TRANSFER_EVENTS = frozenset(
    {"transfer_started", "transfer_bridged", "transfer_cancelled", "transfer_ended"}
)
#: Chat events whose payload is the chat object.
CHAT_EVENTS = frozenset({"chat_started", "chat_ended", "chat_analyzed"})
#: Every event type Retell documents.
EVENT_TYPES = CALL_EVENTS | TRANSFER_EVENTS | CHAT_EVENTS


class WebhookPayloadError(ValueError):
    """The body is not a webhook event: not JSON, no ``event``, or a payload of the wrong shape."""


class WebhookEvent(msgspec.Struct, kw_only=True):
    """Base of every event. ``event`` is the type as sent (``"call_ended"``, ...)."""

    event: str

    @property
    def session_id(self) -> str | None:
        """The ``call_id`` or ``chat_id`` the event is about, if any."""
        return None


class CallEvent(WebhookEvent, kw_only=True):
    """``call_started``, ``call_ended``, ``call_analyzed``, ``transcript_updated``."""

    call: CallResponse

    @property
    def session_id(self) -> str | None:
        return self.call.call_id


class TransferEvent(CallEvent, kw_only=True):
    """``transfer_started``, ``transfer_bridged``, ``transfer_cancelled``, ``transfer_ended``.

    ``transfer_destination`` and ``transfer_option`` are kept as decoded JSON (their shape is not
    part of the call object); ``None`` when absent.
    """

    transfer_destination: Any = None
    transfer_option: Any = None


class ChatEvent(WebhookEvent, kw_only=True):
    """``chat_started``, ``chat_ended``, ``chat_analyzed``."""

    chat: ChatResponse

    @property
    def session_id(self) -> str | None:
        return self.chat.chat_id


class UnknownEvent(WebhookEvent, kw_only=True):
    """An event type this version does not know; ``payload`` is the whole decoded body."""

    payload: dict[str, Any]

    @property
    def session_id(self) -> str | None:
        for name, field in (("call", "call_id"), ("chat", "chat_id")):
            inner = self.payload.get(name)
            if isinstance(inner, dict) and isinstance(inner.get(field), str):
                return str(inner[field])
        return None


class _Envelope(msgspec.Struct):
    """One pass over the body: the type, the session object kept raw, transfer extras."""

    event: str
    call: msgspec.Raw = msgspec.Raw()
    chat: msgspec.Raw = msgspec.Raw()
    transfer_destination: Any = None
    transfer_option: Any = None


_envelope = msgspec.json.Decoder(_Envelope)
_call = msgspec.json.Decoder(CallResponse)
_chat = msgspec.json.Decoder(ChatResponse)
_object = msgspec.json.Decoder(dict[str, Any])


def parse_event(body: bytes | bytearray | memoryview | str) -> WebhookEvent:
    """Decode a webhook body into a :class:`CallEvent`, :class:`TransferEvent`,
    :class:`ChatEvent` or :class:`UnknownEvent`.

    Raises :class:`WebhookPayloadError` when the body is not a JSON object with a string
    ``event``, or when a known event lacks its ``call``/``chat`` object or that object does not
    decode. Verify the signature first (:func:`aioretell.webhooks.verify`).
    """
    try:
        envelope = _envelope.decode(body)
        kind = envelope.event
        if kind in CALL_EVENTS or kind in TRANSFER_EVENTS:
            if not envelope.call:
                raise WebhookPayloadError(f"{kind} event without a 'call' object")
            call = _call.decode(envelope.call)
            if kind in CALL_EVENTS:
                return CallEvent(event=kind, call=call)
            return TransferEvent(
                event=kind,
                call=call,
                transfer_destination=envelope.transfer_destination,
                transfer_option=envelope.transfer_option,
            )
        if kind in CHAT_EVENTS:
            if not envelope.chat:
                raise WebhookPayloadError(f"{kind} event without a 'chat' object")
            return ChatEvent(event=kind, chat=_chat.decode(envelope.chat))
        return UnknownEvent(event=kind, payload=_object.decode(body))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise WebhookPayloadError(f"not a Retell webhook event: {exc}") from exc
