from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.services import REDIS_URL, require


@pytest.fixture
def redis_url() -> str:
    return require("Redis", REDIS_URL, 6379, "AIORETELL_TEST_REDIS")


@pytest.fixture
async def namespace(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    from redis.asyncio import Redis

    name = f"aioretell-test-{uuid.uuid4().hex}"
    yield name
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{name}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
