"""RedisPacer against a real Redis: shared buckets, shared 429 pauses, leases, failure."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import time

import pytest

from aioretell._operation_table import OPERATIONS
from aioretell.redis_pacer import PacerUnavailableError, RedisPacer
from benchmarks.chaos import PrivateRedis

CREATE = OPERATIONS["createPhoneCall"]
READ = OPERATIONS["getCall"]

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


async def _take(pacer: RedisPacer, op: object, n: int) -> list[float]:
    """Server times (ms) of ``n`` granted turns taken by concurrent tasks."""
    turns = await asyncio.gather(*(pacer.reserve(op) for _ in range(n)))  # type: ignore[arg-type]
    return sorted(t.granted_ms for t in turns)


async def test_two_pacers_share_one_create_rate(redis_url: str, namespace: str) -> None:
    one = RedisPacer(redis_url, namespace=namespace, create_rate_limit=40)
    two = RedisPacer(redis_url, namespace=namespace, create_rate_limit=40)
    try:
        a, b = await asyncio.gather(_take(one, CREATE, 12), _take(two, CREATE, 12))
    finally:
        await one.aclose()
        await two.aclose()
    times = sorted(a + b)
    # 24 turns at 40/s, each at most half an interval early: the last is >= 23 intervals minus
    # that tolerance after the first, and no 1 s window could hold more than 40 + 1.
    span = times[-1] - times[0]
    assert span >= 23 * 25 - 12.5
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 25 * 0.5 - 1  # never closer than the tolerance allows


async def test_reads_are_not_held_by_the_create_bucket(redis_url: str, namespace: str) -> None:
    # One create per 100 s: the next create waits far longer than 20 reads take on any machine.
    pacer = RedisPacer(redis_url, namespace=namespace, create_rate_limit=0.01)
    try:
        await pacer.reserve(CREATE)
        # The next create waits; reads go through at once meanwhile.
        waiting = asyncio.create_task(pacer.reserve(CREATE))
        reads = await _take(pacer, READ, 20)
        assert not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await pacer.aclose()
    assert len(reads) == 20


async def test_a_429_in_one_process_pauses_the_others(redis_url: str, namespace: str) -> None:
    one = RedisPacer(redis_url, namespace=namespace)
    two = RedisPacer(redis_url, namespace=namespace)
    try:
        turn = await one.reserve(READ)
        # 3 s: the other process still waits a good part of it however slowly aclose() runs.
        one.on_response(READ, turn, 429, {"retry-after": "3"})  # as transports give it: lower case
        await one.aclose()  # waits for the pause to reach Redis
        started = time.monotonic()
        second = await two.reserve(READ)
        waited = time.monotonic() - started
        assert second.granted_ms >= turn.granted_ms + 3000
        assert waited > 0.5  # held by the other process's 429, not by a rate of its own
        two.on_response(READ, second, 200, {})
    finally:
        await one.aclose()
        await two.aclose()


async def test_cancelled_waiters_hold_no_turns(redis_url: str, namespace: str) -> None:
    pacer = RedisPacer(redis_url, namespace=namespace, create_rate_limit=10)
    try:
        first = await pacer.reserve(CREATE)
        waiters = [asyncio.create_task(pacer.reserve(CREATE)) for _ in range(200)]
        await asyncio.sleep(0.05)
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        # The next turn comes one interval after the first, not 200 intervals later.
        nxt = await asyncio.wait_for(pacer.reserve(CREATE), timeout=5)
    finally:
        await pacer.aclose()
    assert nxt.granted_ms - first.granted_ms < 1000


async def test_a_cancelled_ask_is_cancelled_even_when_its_reply_came(
    redis_url: str, namespace: str
) -> None:
    """A cancel that lands as an ask's reply arrives still cancels it: Python 3.11's
    ``asyncio.wait_for`` (redis-py's send, with a socket timeout) used to drop it about every
    other time here, and the task went on holding a turn it had been cancelled out of."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url, socket_timeout=5)
    pacer = RedisPacer(client, namespace=namespace)
    returned = cancelled = 0
    try:
        await pacer.reserve(READ)
        for i in range(200):
            task = asyncio.create_task(pacer.reserve(READ))
            for _ in range(i % 6):  # land the cancel at each step of the ask in turn
                await asyncio.sleep(0)
            if not task.cancel():
                continue  # it had finished: nothing to cancel
            try:
                await task
                returned += 1
            except asyncio.CancelledError:
                cancelled += 1
    finally:
        await pacer.aclose()
        await client.aclose()
    assert returned == 0 and cancelled > 100


@needs_redis_server
async def test_redis_restarted_empty_is_asked_again_on_new_connections() -> None:
    """The pacer's idle connections die with the server and its scripts are gone: the next
    ask reconnects, sends the script's source, and paces from an empty state."""
    async with (
        PrivateRedis() as server,
        RedisPacer(server.url, namespace="restart", create_rate_limit=50) as pacer,
    ):
        before = await asyncio.gather(*(pacer.reserve(CREATE) for _ in range(4)))
        await server.restart(down_s=0.1)
        after = await asyncio.gather(*(pacer.reserve(CREATE) for _ in range(4)))
    assert all(isinstance(turn.granted_ms, float) for turn in before + after)
    assert min(t.granted_ms for t in after) > max(t.granted_ms for t in before)


async def test_closing_closes_every_connection_it_opened(redis_url: str, namespace: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    pacer = RedisPacer(client, namespace=namespace)

    async def ours() -> int:
        """Connections to Redis from this process's address, the caller's own included."""
        return len(await client.client_list())

    try:
        before = await ours()
        await asyncio.gather(*(pacer.reserve(READ) for _ in range(8)))
        during = await ours()
        await pacer.aclose()
        for _ in range(100):  # the server sees the sockets close a moment later
            if (after := await ours()) == before:
                break
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()
    assert during > before and after == before


async def test_concurrency_cap_is_shared(redis_url: str, namespace: str) -> None:
    one = RedisPacer(redis_url, namespace=namespace, max_concurrency=3)
    two = RedisPacer(redis_url, namespace=namespace, max_concurrency=3)
    in_flight = 0
    peak = 0

    async def request(pacer: RedisPacer) -> None:
        nonlocal in_flight, peak
        turn = await pacer.reserve(READ)
        try:
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
        finally:
            pacer.release(READ, turn, sent=True)

    try:
        await asyncio.gather(*(request(p) for p in (one, two) for _ in range(15)))
    finally:
        await one.aclose()
        await two.aclose()
    assert peak == 3


async def test_adaptive_rate_is_shared(redis_url: str, namespace: str) -> None:
    one = RedisPacer(redis_url, namespace=namespace)
    two = RedisPacer(redis_url, namespace=namespace)
    try:
        for _ in range(20):  # successes the fleet saw, reported with the next turns
            turn = await one.reserve(READ)
            one.on_response(READ, turn, 200, {})
        turn = await one.reserve(READ)
        one.on_response(READ, turn, 429, {"retry-after-ms": "10"})
        await asyncio.wait(one._tasks)  # the 429 reached Redis
        times = await _take(two, READ, 6)
    finally:
        await one.aclose()
        await two.aclose()
    # The other process now sends at the shared, lowered rate: spaced, not all at once.
    assert times[-1] - times[0] > 50


async def test_unreachable_redis_fails_closed(namespace: str) -> None:
    pacer = RedisPacer("redis://127.0.0.1:1/0", namespace=namespace)
    try:
        with pytest.raises(PacerUnavailableError, match="unavailable") as caught:
            await pacer.reserve(READ)
    finally:
        await pacer.aclose()
    assert caught.value.request_sent is False
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"namespace": ""}, ValueError),
        ({"namespace": "a b"}, ValueError),
        ({"namespace": "x", "create_rate_limit": float("nan")}, ValueError),
        ({"namespace": "x", "rate_limit": -1}, ValueError),
        ({"namespace": "x", "rate_limit": float("inf")}, ValueError),
        ({"namespace": "x", "rate_limit": "5"}, TypeError),
        ({"namespace": "x", "max_concurrency": 0}, ValueError),
        ({"namespace": "x", "lease_ttl_s": 0}, ValueError),
        ({"namespace": "x", "on_unavailable": "ignore"}, ValueError),
        ({"namespace": "x", "redis": "redis://:s3cret@h:99999/0"}, ValueError),
        ({"namespace": "x", "redis": "http://h"}, ValueError),
        ({"namespace": "x", "redis": 6379}, TypeError),
    ],
)
def test_bad_arguments(options: dict[str, object], error: type[Exception]) -> None:
    """Each names its parameter; a URL's password is never in the message."""
    named = [name for name in options if name != "namespace"] or ["namespace"]
    with pytest.raises(error, match=named[0]) as caught:
        RedisPacer(**{"redis": "redis://127.0.0.1:6379/0", **options})  # type: ignore[arg-type]
    assert "s3cret" not in str(caught.value)
