"""RedisDedupStore on a real Redis: receivers in separate processes' place share one namespace."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from aioretell.emulator import ManualClock
from aioretell.webhooks import CallEvent, RedisDedupStore, WebhookReceiver

from .conftest import event_body, serving
from .test_receiver import MakeReceiver, post_signed


async def test_claim_is_exclusive_and_expires(redis_url: str, namespace: str) -> None:
    async with (
        RedisDedupStore(redis_url, namespace=namespace) as one,
        RedisDedupStore(redis_url, namespace=namespace) as two,
    ):
        assert await one.claim("call_ended:c1", 0.2)
        assert not await two.claim("call_ended:c1", 0.2)
        assert not await one.claim("call_ended:c1", 0.2)
        # Another namespace is another store.
        async with RedisDedupStore(redis_url, namespace=namespace + "-other") as other:
            assert await other.claim("call_ended:c1", 0.2)
            await other.release("call_ended:c1")
        await asyncio.sleep(0.3)  # the PX expiry is Redis's own
        assert await two.claim("call_ended:c1", 60)


async def test_release_drops_only_its_own_claim(redis_url: str, namespace: str) -> None:
    async with (
        RedisDedupStore(redis_url, namespace=namespace) as one,
        RedisDedupStore(redis_url, namespace=namespace) as two,
    ):
        assert await one.claim("k", 60)
        await two.release("k")  # not two's claim: it stays
        assert not await two.claim("k", 60)
        await one.release("k")
        assert await two.claim("k", 60)


async def test_two_receivers_handle_each_event_once(
    redis_url: str,
    namespace: str,
    make_receiver: MakeReceiver,
    http: aiohttp.ClientSession,
    clock: ManualClock,
) -> None:
    seen: list[str] = []
    receivers: list[WebhookReceiver] = []
    stores = [RedisDedupStore(redis_url, namespace=namespace) for _ in range(2)]
    for store in stores:
        receiver = make_receiver(store=store)

        @receiver.on("call_ended")
        async def handle(event: CallEvent) -> None:
            seen.append(event.call.call_id or "")

        receivers.append(receiver)
    try:
        async with serving(receivers[0].app()) as url_a, serving(receivers[1].app()) as url_b:
            bodies = [event_body("call_ended", f"call_{i}") for i in range(20)]
            # Each event delivered to both receivers at once, as a load balancer might after a
            # retry.
            statuses = await asyncio.gather(
                *(post_signed(http, url, body, clock) for body in bodies for url in (url_a, url_b))
            )
            for receiver in receivers:
                await receiver.drain()
    finally:
        for store in stores:
            await store.aclose()
    assert sorted(statuses) == [200] * 20 + [204] * 20
    assert sorted(seen) == sorted(f"call_{i}" for i in range(20))


async def test_redis_down_answers_503_and_handles_the_redelivery(
    redis_url: str,
    namespace: str,
    make_receiver: MakeReceiver,
    http: aiohttp.ClientSession,
    clock: ManualClock,
) -> None:
    seen: list[str] = []
    # Nothing listens on port 1: every claim fails to connect.
    down = RedisDedupStore("redis://127.0.0.1:1/0", namespace=namespace)
    receiver = make_receiver(store=down)

    @receiver.on("call_ended")
    async def handle(event: CallEvent) -> None:
        seen.append(event.call.call_id or "")

    body = event_body("call_ended", "call_9")
    try:
        async with serving(receiver.app()) as url:
            assert await post_signed(http, url, body, clock) == 503
            await receiver.drain()
    finally:
        await down.aclose()
    assert seen == []
    async with RedisDedupStore(redis_url, namespace=namespace) as up:
        receiver = make_receiver(store=up)
        receiver.on("call_ended")(handle)
        async with serving(receiver.app()) as url:
            assert await post_signed(http, url, body, clock) == 204
            await receiver.drain()
    assert seen == ["call_9"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="namespace"):
        RedisDedupStore("redis://127.0.0.1:6379/0", namespace="")
    with pytest.raises(TypeError, match="redis must be"):
        RedisDedupStore(42)
