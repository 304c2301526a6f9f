"""Where the tests find PostgreSQL and Redis, and what happens when they are not there.

The addresses come from ``AIORETELL_TEST_POSTGRES`` and ``AIORETELL_TEST_REDIS`` (defaults: the
services this project's machines run on loopback). Without a server the tests that need it skip
with a line saying how to run them, so the README's test command passes on a laptop; with
``AIORETELL_REQUIRE_SERVICES=1`` (what ``.ci/run`` sets) a missing server fails them instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "AIORETELL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AIORETELL_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("AIORETELL_REQUIRE_SERVICES", "") not in ("", "0")


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def require(name: str, url: str, default_port: int, env: str) -> str:
    """``url`` if its server answers; otherwise skip (or fail when services are required)."""
    if _answers(url, default_port):
        return url
    message = f"{name} is not reachable at {url}: start one there or set {env} to run these tests"
    if REQUIRED:
        pytest.fail(message + " (AIORETELL_REQUIRE_SERVICES is set)", pytrace=False)
    pytest.skip(message)


# Fixtures: a conftest imports them where its tests need Redis.


@pytest.fixture
def redis_url() -> str:
    """:data:`REDIS_URL` if Redis answers there; otherwise as :func:`require`."""
    return require("Redis", REDIS_URL, 6379, "AIORETELL_TEST_REDIS")


@pytest.fixture
async def namespace(redis_url: str) -> AsyncIterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    from redis.asyncio import Redis  # the optional "redis" extra

    name = f"aioretell-test-{uuid.uuid4().hex}"
    yield name
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{name}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
