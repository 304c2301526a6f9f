"""Pacing on a fake clock: spacing, shared pauses, adaptive rate, the concurrency cap."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aioretell import AsyncRetell
from aioretell._operation import Operation, RetrySafety
from aioretell._pacing import PACED_CREATES, Pacer, RateBucket
from aioretell._sansio import HTTPResponse

CREATE = Operation("createPhoneCall", "POST", "/v2/create-phone-call", (), RetrySafety.SIDE_EFFECT)
READ = Operation("getCall", "GET", "/v2/get-call/{call_id}", ("call_id",), RetrySafety.SAFE)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def test_paced_creates_are_the_dialing_ones() -> None:
    assert {"createPhoneCall", "createWebCall", "createChat", "createSmsChat"} <= PACED_CREATES
    assert "createChatCompletion" not in PACED_CREATES
    assert "createAgent" not in PACED_CREATES


@pytest.mark.parametrize("rate", [0, -1, float("inf"), True])
def test_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        RateBucket(rate, clock=lambda: 0.0)


def test_bad_max_concurrency() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        Pacer(rate_limit=None, create_rate_limit=None, max_concurrency=0)


def test_explicit_rate_spaces_requests_evenly() -> None:
    bucket = RateBucket(40.0, clock=lambda: 0.0)
    waits = [bucket.reserve(10.0) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1])
    # after idling, no burst is saved up
    assert bucket.reserve(20.0) == 0.0
    assert bucket.reserve(20.0) == pytest.approx(0.025)


def test_pause_holds_every_sender_then_spaces_them() -> None:
    bucket = RateBucket(100.0, clock=lambda: 0.0)
    assert bucket.reserve(5.0) == 0.0
    bucket.on_rate_limited(5.0, sent_at=4.9, retry_after=1.0)
    assert bucket.reserve(5.2) == pytest.approx(0.8)
    assert bucket.reserve(5.2) == pytest.approx(0.81)  # no burst when the pause ends


def test_adaptive_429_with_no_history_starts_slow() -> None:
    bucket = RateBucket(None, clock=lambda: 0.0)
    bucket.on_rate_limited(5.0, sent_at=5.0, retry_after=0.5)
    assert bucket.rate == 1.0
    assert bucket.ceiling is None
    bucket.reserve(6.0)
    assert bucket.rate == pytest.approx(2.0)  # doubles per second until the next 429


def test_pause_without_retry_after_uses_default() -> None:
    bucket = RateBucket(10.0, clock=lambda: 0.0)
    bucket.on_rate_limited(5.0, sent_at=5.0, retry_after=None)
    assert bucket.paused_until == 6.0
    assert bucket.rate == 10.0  # an explicit rate is the caller's: never changed


def test_adaptive_halves_once_per_event_but_not_below_what_got_through() -> None:
    bucket = RateBucket(None, clock=lambda: 0.0)
    now = 50.0
    for i in range(60):  # 60 requests got through within one second
        bucket.on_success(now + i / 60)
    now = 51.0
    bucket.on_rate_limited(now, sent_at=now - 0.01, retry_after=0.02)
    assert bucket.ceiling is not None and 55 <= bucket.ceiling <= 61
    ceiling = bucket.ceiling
    assert bucket.rate == pytest.approx(0.9 * ceiling)  # 90% of what got through beats half
    # more 429s from the same burst do not lower it again
    bucket.on_rate_limited(now + 0.01, sent_at=now - 0.005, retry_after=0.02)
    assert bucket.rate == pytest.approx(0.9 * ceiling)
    # a later event with little getting through halves the rate
    later = now + 5.0
    paced = bucket.rate
    bucket.reserve(later)
    assert bucket.rate is not None and bucket.rate > paced  # grew while calm
    grown = bucket.rate
    bucket.on_rate_limited(later, sent_at=later, retry_after=0.02)
    assert bucket.ceiling == pytest.approx(grown)
    assert bucket.rate == pytest.approx(grown / 2)


def test_adaptive_grows_fast_to_90_percent_then_probes() -> None:
    bucket = RateBucket(None, clock=lambda: 0.0)
    bucket.on_rate_limited(10.0, sent_at=10.0, retry_after=0.0)  # no history: rate 1
    bucket.ceiling = 100.0
    for step in range(1, 21):
        bucket.reserve(10.0 + step * 0.1)
    assert bucket.rate is not None and 90.0 <= bucket.rate < 100.0
    before = bucket.rate
    bucket.reserve(12.1)
    assert bucket.rate - before <= 0.1 * 1.0 * 2.1 + 1e-9  # 1%/s of the ceiling, x calm time


async def take_turn(pacer: Pacer, op: Operation) -> float:
    """What the client does before each send: reserve, and wait only if it must."""
    now, wait = pacer.reserve(op)
    return now if wait <= 0 else await pacer.wait_turn(op, wait)


async def test_acquire_requeues_when_paused_while_waiting() -> None:
    fake = FakeTime()
    pacer = Pacer(rate_limit=10.0, create_rate_limit=None, max_concurrency=None)
    pacer.set_time(fake.clock, fake.sleep)
    first = await take_turn(pacer, READ)
    pacer.requests.pause(fake.now, 2.0)
    second = await take_turn(pacer, READ)
    assert second >= first + 2.0


async def test_429_on_create_pauses_creates_not_reads() -> None:
    fake = FakeTime()
    pacer = Pacer(rate_limit=None, create_rate_limit=5.0, max_concurrency=None)
    pacer.set_time(fake.clock, fake.sleep)
    sent = await take_turn(pacer, CREATE)
    pacer.on_response(CREATE, 429, {"retry-after": "3"}, sent)
    read_at = await take_turn(pacer, READ)
    assert read_at == sent  # reads go on
    create_at = await take_turn(pacer, CREATE)
    assert create_at >= sent + 3.0


class GatedTransport:
    """Holds every request until released; counts how many are in flight."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.in_flight = self.peak = self.sent = 0

    async def send(self, request: Any, timeout: Any, info: Any) -> HTTPResponse:
        self.sent += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        return HTTPResponse(200, {}, b'{"concurrency_limit": 1}')

    async def aclose(self) -> None:
        return None


async def test_max_concurrency_caps_in_flight() -> None:
    transport = GatedTransport()
    async with AsyncRetell(
        api_key="key_unit", base_url="http://retell.test", max_concurrency=3, transport=transport
    ) as client:
        calls = asyncio.gather(*(client.concurrency.retrieve() for _ in range(20)))
        for _ in range(5):
            await asyncio.sleep(0)
        transport.gate.set()
        await calls
    assert transport.peak == 3


async def test_cancelled_acquire_releases_its_slot() -> None:
    transport = GatedTransport()
    async with AsyncRetell(
        api_key="key_unit", base_url="http://retell.test", max_concurrency=1, transport=transport
    ) as client:
        holder = asyncio.create_task(client.concurrency.retrieve())
        waiter = asyncio.create_task(client.concurrency.retrieve())
        for _ in range(5):
            await asyncio.sleep(0)
        assert transport.sent == 1  # the waiter waits for the only slot
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        transport.gate.set()
        await holder
        await asyncio.wait_for(client.concurrency.retrieve(), timeout=5)
    assert transport.sent == 2


# -- the idle pacer (nothing to pace: the client sends without reserving) ---------------------


@pytest.mark.parametrize(
    ("options", "idle"),
    [
        ({}, True),
        ({"rate_limit": 10.0}, False),
        ({"create_rate_limit": 5.0}, False),
        ({"max_concurrency": 4}, False),
    ],
)
def test_idle_only_without_rates_and_cap(options: dict[str, Any], idle: bool) -> None:
    unset = {"rate_limit": None, "create_rate_limit": None, "max_concurrency": None}
    assert Pacer(**{**unset, **options}).idle is idle


def test_unpaced_answers_count_for_the_first_decrease_and_a_429_ends_idle() -> None:
    time = FakeTime()
    pacer = Pacer(rate_limit=None, create_rate_limit=None, max_concurrency=None, clock=time.clock)
    for _ in range(200):  # 200 creates got through in the last second, sent unpaced
        pacer.on_unpaced_response(CREATE, 201, {})
        time.now += 0.005
    pacer.on_unpaced_response(CREATE, 429, {"retry-after-ms": "500"})
    assert not pacer.idle
    creates = pacer.creates
    # Not collapsed to the 1/s floor: 90% of what the server accepted in the last second.
    assert creates.rate == pytest.approx(180.0, rel=0.05)
    assert creates.paused_until == pytest.approx(time.now + 0.5)
    # Another 429 of a create sent while idle belongs to the same event: no second decrease.
    pacer.on_unpaced_response(CREATE, 429, {})
    assert creates.rate == pytest.approx(180.0, rel=0.05)
    assert pacer.requests.rate is None  # reads were not limited


def test_unpaced_failures_other_than_429_count_for_nothing() -> None:
    pacer = Pacer(rate_limit=None, create_rate_limit=None, max_concurrency=None)
    for status in (400, 404, 500, 503):
        pacer.on_unpaced_response(READ, status, {})
    assert pacer.idle
    assert pacer.requests._ok.per_second(pacer.clock()) == 0
