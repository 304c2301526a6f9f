"""Run a test once per transport: ``aiohttp`` (the default) and ``fast``.

``transport_kind`` is an autouse fixture for the suites that must hold on both transports
(tests/integration imports it into its conftest): under ``fast`` every ``AsyncRetell`` built
without an explicit ``transport=`` gets a ``FastTransport`` with the same pool settings and
fixed headers, which it owns and closes, exactly where it would have built an
``AiohttpTransport``. The tests themselves are not copied and do not change.

A few tests are about ``AiohttpTransport``'s own machinery (its read watchdog task); they
have no ``fast`` run: the conftest's
``pytest_collection_modifyitems`` (:func:`deselect_aiohttp_internals`) drops it.
"""

from __future__ import annotations

import pytest

import aioretell._client
from aioretell._fast_transport import FastTransport

TRANSPORTS = ("aiohttp", "fast")

#: Tests of AiohttpTransport internals, by node id without the parameters.
AIOHTTP_INTERNALS = frozenset(
    {
        "tests/integration/test_direct_path.py::"
        "test_the_watchdog_starts_with_the_first_request_and_ends_with_the_client",
    }
)


@pytest.fixture(params=TRANSPORTS, autouse=True)
def transport_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    kind: str = request.param
    if kind == "fast":
        # The one place the client builds its default transport (from its PoolConfig).
        monkeypatch.setattr(aioretell._client, "AiohttpTransport", FastTransport.from_pool)
    return kind


def deselect_aiohttp_internals(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the ``fast`` run of each test in :data:`AIOHTTP_INTERNALS`."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("transport_kind") if callspec is not None else None
        base = item.nodeid.split("[", 1)[0]
        (drop if kind == "fast" and base in AIOHTTP_INTERNALS else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
