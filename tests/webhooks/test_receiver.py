"""The aiohttp.web receiver over real loopback sockets: verify, deduplicate, dispatch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import msgspec
import pytest
from aiohttp import web

from aioretell.emulator import ManualClock
from aioretell.webhooks import (
    SIGNATURE_HEADER,
    CallEvent,
    DeadLetter,
    DedupStore,
    MemoryDedupStore,
    UnknownEvent,
    WebhookEvent,
    WebhookReceiver,
)

from .conftest import API_KEY, PATH, event_body, serving, signed_headers

MakeReceiver = Callable[..., WebhookReceiver]


async def settle(condition: Callable[[], bool]) -> None:
    """Let background tasks run until ``condition`` holds (bounded, no wall-clock wait)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def post(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> int:
    async with http.post(url + PATH, data=body, headers=headers) as response:
        await response.read()
        return response.status


async def post_signed(
    http: aiohttp.ClientSession, url: str, body: bytes, clock: ManualClock
) -> int:
    """:func:`post` with the signature Retell would send at ``clock``'s time."""
    return await post(http, url, body, signed_headers(body, clock))


async def test_a_signed_event_is_answered_at_once_and_handled(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver = make_receiver()
    seen: list[WebhookEvent] = []
    release = asyncio.Event()

    @receiver.on("call_ended")
    async def handle(event: CallEvent) -> None:
        await release.wait()  # the answer must not wait for this
        seen.append(event)

    async with serving(receiver.app()) as url:
        body = event_body("call_ended", "call_1")
        assert await post_signed(http, url, body, clock) == 204
        assert receiver.pending == 1 and not seen
        release.set()
        await receiver.drain()
    assert len(seen) == 1
    event = seen[0]
    assert isinstance(event, CallEvent) and event.call.call_id == "call_1"
    assert receiver.pending == 0


async def test_bad_signatures_get_401_and_nothing_is_dispatched(
    make_receiver: MakeReceiver,
    http: aiohttp.ClientSession,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = make_receiver()
    seen: list[WebhookEvent] = []

    @receiver.on("*")
    async def handle(event: WebhookEvent) -> None:
        seen.append(event)

    body = event_body("call_ended", "call_1")
    good = signed_headers(body, clock)
    stale = signed_headers(body, ManualClock(clock() - 301))
    future = signed_headers(body, ManualClock(clock() + 301))
    variants = [
        {},
        {SIGNATURE_HEADER: ""},
        {SIGNATURE_HEADER: "garbage"},
        signed_headers(body, clock, key="key_someone_else"),
        stale,
        future,
        {SIGNATURE_HEADER: good[SIGNATURE_HEADER].upper()},
    ]
    caplog.set_level(logging.DEBUG, logger="aioretell.webhooks")
    async with serving(receiver.app()) as url:
        for headers in variants:
            assert await post(http, url, body, headers) == 401
        # A tampered body with a signature of the original.
        assert await post(http, url, body.replace(b"call_1", b"call_2"), good) == 401
        assert await post(http, url, b"", signed_headers(b"", clock)) == 401
        await receiver.drain()
        assert not seen
        # Nothing was claimed either: the genuine delivery is still handled.
        assert await post(http, url, body, good) == 204
        await receiver.drain()
    assert len(seen) == 1
    assert any("signature" in r.getMessage() for r in caplog.records)


async def test_duplicates_are_handled_once(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver = make_receiver()
    seen: list[str] = []

    @receiver.on("call_started", "call_ended")
    async def handle(event: CallEvent) -> None:
        seen.append(f"{event.event}:{event.call.call_id}")

    async with serving(receiver.app()) as url:
        started = event_body("call_started", "call_1", call_status="ongoing")
        ended = event_body("call_ended", "call_1")
        assert await post_signed(http, url, started, clock) == 204
        # Retell's retry, signed again a little later.
        clock.advance(11)
        assert await post_signed(http, url, started, clock) == 200
        # Concurrent duplicates while the first is still in flight.
        statuses = await asyncio.gather(*(post_signed(http, url, ended, clock) for _ in range(5)))
        assert sorted(statuses) == [200, 200, 200, 200, 204]
        await receiver.drain()
    assert seen == ["call_started:call_1", "call_ended:call_1"]


async def test_handler_failure_is_logged_and_kept(
    make_receiver: MakeReceiver,
    http: aiohttp.ClientSession,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    letters: list[DeadLetter] = []
    receiver = make_receiver(on_dead_letter=letters.append)
    calls: list[str] = []
    fail = True

    @receiver.on("call_analyzed")
    async def flaky(event: CallEvent) -> None:
        calls.append("flaky")
        if fail:
            raise RuntimeError("database is down")

    @receiver.on("call_analyzed")
    async def steady(event: CallEvent) -> None:
        calls.append("steady")

    caplog.set_level(logging.DEBUG, logger="aioretell.webhooks")
    body = event_body("call_analyzed", "call_7")
    async with serving(receiver.app()) as url:
        assert await post_signed(http, url, body, clock) == 204
        await receiver.drain()
        assert calls == ["flaky", "steady"]  # the other handler still ran

        [letter] = receiver.dead_letters
        assert letters == [letter]
        assert isinstance(letter.event, CallEvent) and letter.event.call.call_id == "call_7"
        assert letter.handler is flaky
        assert isinstance(letter.error, RuntimeError)
        assert letter.body == body
        assert letter.at == clock()
        failures = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(failures) == 1 and failures[0].name == "aioretell.webhooks"
        assert failures[0].exc_info is not None and "call_7" in failures[0].getMessage()

        # Not marked as handled: a redelivery runs the handlers again.
        fail = False
        assert await post_signed(http, url, body, clock) == 204
        await receiver.drain()
        assert calls == ["flaky", "steady", "flaky", "steady"]
        # Once handled, it is a duplicate.
        assert await post_signed(http, url, body, clock) == 200

        # A dead letter can also be replayed directly (only its failed handler).
        assert receiver.replay(letter)
        await receiver.drain()
        assert calls[-1] == "flaky"


async def test_concurrency_is_bounded(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver = make_receiver(max_concurrency=2)
    running = 0
    peak = 0
    done: list[str] = []
    release = asyncio.Event()

    @receiver.on("call_ended")
    async def handle(event: CallEvent) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        done.append(event.call.call_id)

    async with serving(receiver.app()) as url:
        for i in range(6):
            body = event_body("call_ended", f"call_{i}")
            assert await post_signed(http, url, body, clock) == 204
        await settle(lambda: running == 2)
        for _ in range(20):
            await asyncio.sleep(0)
        assert running == 2 and receiver.pending == 6
        release.set()
        await receiver.drain()
    assert peak == 2
    assert sorted(done) == [f"call_{i}" for i in range(6)]


async def test_backlog_limit_answers_503_and_releases_the_key(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver = make_receiver(max_pending=1)
    release = asyncio.Event()
    seen: list[str] = []

    @receiver.on("call_ended")
    async def handle(event: CallEvent) -> None:
        await release.wait()
        seen.append(event.call.call_id)

    async with serving(receiver.app()) as url:
        first = event_body("call_ended", "call_1")
        second = event_body("call_ended", "call_2")
        assert await post_signed(http, url, first, clock) == 204
        assert await post_signed(http, url, second, clock) == 503
        release.set()
        await receiver.drain()
        assert await post_signed(http, url, second, clock) == 204
        await receiver.drain()
    assert seen == ["call_1", "call_2"]


async def test_cleanup_cancels_stuck_handlers_and_keeps_their_events(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver = make_receiver(shutdown_timeout_s=0)
    started = asyncio.Event()
    cancelled: list[str] = []

    @receiver.on("call_ended")
    async def stuck(event: CallEvent) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(event.call.call_id)
            raise

    async with serving(receiver.app()) as url:
        body = event_body("call_ended", "call_1")
        assert await post_signed(http, url, body, clock) == 204
        await started.wait()
    # Leaving serving() ran the app's cleanup: the handler was cancelled and awaited.
    assert cancelled == ["call_1"]
    assert receiver.pending == 0
    [letter] = receiver.dead_letters
    assert isinstance(letter.error, asyncio.CancelledError) and letter.handler is stuck


async def test_closed_receiver_answers_503(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver = make_receiver()
    app = web.Application()
    receiver.add_routes(app, path=PATH)
    async with serving(app) as url:
        await receiver.aclose()
        body = event_body("call_ended")
        assert await post_signed(http, url, body, clock) == 503


async def test_undecodable_signed_body_is_400_and_kept(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver = make_receiver()
    body = b'{"event": "call_ended", "call": {"call_id": 1}}'
    async with serving(receiver.app()) as url:
        assert await post_signed(http, url, body, clock) == 400
    [letter] = receiver.dead_letters
    assert letter.event is None and letter.handler is None and letter.body == body


async def test_catch_all_gets_unknown_events(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver = make_receiver()
    seen: list[WebhookEvent] = []

    @receiver.on("*")
    async def anything(event: WebhookEvent) -> None:
        seen.append(event)

    body = msgspec.json.encode({"event": "voicemail_left", "call": {"call_id": "call_v"}})
    async with serving(receiver.app()) as url:
        assert await post_signed(http, url, body, clock) == 204
        assert await post_signed(http, url, body, clock) == 200
        other = event_body("call_started")
        assert await post_signed(http, url, other, clock) == 204
        await receiver.drain()
    assert [type(e) for e in seen] == [UnknownEvent, CallEvent]


async def test_events_without_handlers_are_acknowledged(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver = make_receiver()
    body = event_body("transcript_updated")
    async with serving(receiver.app()) as url:
        assert await post_signed(http, url, body, clock) == 204
    assert receiver.pending == 0


class RecordingStore:
    """A custom store (as one would write over Redis)."""

    def __init__(self) -> None:
        self.keys: dict[str, float] = {}
        self.log: list[str] = []

    async def claim(self, key: str, ttl_s: float) -> bool:
        self.log.append(f"claim {key}")
        if key in self.keys:
            return False
        self.keys[key] = ttl_s
        return True

    async def release(self, key: str) -> None:
        self.log.append(f"release {key}")
        self.keys.pop(key, None)


async def test_pluggable_store_and_key(
    make_receiver: MakeReceiver, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    store = RecordingStore()
    assert isinstance(store, DedupStore)
    receiver = make_receiver(
        store=store, dedup_ttl_s=60, dedup_key=lambda event, body: f"k:{event.session_id}"
    )

    @receiver.on("call_started", "call_ended")
    async def handle(event: WebhookEvent) -> None:
        return None

    async with serving(receiver.app()) as url:
        for kind in ("call_started", "call_ended"):
            body = event_body(kind, "call_1")
            await post_signed(http, url, body, clock)
        await receiver.drain()
    assert store.keys == {"k:call_1": 60}
    assert store.log == ["claim k:call_1", "claim k:call_1"]


async def test_memory_store_expires_on_its_clock() -> None:
    clock = ManualClock(100.0)
    store = MemoryDedupStore(clock=clock)
    assert await store.claim("a", 10)
    assert not await store.claim("a", 10)
    clock.advance(9.5)
    assert not await store.claim("a", 10)
    assert len(store) == 1
    clock.advance(0.5)
    assert len(store) == 0
    assert await store.claim("a", 10)
    await store.release("a")
    assert await store.claim("a", 10)
    await store.release("missing")
    assert "a" not in repr(store)


async def test_the_api_key_never_shows(
    make_receiver: MakeReceiver,
    http: aiohttp.ClientSession,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = make_receiver()

    @receiver.on("call_ended")
    async def boom(event: CallEvent) -> None:
        raise ValueError("handler bug")

    caplog.set_level(logging.DEBUG)
    body = event_body("call_ended")
    async with serving(receiver.app()) as url:
        await post(http, url, body, {SIGNATURE_HEADER: "v=1,d=" + "0" * 64})
        await post_signed(http, url, body, clock)
        await post_signed(http, url, body, clock)
        await post(http, url, b"{}", signed_headers(b"{}", clock))
        await receiver.drain()
    texts = [repr(receiver), *map(repr, receiver.dead_letters), caplog.text]
    texts += [str(r.exc_info) for r in caplog.records]
    assert caplog.records
    for text in texts:
        assert API_KEY not in text
    assert "call_ended" in repr(receiver)


def test_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETELL_API_KEY", "key_from_env")
    receiver = WebhookReceiver()
    monkeypatch.delenv("RETELL_API_KEY")
    with pytest.raises(ValueError, match="api_key"):
        WebhookReceiver()
    with pytest.raises(ValueError):
        WebhookReceiver(api_key="k", max_concurrency=0)
    with pytest.raises(TypeError):
        receiver.on()
    assert "key_from_env" not in repr(receiver)
