"""Pacing on a fake clock: spacing, turns given back, shared pauses, adaptive rate, the cap."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from aioretell import AsyncRetell
from aioretell._exceptions import APIConnectionError, RateLimitError, RequestInfo
from aioretell._operation import Operation, RetrySafety
from aioretell._operation_table import OPERATIONS
from aioretell._pacing import Pacer, Pacing, RateBucket, _RecentCount
from aioretell._sansio import HTTPRequest, HTTPResponse

from ..manual_time import ManualTime, settle

CREATE = OPERATIONS["createPhoneCall"]
READ = OPERATIONS["getCall"]
PHONE_CALL = (Path(__file__).parent.parent / "fixtures" / "create_phone_call.json").read_bytes()
CONCURRENCY = b'{"concurrency_limit": 1}'
FROM, TO = "+14155550100", "+14155550101"


class FakeTime:
    """A clock that moves only when someone sleeps (one sender at a time)."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class RecordingTransport:
    """Answers at once (or raises what it is given), noting the clock time of every send."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.sends: list[tuple[float, str]] = []
        self.failures: list[BaseException] = []
        self.statuses: list[tuple[int, dict[str, str]]] = []

    async def send(self, request: HTTPRequest, timeout: Any, info: RequestInfo) -> HTTPResponse:
        self.sends.append((self.clock(), info.operation_id))
        if self.failures:
            raise self.failures.pop(0)
        status, headers = self.statuses.pop(0) if self.statuses else (200, {})
        body = PHONE_CALL if info.operation_id == "createPhoneCall" else CONCURRENCY
        return HTTPResponse(status, headers, body if status == 200 else b"{}")

    def times(self, operation_id: str) -> list[float]:
        return [t for t, op in self.sends if op == operation_id]

    async def aclose(self) -> None:
        return None


def manual_client(time: ManualTime, **options: Any) -> tuple[AsyncRetell, RecordingTransport]:
    transport = RecordingTransport(time.clock)
    options.setdefault("max_retries", 0)
    client = AsyncRetell(
        api_key="key_unit", base_url="http://retell.test", transport=transport, **options
    )
    client._set_time(time.clock, time.sleep)
    return client, transport


async def finish(*tasks: asyncio.Task[Any]) -> None:
    """Stop whatever still waits (so a failing test fails instead of hanging); raise errors."""
    for task in tasks:
        task.cancel()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, Exception):
            raise result


# -- which operations are paced as creates ---------------------------------------------------


def test_create_pacing_covers_the_operations_the_table_marks() -> None:
    marked = {op_id for op_id, op in OPERATIONS.items() if op.starts_conversation}
    assert marked == {
        "createPhoneCall",
        "createWebCall",
        "registerPhoneCall",
        "createBatchCall",
        "createChat",
        "createSmsChat",
    }
    pacer = Pacer(rate_limit=None, create_rate_limit=1.0, max_concurrency=None)
    paced = {op_id for op_id, op in OPERATIONS.items() if pacer.creates in pacer.buckets(op)}
    assert paced == marked


async def test_create_pacing_follows_the_table_not_a_list_of_names() -> None:
    time = ManualTime()
    client, transport = manual_client(time, create_rate_limit=1.0)
    # A new create the table marks is paced; an unmarked operation is not, whatever its name.
    marked = Operation(
        "createHologramCall", "POST", "/v2/create-hologram-call", (), RetrySafety.SIDE_EFFECT,
        starts_conversation=True, response_ref=None,
    )  # fmt: skip
    unmarked = Operation(
        "createPhoneCall", "POST", "/v2/create-phone-call", (), RetrySafety.SIDE_EFFECT,
        response_ref=None,
    )  # fmt: skip
    async with client:
        tasks = [asyncio.create_task(client._request(op)) for op in (marked, marked, unmarked)]
        await time.run_until(110.0)
        await finish(*tasks)
    hologram = [t for t, op in transport.sends if op == "createHologramCall"]
    assert hologram == [100.0, 101.0]
    assert transport.times("createPhoneCall") == [100.0]


# -- the bucket --------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan"), True])
def test_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        RateBucket(rate, clock=lambda: 0.0)


@pytest.mark.parametrize("cap", [0, -3, 2.5, True, "4"])
def test_bad_max_concurrency(cap: Any) -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        Pacer(rate_limit=None, create_rate_limit=None, max_concurrency=cap)


def test_explicit_rate_spaces_turns_evenly() -> None:
    bucket = RateBucket(40.0, clock=lambda: 0.0)
    bucket.take(10.0)
    assert bucket.ready_at() == pytest.approx(10.025)
    bucket.take(10.025, due=10.025)
    assert bucket.ready_at() == pytest.approx(10.05)
    # after idling, no burst is saved up
    bucket.take(20.0)
    assert bucket.ready_at() == pytest.approx(20.025)


def test_a_sender_woken_late_is_charged_at_its_due_time_up_to_one_interval() -> None:
    bucket = RateBucket(10.0, clock=lambda: 0.0)
    bucket.take(5.0)
    bucket.take(5.103, due=5.1)  # woke 3 ms late: the next turn stays on the 0.1 s grid
    assert bucket.ready_at() == pytest.approx(5.2)
    bucket.take(9.0, due=5.2)  # woke 3.8 s late: charged one interval back at most
    assert bucket.ready_at() == pytest.approx(9.0)


def test_giving_back_the_last_turn_restores_the_one_before() -> None:
    bucket = RateBucket(1.0, clock=lambda: 0.0)
    bucket.take(5.0)
    bucket.take(6.0, due=6.0)
    bucket.give_back(6.0)
    assert bucket.ready_at() == 6.0  # still one interval after the turn at 5.0
    bucket.give_back(5.0)  # not the last turn any more: its time has passed
    assert bucket.ready_at() == 6.0


def test_a_turn_granted_after_it_keeps_a_turn_from_being_given_back() -> None:
    bucket = RateBucket(1.0, clock=lambda: 0.0)
    bucket.take(5.0)
    bucket.take(6.0, due=6.0)
    bucket.give_back(5.0)
    assert bucket.ready_at() == 7.0


def test_pause_holds_the_bucket_then_spacing_resumes() -> None:
    bucket = RateBucket(100.0, clock=lambda: 0.0)
    bucket.take(5.0)
    bucket.on_rate_limited(5.0, sent_at=4.9, retry_after=1.0)
    assert bucket.ready_at() == 6.0
    bucket.take(6.0, due=6.0)
    assert bucket.ready_at() == pytest.approx(6.01)  # no burst when the pause ends


def test_pause_without_retry_after_uses_default() -> None:
    bucket = RateBucket(10.0, clock=lambda: 0.0)
    bucket.on_rate_limited(5.0, sent_at=5.0, retry_after=None)
    assert bucket.paused_until == 6.0
    assert bucket.rate == 10.0  # an explicit rate is the caller's: never changed


def test_adaptive_429_with_no_history_starts_slow() -> None:
    bucket = RateBucket(None, clock=lambda: 0.0)
    bucket.on_rate_limited(5.0, sent_at=5.0, retry_after=0.5)
    assert bucket.rate == 1.0
    assert bucket.ceiling is None
    bucket.take(6.0)
    assert bucket.rate == pytest.approx(2.0)  # doubles per second until the next 429


def test_adaptive_halves_once_per_event_but_not_below_what_got_through() -> None:
    bucket = RateBucket(None, clock=lambda: 0.0)
    now = 50.0
    for i in range(60):  # 60 successes arrived within one second
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
    bucket.take(later)
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
        bucket.take(10.0 + step * 0.1)
    assert bucket.rate is not None and 90.0 <= bucket.rate < 100.0
    before = bucket.rate
    bucket.take(12.1)
    assert bucket.rate - before <= 0.1 * 1.0 * 2.1 + 1e-9  # 1%/s of the ceiling, x calm time


def test_recent_count_takes_events_in_any_order() -> None:
    count = _RecentCount()
    for i in range(100):
        count.add(50.0 + i / 100)
    count.add(49.99)  # late report from the previous second: counted there
    count.add(47.5)  # older than the window: ignored, the rest kept
    assert count.per_second(50.5) == pytest.approx(100 + 0.5 * 1)  # the previous second weighs half
    assert count.per_second(51.5) == pytest.approx(50)  # half of last second's 100 still in


# -- the pacer -----------------------------------------------------------------------------


def test_with_no_limits_every_turn_is_granted_at_once() -> None:
    fake = FakeTime()
    pacer: Pacing[float] = Pacer(rate_limit=None, create_rate_limit=None, max_concurrency=None)
    pacer.set_time(fake.clock, fake.sleep)
    for op in (READ, CREATE) * 50:
        turn = pacer.try_reserve(op)
        assert turn == fake.now
        pacer.on_response(op, turn, 200, {})


async def take_turn(pacer: Pacer, op: Operation) -> float:
    """What the client does before each send: a turn now, else wait for one."""
    turn = pacer.try_reserve(op)
    return turn if turn is not None else await pacer.reserve(op)


async def test_waiting_sender_queues_again_when_paused_while_asleep() -> None:
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
    pacer.on_response(CREATE, sent, 429, {"retry-after": "3"})
    read_at = await take_turn(pacer, READ)
    assert read_at == sent  # reads go on
    create_at = await take_turn(pacer, CREATE)
    assert create_at >= sent + 3.0


async def test_a_create_waiting_for_its_bucket_does_not_hold_up_reads() -> None:
    time = ManualTime()
    client, transport = manual_client(time, rate_limit=100.0, create_rate_limit=1.0)
    async with client:
        creates = [
            asyncio.create_task(client.call.create_phone_call(from_number=FROM, to_number=TO))
            for _ in range(3)
        ]
        await settle()
        reads = [asyncio.create_task(client.concurrency.retrieve()) for _ in range(5)]
        await time.run_until(103.0)
        await finish(*creates, *reads)
    assert transport.times("createPhoneCall") == [100.0, 101.0, 102.0]
    reads = transport.times("getConcurrency")
    assert reads == pytest.approx([100.01, 100.02, 100.03, 100.04, 100.05])


async def test_adaptive_floor_counts_successes_on_arrival_in_any_order() -> None:
    time = ManualTime(49.99)
    client, transport = manual_client(time)
    held = asyncio.Event()
    original = transport.send

    async def send(request: HTTPRequest, timeout: Any, info: RequestInfo) -> HTTPResponse:
        if not transport.sends:  # the first request's answer is slow
            transport.sends.append((time.now, info.operation_id))
            await held.wait()
            return HTTPResponse(200, {}, CONCURRENCY)
        return await original(request, timeout, info)

    transport.send = send  # type: ignore[method-assign]
    async with client:
        slow = asyncio.create_task(client.concurrency.retrieve())  # sent at 49.99
        await settle()
        for i in range(100):  # 100 more go and come back within the next second
            time.now = 50.0 + i / 110
            await client.concurrency.retrieve()
        time.now = 50.95
        held.set()  # the first answer arrives last
        await slow
        time.now = 50.96
        transport.statuses.append((429, {"retry-after": "0"}))
        with pytest.raises(RateLimitError):
            await client.concurrency.retrieve()
        rate = client._shared.pacer.requests.rate  # type: ignore[attr-defined]
    # 101 successes arrived in the last second: the new rate keeps 90% of them
    assert rate == pytest.approx(0.9 * 101, rel=0.02)


# -- turns given back ----------------------------------------------------------------------


async def test_mass_cancellation_does_not_slow_later_requests() -> None:
    time = ManualTime()
    client, transport = manual_client(time, rate_limit=1.0)
    async with client:
        queued = [asyncio.create_task(client.concurrency.retrieve()) for _ in range(10_000)]
        await time.run_until(102.0)  # three went out, at 100, 101 and 102
        for task in queued:
            task.cancel()
        await settle()
        assert sum(task.cancelled() for task in queued) == 9_997
        # Five at once after the mass cancellation: one per second from the next free turn,
        # never a burst of the turns given back.
        later = [asyncio.create_task(client.concurrency.retrieve()) for _ in range(5)]
        await time.run_until(110.0)
        await finish(*later)
    times = transport.times("getConcurrency")
    assert times == [100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0, 107.0]


async def test_cancelled_creates_give_their_create_turns_back() -> None:
    time = ManualTime()
    client, transport = manual_client(time, create_rate_limit=2.0)
    async with client:

        def create() -> asyncio.Task[Any]:
            return asyncio.create_task(
                client.call.create_phone_call(from_number=FROM, to_number=TO)
            )

        queued = [create() for _ in range(500)]
        await settle()
        for task in queued[1:]:
            task.cancel()
        await settle()
        later = [create() for _ in range(4)]
        await time.run_until(105.0)
        await finish(queued[0], *later)
    assert transport.times("createPhoneCall") == [100.0, 100.5, 101.0, 101.5, 102.0]


async def test_a_request_that_never_reached_the_server_gives_its_turn_back() -> None:
    time = ManualTime()
    client, transport = manual_client(time, rate_limit=1.0)
    refused = APIConnectionError("refused", request=RequestInfo("getConcurrency", "GET", "u"))
    refused.request_sent = False
    transport.failures.append(refused)
    async with client:
        first = asyncio.create_task(client.concurrency.retrieve())
        await settle()
        with pytest.raises(APIConnectionError):
            await first
        rest = [asyncio.create_task(client.concurrency.retrieve()) for _ in range(3)]
        await time.run_until(105.0)
        await finish(*rest)
    # the refused one's turn at 100 goes to the next request; then one per second
    assert transport.times("getConcurrency") == [100.0, 100.0, 101.0, 102.0]


async def test_a_request_that_may_have_reached_the_server_keeps_its_turn() -> None:
    time = ManualTime()
    client, transport = manual_client(time, rate_limit=1.0)
    reset = APIConnectionError("reset", request=RequestInfo("getConcurrency", "GET", "u"))
    transport.failures.append(reset)  # request_sent defaults to True
    async with client:
        with pytest.raises(APIConnectionError):
            await client.concurrency.retrieve()
        later = asyncio.create_task(client.concurrency.retrieve())
        await time.run_until(105.0)
        await finish(later)
    assert transport.times("getConcurrency") == [100.0, 101.0]


async def test_cancelled_mid_send_keeps_its_turn() -> None:
    time = ManualTime()
    client, transport = manual_client(time, rate_limit=1.0)
    gate = asyncio.Event()
    original = transport.send

    async def send(request: HTTPRequest, timeout: Any, info: RequestInfo) -> HTTPResponse:
        if not transport.sends:
            transport.sends.append((time.now, info.operation_id))
            await gate.wait()  # on the wire when cancelled
        return await original(request, timeout, info)

    transport.send = send  # type: ignore[method-assign]
    async with client:
        first = asyncio.create_task(client.concurrency.retrieve())
        await settle()
        first.cancel()
        await settle()
        later = asyncio.create_task(client.concurrency.retrieve())
        await time.run_until(105.0)
        await finish(later)
    assert first.cancelled()
    assert transport.times("getConcurrency") == [100.0, 101.0]


# -- the concurrency cap -------------------------------------------------------------------


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
        return HTTPResponse(200, {}, CONCURRENCY)

    async def aclose(self) -> None:
        return None


async def test_max_concurrency_caps_in_flight() -> None:
    transport = GatedTransport()
    async with AsyncRetell(
        api_key="key_unit", base_url="http://retell.test", max_concurrency=3, transport=transport
    ) as client:
        calls = asyncio.gather(*(client.concurrency.retrieve() for _ in range(20)))
        await settle()
        transport.gate.set()
        await calls
    assert transport.peak == 3


def test_max_concurrency_caps_a_client_built_outside_the_loop() -> None:
    transport = GatedTransport()
    client = AsyncRetell(
        api_key="key_unit", base_url="http://retell.test", max_concurrency=2, transport=transport
    )

    async def run() -> None:
        async with client:
            calls = asyncio.gather(*(client.concurrency.retrieve() for _ in range(10)))
            await settle()
            transport.gate.set()
            await calls

    asyncio.run(run())
    assert transport.peak == 2
    assert transport.sent == 10


async def test_cancelled_acquire_releases_its_slot() -> None:
    transport = GatedTransport()
    async with AsyncRetell(
        api_key="key_unit", base_url="http://retell.test", max_concurrency=1, transport=transport
    ) as client:
        holder = asyncio.create_task(client.concurrency.retrieve())
        waiter = asyncio.create_task(client.concurrency.retrieve())
        await settle()
        assert transport.sent == 1  # the waiter waits for the only slot
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        transport.gate.set()
        await holder
        await asyncio.wait_for(client.concurrency.retrieve(), timeout=5)
    assert transport.sent == 2


async def test_cancelled_while_waiting_for_its_rate_turn_frees_its_slot() -> None:
    time = ManualTime()
    client, transport = manual_client(time, rate_limit=1.0, max_concurrency=1)
    async with client:
        await client.concurrency.retrieve()  # at 100: the next turn is at 101
        waiting = asyncio.create_task(client.concurrency.retrieve())
        await settle()
        waiting.cancel()
        await settle()
        later = asyncio.create_task(client.concurrency.retrieve())
        await time.run_until(105.0)
        await finish(later)
    assert waiting.cancelled()
    assert transport.times("getConcurrency") == [100.0, 101.0]


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
