"""The official SDK on the emulator, with every HTTP exchange recorded (status and raw body)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from retell import AsyncRetell, DefaultAsyncHttpxClient


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    body: bytes


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)

    async def on_response(self, response: httpx.Response) -> None:
        body = await response.aread()  # cached: the SDK reads the same bytes afterwards
        request = response.request
        self.exchanges.append(
            Exchange(request.method, request.url.path, response.status_code, body)
        )

    def client(self, api_key: str, base_url: str, *, strict: bool = False) -> AsyncRetell:
        """An SDK client whose answers land in :attr:`exchanges`; ``strict`` makes the SDK
        validate every answer against its pydantic models instead of trusting it."""
        http = DefaultAsyncHttpxClient(event_hooks={"response": [self.on_response]})
        return AsyncRetell(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            http_client=http,
            _strict_response_validation=strict,
        )
