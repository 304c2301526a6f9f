"""The fixture that runs tests/integration on both transports really swaps the transport."""

from __future__ import annotations

from aioretell import AsyncRetell
from aioretell._fast_transport import FastTransport
from aioretell._transport import AiohttpTransport

from .transports import transport_kind  # noqa: F401  (autouse: this module runs twice too)


async def test_each_run_builds_the_transport_it_names(transport_kind: str) -> None:  # noqa: F811
    async with AsyncRetell(
        api_key="key_fixture", base_url="http://127.0.0.1:1", connection_limit=7
    ) as client:
        transport = client._shared.transport
        assert client._shared.owns_transport  # built by the client, closed by it
        if transport_kind == "fast":
            assert isinstance(transport, FastTransport)
            assert transport._limit == 7  # the client's pool settings carried over
            assert "Authorization" in transport._headers  # and its fixed headers
        else:
            assert isinstance(transport, AiohttpTransport)
