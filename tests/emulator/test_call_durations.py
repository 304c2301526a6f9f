"""Call durations: fixed by default, or drawn per call from a seeded range."""

from __future__ import annotations

import math
from collections.abc import Callable

import aiohttp
import pytest

from aioretell.emulator import Emulator, EmulatorConfig, ManualClock

from .conftest import API_KEY

HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def _durations(config: EmulatorConfig, n: int) -> list[float]:
    """Seconds each of ``n`` calls placed through the state stays ongoing."""
    emu = Emulator(config)
    calls = [
        emu.state.create_call("phone_call", "agent_emulator_default", to_number=f"+1415555{i:04d}")
        for i in range(n)
    ]
    return [call.natural_end_at - call.connect_at for call in calls]


def test_default_duration_is_the_fixed_one(make_config: Callable[..., EmulatorConfig]) -> None:
    assert _durations(make_config(concurrency_limit=100), 20) == [10.0] * 20


def test_durations_are_drawn_uniformly_from_the_range(
    make_config: Callable[..., EmulatorConfig],
) -> None:
    config = make_config(call_duration_range_s=(1.0, 3.0), concurrency_limit=5000, seed=7)
    durations = _durations(config, 4000)
    assert all(1.0 <= d <= 3.0 for d in durations)
    # Drawn, not one value (read back from clock-sized floats, so a few may coincide).
    assert len(set(durations)) > 3900
    # Uniform on [1, 3]: mean 2, and each half of the range holds about half the calls
    # (4,000 draws: a 5-sigma band is about +-0.04 and +-160).
    assert abs(sum(durations) / len(durations) - 2.0) < 0.05
    assert abs(sum(d < 2.0 for d in durations) - 2000) < 200


def test_durations_repeat_with_the_seed_and_leave_ids_as_they_were(
    make_config: Callable[..., EmulatorConfig],
) -> None:
    def ids(config: EmulatorConfig) -> list[str]:
        emu = Emulator(config)
        return [
            emu.state.create_call("phone_call", "agent_emulator_default").call_id for _ in range(5)
        ]

    ranged = make_config(call_duration_range_s=(1.0, 3.0), seed=3)
    assert _durations(ranged, 5) == _durations(ranged, 5)
    assert _durations(ranged, 5) != _durations(make_config(call_duration_range_s=(1, 3)), 5)
    assert ids(ranged) == ids(make_config(seed=3))


async def test_a_drawn_call_ends_when_its_duration_is_over(
    make_config: Callable[..., EmulatorConfig], clock: ManualClock
) -> None:
    config = make_config(call_duration_range_s=(2.0, 4.0), ring_duration_s=0.0, seed=1)
    expected = _durations(config, 1)[0]  # the same seed draws the same first duration
    async with Emulator(config) as emu, aiohttp.ClientSession(headers=HEADERS) as http:
        body = {"from_number": "+14155550100", "to_number": "+14155550123"}
        async with http.post(emu.base_url + "/v2/create-phone-call", json=body) as r:
            call_id = (await r.json())["call_id"]

        async def status() -> str:
            async with http.get(f"{emu.base_url}/v2/get-call/{call_id}") as r:
                return str((await r.json())["call_status"])

        clock.advance(expected - 0.01)
        assert await status() == "ongoing"
        clock.advance(0.02)
        assert await status() == "ended"


@pytest.mark.parametrize(
    "span", [(3.0, 1.0), (-1.0, 2.0), (1.0, math.inf), (math.nan, 2.0), (1.0, math.nan)]
)
def test_a_bad_range_is_refused_naming_it(span: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="call_duration_range_s"):
        EmulatorConfig(api_key="key", call_duration_range_s=span)
