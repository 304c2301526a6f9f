"""Unit-test setup.

aioresponses 0.7.9 builds ``ClientResponse`` without the ``stream_writer`` argument that aiohttp
3.14 made required (aioresponses issue #289, fix pending upstream). Until a release carries the
fix, hand it a response class that supplies a stand-in writer, so that the unit tests run against
the aiohttp our users install rather than an older pin.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import aioresponses.core
from aiohttp import ClientResponse

if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:

    class _ResponseWithWriter(ClientResponse):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
            super().__init__(*args, **kwargs)

    aioresponses.core.ClientResponse = _ResponseWithWriter  # type: ignore[misc]
