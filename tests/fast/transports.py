"""Run a test once per transport: ``aiohttp`` (the default) and ``fast``.

``transport_kind`` is an autouse fixture for the suites that must hold on both transports
(tests/integration imports it into its conftest): under ``fast`` every ``AsyncRetell`` built
without an explicit ``transport=`` gets a ``FastTransport`` with the same pool settings, which
it owns and closes, exactly where it would have built an ``AiohttpTransport``. The tests
themselves are not copied and do not change.
"""

from __future__ import annotations

import pytest

import aioretell._client
from aioretell._fast_transport import FastTransport

TRANSPORTS = ("aiohttp", "fast")


@pytest.fixture(params=TRANSPORTS, autouse=True)
def transport_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    kind: str = request.param
    if kind == "fast":
        # The one place the client builds its default transport (from its PoolConfig).
        monkeypatch.setattr(aioretell._client, "AiohttpTransport", FastTransport.from_pool)
    return kind
