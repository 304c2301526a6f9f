"""``AsyncRetell(transport=...)``: the client's own transport by name, or a clear error at
construction for anything else (never an AttributeError at the first request)."""

from __future__ import annotations

import pytest

from aioretell import AsyncRetell
from aioretell._fast_transport import FastTransport
from aioretell._transport import AiohttpTransport
from aioretell.emulator import Emulator, EmulatorConfig

API_KEY = "key_transport_choice"


@pytest.mark.parametrize(("name", "kind"), [("aiohttp", AiohttpTransport), ("fast", FastTransport)])
async def test_a_transport_by_name_is_the_clients_own(name: str, kind: type) -> None:
    async with (
        Emulator(EmulatorConfig(api_key=API_KEY)) as emu,
        AsyncRetell(api_key=API_KEY, base_url=emu.base_url, transport=name) as client,  # type: ignore[arg-type]
    ):
        assert type(client._shared.transport) is kind
        # The credentials travel as the transport's fixed headers: the emulator accepts them.
        agents = await client.agent.list()
        assert agents.items
    assert client.is_closed


@pytest.mark.parametrize(
    ("transport", "error", "says"),
    [
        ("httpx", ValueError, "transport must be 'aiohttp' or 'fast'"),
        ("", ValueError, "transport must be 'aiohttp' or 'fast'"),
        (42, TypeError, "not int"),
        (object(), TypeError, "not object"),
    ],
)
def test_anything_else_is_refused_at_construction(
    transport: object, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        AsyncRetell(api_key=API_KEY, base_url="http://127.0.0.1:1", transport=transport)  # type: ignore[arg-type]
