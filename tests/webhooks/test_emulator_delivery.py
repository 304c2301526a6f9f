"""End to end: the emulator delivers signed webhooks to a receiver, over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Middleware
from msgspec import UNSET

from aioretell import AsyncRetell
from aioretell.emulator import DeliveryAttempt, Emulator, EmulatorConfig, ManualClock
from aioretell.webhooks import CallEvent, ChatEvent, WebhookEvent, WebhookReceiver

from .conftest import API_KEY, PATH, START, serving

Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Harness:
    """A receiver on its own server, an emulator pointed at it, and a client."""

    def __init__(
        self, emu: Emulator, receiver: WebhookReceiver, url: str, client: AsyncRetell
    ) -> None:
        self.emu = emu
        self.receiver = receiver
        self.url = url
        self.client = client
        self.seen: list[WebhookEvent] = []

        @receiver.on("*")
        async def record(event: WebhookEvent) -> None:
            self.seen.append(event)

    async def settle(self) -> None:
        """Deliver everything due now and let the receiver finish handling it."""
        await self.emu.webhooks.flush()
        await self.receiver.drain()

    def kinds(self) -> list[str]:
        return [event.event for event in self.seen]

    async def create_agent(self, **fields: Any) -> str:
        body: dict[str, Any] = {
            "response_engine": {"type": "retell-llm", "llm_id": "llm_emulator_default"},
            "voice_id": "11labs-Adrian",
        }
        body.update(fields)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.emu.base_url}/create-agent", json=body, headers=headers) as resp,
        ):
            assert resp.status == 201
            agent_id: str = (await resp.json())["agent_id"]
            return agent_id

    async def phone_call(self, agent_id: str | None = None) -> str:
        call = await self.client.call.create_phone_call(
            from_number="+14157774444",
            to_number="+12137774445",
            override_agent_id=UNSET if agent_id is None else agent_id,
        )
        return call.call_id


def _answer_first_with(answer: Endpoint) -> Middleware:
    """A middleware that answers the receiver's first request with ``answer``, and hands every
    later one to the receiver."""
    answered = False

    @web.middleware
    async def first(request: web.Request, handler: Endpoint) -> web.StreamResponse:
        nonlocal answered
        if answered:
            return await handler(request)
        answered = True
        return await answer(request)

    return first


@asynccontextmanager
async def harness(
    clock: ManualClock,
    *,
    first_answer: Endpoint | None = None,
    receiver_key: str = API_KEY,
    account_webhook: bool = True,
    **config: Any,
) -> AsyncIterator[Harness]:
    receiver = WebhookReceiver(api_key=receiver_key, clock=clock)
    app = receiver.app()
    if first_answer is not None:
        app.middlewares.append(_answer_first_with(first_answer))
    async with serving(app) as base:
        settings: dict[str, Any] = {
            "api_key": API_KEY,
            "clock": clock,
            "ring_duration_s": 1.0,
            "call_duration_s": 10.0,
            "analysis_delay_s": 2.0,
            "webhook_retry_backoff_s": 0.0,
            "webhook_url": base + PATH if account_webhook else None,
        }
        settings.update(config)
        async with (
            Emulator(EmulatorConfig(**settings)) as emu,
            AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as client,
        ):
            yield Harness(emu, receiver, base + PATH, client)


def by_copy(attempts: list[DeliveryAttempt] | Any) -> list[tuple[str, int, int, int | None]]:
    return [(a.event, a.copy, a.attempt, a.status) for a in attempts]


async def test_call_lifecycle_is_delivered_once_each_despite_duplicates(
    clock: ManualClock,
) -> None:
    async with harness(clock, webhook_duplicates=2) as h:
        call_id = await h.phone_call()
        await h.settle()
        assert h.seen == []  # still ringing

        clock.advance(1)
        await h.settle()
        assert h.kinds() == ["call_started"]

        clock.advance(10)
        await h.settle()
        assert h.kinds() == ["call_started", "call_ended"]

        clock.advance(2)
        await h.settle()
        assert h.kinds() == ["call_started", "call_ended", "call_analyzed"]

        clock.advance(100)
        await h.settle()
        assert len(h.seen) == 3

        # Every copy was delivered and acknowledged: 204 for the first, 200 for duplicates.
        assert by_copy(h.emu.webhooks.attempts) == [
            (kind, copy, 1, 204 if copy == 0 else 200)
            for kind in ("call_started", "call_ended", "call_analyzed")
            for copy in range(3)
        ]

    started, ended, analyzed = h.seen
    assert isinstance(started, CallEvent) and isinstance(ended, CallEvent)
    assert isinstance(analyzed, CallEvent)
    assert {e.call.call_id for e in (started, ended, analyzed)} == {call_id}
    assert started.call.call_status == "ongoing"
    assert started.call.start_timestamp == int((START + 1) * 1000)
    assert started.call.end_timestamp is None
    assert ended.call.call_status == "ended"
    assert ended.call.call_analysis is None  # Retell sends call_analysis only when analyzed
    assert ended.call.transcript_object and ended.call.disconnection_reason
    assert analyzed.call.call_analysis is not None
    assert analyzed.call.call_analysis.call_summary
    assert not h.receiver.dead_letters


async def test_emulator_retries_when_the_receiver_fails_once(clock: ManualClock) -> None:
    async def fail(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=500)

    async with harness(clock, first_answer=fail) as h:
        await h.phone_call()
        clock.advance(1)
        await h.settle()
    assert h.kinds() == ["call_started"]
    assert by_copy(h.emu.webhooks.attempts) == [
        ("call_started", 0, 1, 500),
        ("call_started", 0, 2, 204),
    ]


async def test_emulator_retries_after_a_timeout(clock: ManualClock) -> None:
    unblock = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await unblock.wait()
        return web.Response(status=204)

    async with harness(clock, first_answer=hang, webhook_timeout_s=0.05) as h:
        await h.phone_call()
        clock.advance(1)
        await h.settle()
        unblock.set()
    attempts = list(h.emu.webhooks.attempts)
    assert [(a.attempt, a.status) for a in attempts] == [(1, None), (2, 204)]
    assert attempts[0].error is not None and "Timeout" in attempts[0].error
    assert h.kinds() == ["call_started"]


async def test_gives_up_after_the_configured_retries(clock: ManualClock) -> None:
    async with harness(clock, receiver_key="key_not_the_account_key") as h:
        await h.phone_call()
        clock.advance(1)
        await h.settle()
    # The receiver refuses every signature (401): 1 attempt + 3 retries, nothing handled.
    assert [(a.attempt, a.status) for a in h.emu.webhooks.attempts] == [
        (1, 401),
        (2, 401),
        (3, 401),
        (4, 401),
    ]
    assert h.seen == []


async def test_chat_lifecycle(clock: ManualClock) -> None:
    async with harness(clock, account_webhook=False, webhook_duplicates=1) as h:
        agent = await h.client.chat_agent.create(
            response_engine={"type": "retell-llm", "llm_id": "llm_emulator_default"},
            webhook_url=h.url,
        )
        chat = await h.client.chat.create(agent_id=agent.agent_id, metadata={"k": "v"})
        await h.settle()
        await h.client.chat.create_chat_completion(chat_id=chat.chat_id, content="hi")
        clock.advance(5)
        await h.client.chat.end(chat.chat_id)
        await h.settle()
        clock.advance(2)
        await h.settle()
    assert h.kinds() == ["chat_started", "chat_ended", "chat_analyzed"]
    started, ended, analyzed = h.seen
    assert isinstance(started, ChatEvent) and isinstance(ended, ChatEvent)
    assert isinstance(analyzed, ChatEvent)
    assert started.chat.chat_status == "ongoing" and started.chat.metadata == {"k": "v"}
    assert ended.chat.chat_status == "ended" and ended.chat.chat_analysis is None
    assert ended.chat.transcript is not None and "hi" in ended.chat.transcript
    assert analyzed.chat.chat_analysis is not None
    assert len(h.emu.webhooks.attempts) == 6  # each sent twice


async def test_calls_that_never_connect_send_no_call_started(clock: ManualClock) -> None:
    async with harness(clock, concurrency_limit=1) as h:
        first = await h.phone_call()
        rejected = await h.phone_call()  # over the limit: not_connected
        await h.settle()
        assert [(e.event, e.session_id) for e in h.seen] == [("call_ended", rejected)]
        # Stopped while ringing: ended (manual_stopped) without having started.
        await h.client.call.retrieve(first)
        assert h.emu.state.calls[first].status(clock()) == "registered"
        h.emu.state.stop_call(h.emu.state.calls[first])
        clock.advance(2)
        await h.settle()
    assert [(e.event, e.session_id) for e in h.seen] == [
        ("call_ended", rejected),
        ("call_ended", first),
        ("call_analyzed", rejected),
        ("call_analyzed", first),
    ]
    ended = h.seen[1]
    assert isinstance(ended, CallEvent)
    assert ended.call.disconnection_reason == "manual_stopped"


async def test_stopping_an_ongoing_call_ends_it_early_once(clock: ManualClock) -> None:
    async with harness(clock) as h:
        call_id = await h.phone_call()
        clock.advance(3)
        await h.settle()
        h.emu.state.stop_call(h.emu.state.calls[call_id])
        await h.settle()
        clock.advance(50)  # past the natural end: no second call_ended
        await h.settle()
    assert h.kinds() == ["call_started", "call_ended", "call_analyzed"]


async def test_agent_webhook_url_and_events(clock: ManualClock) -> None:
    async with harness(clock, account_webhook=False) as h:
        # No URL anywhere: nothing is sent.
        await h.phone_call()
        # The agent's own URL, restricted to call_ended.
        only_ended = await h.create_agent(webhook_url=h.url, webhook_events=["call_ended"])
        await h.phone_call(only_ended)
        clock.advance(20)
        await h.settle()
    assert h.kinds() == ["call_ended"]
    assert [a.event for a in h.emu.webhooks.attempts] == ["call_ended"]


async def test_duplicates_can_be_switched_on_at_runtime(clock: ManualClock) -> None:
    async with harness(clock) as h:
        await h.phone_call()
        clock.advance(1)
        await h.settle()
        h.emu.webhooks.duplicates = 3
        clock.advance(10)
        await h.settle()
    assert h.kinds() == ["call_started", "call_ended"]
    assert [a.event for a in h.emu.webhooks.attempts].count("call_ended") == 4


async def test_background_delivery_without_flush(clock: ManualClock) -> None:
    async with harness(clock, webhook_tick_s=0.001) as h:
        await h.phone_call()
        clock.advance(1)
        for _ in range(10_000):
            if h.seen:
                break
            await asyncio.sleep(0.001)
        await h.receiver.drain()
    assert h.kinds() == ["call_started"]


async def test_flush_needs_a_running_emulator() -> None:
    emu = Emulator(EmulatorConfig(api_key=API_KEY))
    with pytest.raises(RuntimeError):
        await emu.webhooks.flush()
    assert emu.webhooks.tick() == 0
