"""Client CPU per request against the canned server, three clients in interleaved rounds.

The clients, each with its library's default connection pool, as a user gets it:

* ``aioretell``: ``aioretell.AsyncRetell`` with its default retry policy and pool (100);
* ``floor``: one ``aiohttp.ClientSession`` (default pool, 100) doing the same wire work with no
  client logic: encode the JSON body, send the same headers, read, decode into the same msgspec
  Struct;
* ``retell-sdk``: the official ``retell.AsyncRetell`` (httpx + pydantic), ``max_retries=0``,
  its default pool (100 connections, 20 kept alive). Its default is kept on purpose: widening
  httpx's keep-alive pool to the concurrency makes it markedly slower (httpcore scans every
  pooled connection on each request), so equal pools would flatter aioretell.

The server runs in another process, so the CPU time of this process is the client's alone.
A round opens a fresh client, sends an untimed warm-up batch that fills the pool, then times
``requests`` requests from ``concurrency`` workers. One warm-up round per client is thrown away,
then the clients take turns round by round (the starting client rotates), so drift of the
machine falls on all of them alike. Numbers are reported, never judged.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import msgspec

from benchmarks import stats

API_KEY = "key_bench"  # a dummy: the canned server only checks that a bearer token is present
CHAT_ID = "chat_bench_000000000000000000000"
FROM_NUMBER = "+15550100001"
TO_NUMBER = "+15550100002"
METADATA = {"customer_id": "cust_0042", "campaign": "bench"}
DYNAMIC_VARIABLES = {"first_name": "Ada", "appointment": "Tuesday 10:00"}
LIST_LIMIT = 100  # the canned server answers every list with its own page; see --page-size
OPERATIONS = ("create_phone_call", "chat.retrieve", "call.list")

Send = Callable[[], Awaitable[object]]
ClientFactory = Callable[[str, str], AbstractAsyncContextManager[Send]]


def _check(operation: str) -> None:
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")


@asynccontextmanager
async def aioretell_client(base_url: str, operation: str) -> AsyncIterator[Send]:
    from aioretell import AsyncRetell

    _check(operation)
    async with AsyncRetell(api_key=API_KEY, base_url=base_url) as client:

        async def create_phone_call() -> object:
            return await client.call.create_phone_call(
                from_number=FROM_NUMBER,
                to_number=TO_NUMBER,
                metadata=METADATA,
                retell_llm_dynamic_variables=DYNAMIC_VARIABLES,
            )

        async def retrieve_chat() -> object:
            return await client.chat.retrieve(CHAT_ID)

        async def list_calls() -> object:
            return await client.call.list(limit=LIST_LIMIT)

        sends = {
            "create_phone_call": create_phone_call,
            "chat.retrieve": retrieve_chat,
            "call.list": list_calls,
        }
        yield sends[operation]


@dataclass(frozen=True, slots=True)
class _Wire:
    """What the floor client sends for one operation and what it decodes the answer into."""

    method: str
    path: str
    payload: dict[str, Any] | None
    status: int
    response_type: type


def _wire(operation: str) -> _Wire:
    from aioretell import types

    if operation == "create_phone_call":
        payload = {
            "from_number": FROM_NUMBER,
            "to_number": TO_NUMBER,
            "metadata": METADATA,
            "retell_llm_dynamic_variables": DYNAMIC_VARIABLES,
        }
        return _Wire("POST", "/v2/create-phone-call", payload, 201, types.PhoneCallResponse)
    if operation == "chat.retrieve":
        return _Wire("GET", f"/get-chat/{CHAT_ID}", None, 200, types.ChatResponse)
    return _Wire("POST", "/v3/list-calls", {"limit": LIST_LIMIT}, 200, types.CallListResponse)


@asynccontextmanager
async def floor_client(base_url: str, operation: str) -> AsyncIterator[Send]:
    _check(operation)
    wire = _wire(operation)
    url = base_url + wire.path
    encoder = msgspec.json.Encoder()
    decoder: msgspec.json.Decoder[object] = msgspec.json.Decoder(wire.response_type)
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {API_KEY}",
    }
    async with aiohttp.ClientSession() as session:

        async def send() -> object:
            data = None if wire.payload is None else encoder.encode(wire.payload)
            async with session.request(wire.method, url, data=data, headers=headers) as resp:
                body = await resp.read()
                if resp.status != wire.status:
                    raise RuntimeError(f"unexpected status {resp.status}")
            return decoder.decode(body)

        yield send


@asynccontextmanager
async def sdk_client(base_url: str, operation: str) -> AsyncIterator[Send]:
    import retell

    _check(operation)
    client = retell.AsyncRetell(api_key=API_KEY, base_url=base_url, max_retries=0)
    try:

        async def create_phone_call() -> object:
            return await client.call.create_phone_call(
                from_number=FROM_NUMBER,
                to_number=TO_NUMBER,
                metadata=METADATA,
                retell_llm_dynamic_variables=DYNAMIC_VARIABLES,
            )

        async def retrieve_chat() -> object:
            return await client.chat.retrieve(CHAT_ID)

        async def list_calls() -> object:
            return await client.call.list(limit=LIST_LIMIT)

        sends = {
            "create_phone_call": create_phone_call,
            "chat.retrieve": retrieve_chat,
            "call.list": list_calls,
        }
        yield sends[operation]
    finally:
        await client.close()


CLIENTS: dict[str, ClientFactory] = {
    "aioretell": aioretell_client,
    "floor": floor_client,
    "retell-sdk": sdk_client,
}


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed batch: client CPU and wall time for ``requests`` requests."""

    requests: int
    cpu_s: float
    wall_s: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s


async def timed_batch(send: Send, requests: int, concurrency: int) -> Sample:
    """Send ``requests`` requests from ``concurrency`` workers sharing one counter."""
    todo = iter(range(requests))

    async def worker() -> None:
        for _ in todo:
            await send()

    gc.collect()
    cpu = time.process_time()
    wall = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    return Sample(requests, cpu, wall)


async def one_round(
    factory: ClientFactory, base_url: str, operation: str, requests: int, concurrency: int
) -> Sample:
    async with factory(base_url, operation) as send:
        await timed_batch(send, max(2 * concurrency, requests // 10), concurrency)
        return await timed_batch(send, requests, concurrency)


@dataclass(slots=True)
class Comparison:
    """The samples of every client at one concurrency, in the order they were taken."""

    operation: str
    concurrency: int
    requests: int
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def cpu_us(self, client: str) -> list[float]:
        return [s.cpu_us_per_request for s in self.samples[client]]

    def rps(self, client: str) -> list[float]:
        return [s.requests_per_s for s in self.samples[client]]

    def paired_ratios(self, numerator: str, denominator: str) -> list[float]:
        """CPU per request of ``numerator`` over ``denominator``, round by round."""
        return stats.ratios(self.cpu_us(numerator), self.cpu_us(denominator))

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "samples": {k: [asdict(s) for s in v] for k, v in self.samples.items()},
        }


async def compare(
    base_url: str,
    *,
    operation: str = "create_phone_call",
    concurrency: int = 64,
    rounds: int = 5,
    requests: int = 2000,
    clients: Sequence[str] = tuple(CLIENTS),
) -> Comparison:
    _check(operation)
    result = Comparison(operation, concurrency, requests, {name: [] for name in clients})
    for name in clients:
        await one_round(CLIENTS[name], base_url, operation, requests, concurrency)
    for index in range(rounds):
        start = index % len(clients)
        for name in [*clients[start:], *clients[:start]]:
            sample = await one_round(CLIENTS[name], base_url, operation, requests, concurrency)
            result.samples[name].append(sample)
    return result
