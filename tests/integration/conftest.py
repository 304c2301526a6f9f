from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioretell import AsyncRetell
from aioretell.emulator import Emulator, EmulatorConfig, ManualClock

# Every test here runs on both transports (aiohttp, fast): see tests/fast/transports.py.
from ..fast.transports import (
    deselect_aiohttp_internals,
    transport_kind,  # noqa: F401
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_aiohttp_internals(config, items)


API_KEY = "key_integration_secret"
START = 1_700_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def emu(clock: ManualClock) -> AsyncIterator[Emulator]:
    config = EmulatorConfig(
        api_key=API_KEY,
        call_duration_s=10.0,
        ring_duration_s=1.0,
        concurrency_limit=500,
        clock=clock,
    )
    async with Emulator(config) as emulator:
        yield emulator


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncRetell]:
    """A client on the emulator whose retry waits take no wall time."""
    async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as c:
        c._sleep = _no_sleep
        yield c
