"""Receiving Retell webhooks: signatures, typed events and an aiohttp.web receiver.

::

    from aiohttp import web
    from aioretell.webhooks import CallEvent, WebhookReceiver

    receiver = WebhookReceiver(api_key="key_...")

    @receiver.on("call_ended", "call_analyzed")
    async def on_call(event: CallEvent) -> None:
        print(event.event, event.call.call_id, event.call.disconnection_reason)

    app = web.Application()
    receiver.add_routes(app, path="/retell-webhook")
"""

from typing import TYPE_CHECKING

from ._events import (
    CALL_EVENTS,
    CHAT_EVENTS,
    EVENT_TYPES,
    TRANSFER_EVENTS,
    CallEvent,
    ChatEvent,
    TransferEvent,
    UnknownEvent,
    WebhookEvent,
    WebhookPayloadError,
    parse_event,
)
from ._receiver import (
    ANY,
    ONCE_PER_SESSION,
    DeadLetter,
    Handler,
    WebhookReceiver,
    default_dedup_key,
)
from ._signature import SIGNATURE_HEADER, parse_signature, sign, verify
from ._store import DedupStore, MemoryDedupStore

if TYPE_CHECKING:
    from ._redis_store import RedisDedupStore


def __getattr__(name: str) -> object:
    # RedisDedupStore imports redis-py only when asked for (the optional "redis" extra).
    if name == "RedisDedupStore":
        from ._redis_store import RedisDedupStore

        return RedisDedupStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ANY",
    "CALL_EVENTS",
    "CHAT_EVENTS",
    "EVENT_TYPES",
    "ONCE_PER_SESSION",
    "SIGNATURE_HEADER",
    "TRANSFER_EVENTS",
    "CallEvent",
    "ChatEvent",
    "DeadLetter",
    "DedupStore",
    "Handler",
    "MemoryDedupStore",
    "RedisDedupStore",
    "TransferEvent",
    "UnknownEvent",
    "WebhookEvent",
    "WebhookPayloadError",
    "WebhookReceiver",
    "default_dedup_key",
    "parse_event",
    "parse_signature",
    "sign",
    "verify",
]
