"""What the aioresponses unit tests share: the API's base URL, the mock that answers in its
place, and a client of it. A test module imports the fixtures it uses as ``x as x``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aioresponses import aioresponses

from aioretell import AsyncRetell

BASE = "http://retell.test"
#: The client's key: tests look for it where it must never appear.
KEY = "key_SECRET_do_not_leak_123"


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    """Answers every request in place of the network."""
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[AsyncRetell]:
    """A client of :data:`BASE` that never retries."""
    async with AsyncRetell(api_key=KEY, base_url=BASE, max_retries=0) as c:
        yield c
