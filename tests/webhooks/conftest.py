from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from aioretell._serving import http_url, serve_app
from aioretell.emulator import ManualClock
from aioretell.webhooks import SIGNATURE_HEADER, WebhookReceiver, sign

# test_redis_store's Redis fixtures ("x as x": imported for pytest, not unused).
from tests.services import namespace as namespace
from tests.services import redis_url as redis_url

API_KEY = "key_webhook_secret_7f3a"
START = 1_700_000_000.0
PATH = "/retell-webhook"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` on 127.0.0.1, an ephemeral port; yields its base URL and cleans it up."""
    runner, host, port = await serve_app(app, "127.0.0.1", 0)
    try:
        yield http_url(host, port)
    finally:
        await runner.cleanup()


@pytest.fixture
def make_receiver(clock: ManualClock) -> Callable[..., WebhookReceiver]:
    def make(**options: Any) -> WebhookReceiver:
        options.setdefault("api_key", API_KEY)
        options.setdefault("clock", clock)
        return WebhookReceiver(**options)

    return make


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def call_payload(call_id: str = "call_1", **extra: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "call_type": "phone_call",
        "call_id": call_id,
        "agent_id": "agent_1",
        "agent_version": 1,
        "call_status": "ended",
        "from_number": "+14157774444",
        "to_number": "+12137774445",
        "direction": "outbound",
    }
    call.update(extra)
    return call


def event_body(event: str, call_id: str = "call_1", **extra: Any) -> bytes:
    return msgspec.json.encode({"event": event, "call": call_payload(call_id, **extra)})


def signed_headers(body: bytes, clock: ManualClock, key: str = API_KEY) -> dict[str, str]:
    signature = sign(body, api_key=key, timestamp_ms=int(clock() * 1000))
    return {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}
