"""``client.concurrency``: the account's call concurrency."""

from __future__ import annotations

from ..types.concurrency import ConcurrencyRetrieveResponse
from ._base import Resource, operation

_GET = operation("getConcurrency")


class ConcurrencyResource(Resource):
    __slots__ = ()

    async def retrieve(self) -> ConcurrencyRetrieveResponse:
        """How many calls run now, the account's limit, and the inbound reservation."""
        result: ConcurrencyRetrieveResponse = await self._client._request(_GET)
        return result
