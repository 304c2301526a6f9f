"""Client CPU per request and requests per second, every client in interleaved rounds.

The clients, each with its library's default connection pool, as a user gets it:

* ``aioretell``: ``aioretell.AsyncRetell`` with its default retry policy and pool (100);
* ``retell-sdk``: the official ``retell.AsyncRetell`` (httpx + pydantic), ``max_retries=0``,
  its default pool (100 connections, 20 kept alive). Its default is kept on purpose: widening
  httpx's keep-alive pool to the concurrency makes it markedly slower (httpcore scans every
  pooled connection on each request), so equal pools would flatter aioretell;
* ``retell-sdk aiohttp``: the same SDK with ``http_client=retell.DefaultAioHttpClient()``, its
  documented aiohttp transport (the ``retell-sdk[aiohttp]`` extra, i.e. ``httpx-aiohttp``);
  left out, with a note, when that package is not installed;
* ``floor``: one ``aiohttp.ClientSession`` (default pool, 100) doing the same wire work with no
  client logic: encode the JSON body, send the same headers, read, decode into the same msgspec
  Struct.

The server runs in another process, so the CPU time of this process is the client's alone.

A round opens a fresh client, sends an untimed warm-up batch from at most 128 workers (it opens
the pool; one request per worker, more up to 100 or a twentieth of the round), then times
``requests`` requests from ``concurrency`` workers. First every client runs two calibration
rounds that are thrown away; the faster one's speed sets that client's ``requests`` per round
for this operation and concurrency, so that a round lasts about ``round_seconds`` (never fewer
requests than ``concurrency``, never more than ``max_requests``). Then the clients take turns
round by round (the starting client rotates), so drift of the machine falls on all of them
alike. A request that raises is counted as an error, not retried. Numbers are reported, never
judged.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import msgspec

from benchmarks import stats
from benchmarks.targets import FROM_NUMBER, TO_NUMBER, Target

METADATA = {"customer_id": "cust_0042", "campaign": "bench"}
DYNAMIC_VARIABLES = {"first_name": "Ada", "appointment": "Tuesday 10:00"}
LIST_LIMIT = 100  # the canned server answers every list with its own page; see --page-size
OPERATIONS = ("create_phone_call", "chat.retrieve", "call.list")
#: Workers of the untimed warm-up batch of a round (enough to open a default pool of 100).
WARM_WORKERS = 128

Send = Callable[[], Awaitable[object]]
ClientFactory = Callable[[Target, str], AbstractAsyncContextManager[Send]]


def _check(operation: str) -> None:
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")


def _sends(client: Any, target: Target) -> dict[str, Send]:
    """The three operations through a client with the SDK's call signatures (both match)."""

    async def create_phone_call() -> object:
        return await client.call.create_phone_call(
            from_number=FROM_NUMBER,
            to_number=TO_NUMBER,
            metadata=METADATA,
            retell_llm_dynamic_variables=DYNAMIC_VARIABLES,
        )

    async def retrieve_chat() -> object:
        return await client.chat.retrieve(target.chat_id)

    async def list_calls() -> object:
        return await client.call.list(limit=LIST_LIMIT)

    return {
        "create_phone_call": create_phone_call,
        "chat.retrieve": retrieve_chat,
        "call.list": list_calls,
    }


@asynccontextmanager
async def aioretell_client(target: Target, operation: str) -> AsyncIterator[Send]:
    from aioretell import AsyncRetell

    _check(operation)
    async with AsyncRetell(api_key=target.api_key, base_url=target.base_url) as client:
        yield _sends(client, target)[operation]


@dataclass(frozen=True, slots=True)
class _Wire:
    """What the floor client sends for one operation and what it decodes the answer into."""

    method: str
    path: str
    payload: dict[str, Any] | None
    response_type: type


def _wire(operation: str, target: Target) -> _Wire:
    from aioretell import types

    if operation == "create_phone_call":
        payload = {
            "from_number": FROM_NUMBER,
            "to_number": TO_NUMBER,
            "metadata": METADATA,
            "retell_llm_dynamic_variables": DYNAMIC_VARIABLES,
        }
        return _Wire("POST", "/v2/create-phone-call", payload, types.PhoneCallResponse)
    if operation == "chat.retrieve":
        return _Wire("GET", f"/get-chat/{target.chat_id}", None, types.ChatResponse)
    return _Wire("POST", "/v3/list-calls", {"limit": LIST_LIMIT}, types.CallListResponse)


@asynccontextmanager
async def floor_client(target: Target, operation: str) -> AsyncIterator[Send]:
    _check(operation)
    wire = _wire(operation, target)
    url = target.base_url + wire.path
    encoder = msgspec.json.Encoder()
    decoder: msgspec.json.Decoder[object] = msgspec.json.Decoder(wire.response_type)
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {target.api_key}",
    }
    async with aiohttp.ClientSession() as session:

        async def send() -> object:
            data = None if wire.payload is None else encoder.encode(wire.payload)
            async with session.request(wire.method, url, data=data, headers=headers) as resp:
                body = await resp.read()
                if not 200 <= resp.status < 300:
                    raise RuntimeError(f"unexpected status {resp.status}")
            return decoder.decode(body)

        yield send


def sdk_aiohttp_available() -> bool:
    """Whether the SDK's aiohttp transport can be built (``httpx-aiohttp`` is installed)."""
    try:
        import httpx_aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def _sdk(target: Target, *, aiohttp_transport: bool) -> Any:
    import retell

    if aiohttp_transport:
        return retell.AsyncRetell(
            api_key=target.api_key,
            base_url=target.base_url,
            max_retries=0,
            http_client=retell.DefaultAioHttpClient(),
        )
    return retell.AsyncRetell(api_key=target.api_key, base_url=target.base_url, max_retries=0)


@asynccontextmanager
async def sdk_client(target: Target, operation: str) -> AsyncIterator[Send]:
    _check(operation)
    client = _sdk(target, aiohttp_transport=False)
    try:
        yield _sends(client, target)[operation]
    finally:
        await client.close()


@asynccontextmanager
async def sdk_aiohttp_client(target: Target, operation: str) -> AsyncIterator[Send]:
    _check(operation)
    client = _sdk(target, aiohttp_transport=True)
    try:
        yield _sends(client, target)[operation]
    finally:
        await client.close()


ALL_CLIENTS: dict[str, ClientFactory] = {
    "aioretell": aioretell_client,
    "retell-sdk": sdk_client,
    "retell-sdk aiohttp": sdk_aiohttp_client,
    "floor": floor_client,
}


def available_clients() -> dict[str, ClientFactory]:
    """:data:`ALL_CLIENTS` less the SDK's aiohttp transport when it is not installed."""
    clients = dict(ALL_CLIENTS)
    if not sdk_aiohttp_available():
        del clients["retell-sdk aiohttp"]
    return clients


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed batch: client CPU and wall time for ``requests`` requests."""

    requests: int
    cpu_s: float
    wall_s: float
    errors: int = 0

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s


async def timed_batch(send: Send, requests: int, concurrency: int) -> Sample:
    """Send ``requests`` requests from ``concurrency`` workers sharing one counter."""
    todo = iter(range(requests))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for _ in todo:
            try:
                await send()
            except Exception:  # noqa: BLE001 - counted and reported, never retried
                errors += 1

    gc.collect()
    cpu = time.process_time()
    wall = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    return Sample(requests, cpu, wall, errors)


async def one_round(
    factory: ClientFactory, target: Target, operation: str, requests: int, concurrency: int
) -> Sample:
    async with factory(target, operation) as send:
        workers = min(concurrency, WARM_WORKERS)
        await timed_batch(send, max(workers, min(requests // 20, 100)), workers)
        return await timed_batch(send, requests, concurrency)


def requests_for(rps: float, concurrency: int, round_seconds: float, max_requests: int) -> int:
    """Requests per round so that a round lasts about ``round_seconds``, rounded to 2 digits."""
    wanted = max(concurrency, min(max_requests, rps * round_seconds))
    magnitude = 10 ** max(0, int(math.log10(wanted)) - 1)
    return max(concurrency, int(round(wanted / magnitude) * magnitude))


@dataclass(slots=True)
class Comparison:
    """The samples of every client at one concurrency, in the order they were taken."""

    target: str
    operation: str
    concurrency: int
    requests: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    @property
    def clients(self) -> list[str]:
        return list(self.samples)

    def cpu_us(self, client: str) -> list[float]:
        return [s.cpu_us_per_request for s in self.samples[client]]

    def rps(self, client: str) -> list[float]:
        return [s.requests_per_s for s in self.samples[client]]

    def errors(self, client: str) -> int:
        return sum(s.errors for s in self.samples[client])

    def paired_ratios(self, numerator: str, denominator: str) -> list[float]:
        """CPU per request of ``numerator`` over ``denominator``, round by round.

        Over the rounds both clients ran (a slow client may run fewer, see :func:`compare`).
        """
        top, bottom = self.cpu_us(numerator), self.cpu_us(denominator)
        n = min(len(top), len(bottom))
        return stats.ratios(top[:n], bottom[:n])

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "operation": self.operation,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "samples": {k: [asdict(s) for s in v] for k, v in self.samples.items()},
        }


async def compare(
    target: Target,
    *,
    operation: str = "create_phone_call",
    concurrency: int = 64,
    rounds: int = 5,
    round_seconds: float = 0.3,
    max_requests: int = 4000,
    slow_rounds: int = 3,
    slow_round_seconds: float = 2.0,
    clients: Sequence[str] | None = None,
) -> Comparison:
    """Every client at one operation and concurrency, in interleaved rounds.

    The calibration rounds run at most 64 workers and 100 requests (they only size the rounds);
    a client whose round would take longer than ``slow_round_seconds`` even at the fewest
    requests runs only ``slow_rounds`` rounds.
    """
    _check(operation)
    factories = available_clients()
    names = list(factories) if clients is None else list(clients)
    result = Comparison(target.name, operation, concurrency)
    planned: dict[str, int] = {}
    for name in names:
        # Two short calibration rounds, the faster one counts: a single one that met a pause
        # (the server collecting garbage, say) once sized a fast client's rounds 10x too small.
        first = max(
            [
                await one_round(factories[name], target, operation, 100, min(concurrency, 64))
                for _ in range(2)
            ],
            key=lambda sample: sample.requests_per_s,
        )
        requests = requests_for(first.requests_per_s, concurrency, round_seconds, max_requests)
        result.requests[name] = requests
        result.samples[name] = []
        slow = requests / first.requests_per_s > slow_round_seconds
        planned[name] = min(rounds, slow_rounds) if slow else rounds
    for index in range(rounds):
        start = index % len(names)
        for name in [*names[start:], *names[:start]]:
            if index >= planned[name]:
                continue
            sample = await one_round(
                factories[name], target, operation, result.requests[name], concurrency
            )
            result.samples[name].append(sample)
    return result
