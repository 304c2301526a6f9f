from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from aioretell.emulator import Emulator, EmulatorConfig, ManualClock

API_KEY = "key_test_emulator"
START = 1_700_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def make_config(clock: ManualClock) -> Callable[..., EmulatorConfig]:
    """Test settings on the fake clock: 1 s ring, 10 s calls, 3 concurrent calls."""

    def make(**overrides: Any) -> EmulatorConfig:
        settings: dict[str, Any] = {
            "api_key": API_KEY,
            "call_duration_s": 10.0,
            "ring_duration_s": 1.0,
            "concurrency_limit": 3,
            "clock": clock,
        }
        settings.update(overrides)
        return EmulatorConfig(**settings)

    return make


@pytest.fixture
async def emu(make_config: Callable[..., EmulatorConfig]) -> AsyncIterator[Emulator]:
    async with Emulator(make_config()) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session on the emulator, authenticated."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(emu.base_url, headers=headers) as session:
        yield session
