"""What aioretell's pipeline costs over aiohttp: client CPU per request, side by side.

``python -m benchmarks.pipeline_overhead [--quick]``. Three variants run in this one process
against the canned server (:mod:`benchmarks.canned_server`, in a process of its own, so
``time.process_time()`` here is the client's CPU alone):

* ``aioretell``: ``AsyncRetell`` with its defaults, through ``client.call.create_phone_call``
  and ``client.call.retrieve``;
* ``tuned``: aiohttp with every public knob set the way aioretell sets it: one
  ``ClientSession`` whose default headers carry ``Authorization``, ``Accept`` and
  ``User-Agent``, a ``TCPConnector`` with aioretell's pool limits, no cookie jar, no netrc or
  proxy lookups, no read or total timer; ``resp = await session.request(...)``,
  ``await resp.read()``, ``resp.release()``; the answer decoded by msgspec into the same Struct;
* ``floor``: raw aiohttp + msgspec as :mod:`benchmarks.client_cpu` writes it (a default
  ``ClientSession``, ``async with session.request(...)``, headers per request).

Each (operation, concurrency) cell opens the three clients once, warms them up, then runs many
rounds; in a round every variant sends one short batch (the order rotates from round to round),
so drift of the machine falls on all of them alike. Reported: the median CPU µs per request of
each variant and the median of the per-round ratios. Nothing is asserted.

``MALLOC_MMAP_THRESHOLD_`` is pinned (the process re-executes itself to set it), so glibc's
adaptive mmap threshold does not move under one variant and not another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import msgspec

from benchmarks.canned_server import CannedServer
from benchmarks.targets import API_KEY, FROM_NUMBER, TO_NUMBER

MMAP_THRESHOLD = "1048576"
CALL_ID = "call_bench_000000000000000000000"
METADATA = {"customer_id": "cust_0042", "campaign": "bench"}
DYNAMIC_VARIABLES = {"first_name": "Ada", "appointment": "Tuesday 10:00"}
OPERATIONS = ("create_phone_call", "call.retrieve")
VARIANTS = ("aioretell", "tuned", "floor")
CONCURRENCY = (1, 64, 1024)
#: More workers than this only measure the event loop's queue (the pool holds 100).
MAX_CONCURRENCY = 10_000
#: aioretell's default pool, given to the tuned variant too.
POOL_LIMIT, KEEPALIVE_S, DNS_TTL_S = 100, 15.0, 300

Send = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    batch_seconds: float
    #: fewest requests in a batch (more at high concurrency: at least the concurrency)
    min_batch: int


FULL = Plan(rounds=25, batch_seconds=0.2, min_batch=200)
QUICK = Plan(rounds=7, batch_seconds=0.08, min_batch=100)


# -- the variants ----------------------------------------------------------------------------


@asynccontextmanager
async def aioretell_variant(base_url: str, operation: str) -> AsyncIterator[Send]:
    from aioretell import AsyncRetell

    async with AsyncRetell(api_key=API_KEY, base_url=base_url) as client:
        call = client.call
        if operation == "create_phone_call":

            async def send() -> object:
                return await call.create_phone_call(
                    from_number=FROM_NUMBER,
                    to_number=TO_NUMBER,
                    metadata=METADATA,
                    retell_llm_dynamic_variables=DYNAMIC_VARIABLES,
                )

        else:

            async def send() -> object:
                return await call.retrieve(CALL_ID)

        yield send


@dataclass(frozen=True, slots=True)
class Wire:
    """One operation as a plain aiohttp client sends it: what, where, and the answer's type."""

    method: str
    path: str
    payload: dict[str, Any] | None
    response_type: type


def _wire(operation: str) -> Wire:
    from aioretell import types

    if operation == "create_phone_call":
        payload = {
            "from_number": FROM_NUMBER,
            "to_number": TO_NUMBER,
            "metadata": METADATA,
            "retell_llm_dynamic_variables": DYNAMIC_VARIABLES,
        }
        return Wire("POST", "/v2/create-phone-call", payload, types.PhoneCallResponse)
    return Wire("GET", f"/v2/get-call/{CALL_ID}", None, types.CallResponse)


@asynccontextmanager
async def tuned_client(base_url: str, api_key: str, wire: Wire) -> AsyncIterator[Send]:
    """aiohttp with every public knob set the way aioretell sets it (the module docstring's
    ``tuned``); :mod:`benchmarks.hot_path` measures the same client."""
    from aioretell import __version__

    url = base_url + wire.path
    encoder = msgspec.json.Encoder()
    decoder: msgspec.json.Decoder[object] = msgspec.json.Decoder(wire.response_type)
    connector = aiohttp.TCPConnector(
        limit=POOL_LIMIT, keepalive_timeout=KEEPALIVE_S, ttl_dns_cache=DNS_TTL_S
    )
    session = aiohttp.ClientSession(
        connector=connector,
        # aioretell's own fixed headers, so the server reads the same request
        headers={
            "Accept": "application/json",
            "User-Agent": f"aioretell/{__version__}",
            "Authorization": f"Bearer {api_key}",
        },
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        raise_for_status=False,
    )
    json_type = {"Content-Type": "application/json"}
    method, payload, decode = wire.method, wire.payload, decoder.decode
    async with session:

        async def send() -> object:
            data = None if payload is None else encoder.encode(payload)
            resp = await session.request(
                method, url, data=data, headers=None if data is None else json_type
            )
            try:
                body = await resp.read()
            finally:
                resp.release()
            if not 200 <= resp.status < 300:
                raise RuntimeError(f"unexpected status {resp.status}")
            return decode(body)

        yield send


def tuned_variant(base_url: str, operation: str) -> AbstractAsyncContextManager[Send]:
    return tuned_client(base_url, API_KEY, _wire(operation))


@asynccontextmanager
async def floor_variant(base_url: str, operation: str) -> AsyncIterator[Send]:
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
                if not 200 <= resp.status < 300:
                    raise RuntimeError(f"unexpected status {resp.status}")
            return decoder.decode(body)

        yield send


FACTORIES = {"aioretell": aioretell_variant, "tuned": tuned_variant, "floor": floor_variant}


# -- measuring -------------------------------------------------------------------------------


async def batch(send: Send, requests: int, concurrency: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for ``requests`` requests from ``concurrency`` workers.

    A failed request is not counted as done: it ends the run, since its cost is not comparable.
    """
    todo = iter(range(requests))

    async def worker() -> None:
        for _ in todo:
            await send()

    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    return time.process_time() - cpu, time.perf_counter() - wall


@dataclass(slots=True)
class Cell:
    operation: str
    concurrency: int
    requests: int = 0
    #: CPU µs per request, round by round, per variant
    cpu_us: dict[str, list[float]] = field(default_factory=dict)

    def ratios(self, top: str, bottom: str) -> list[float]:
        return [a / b for a, b in zip(self.cpu_us[top], self.cpu_us[bottom], strict=True)]


async def measure(base_url: str, operation: str, concurrency: int, plan: Plan) -> Cell:
    cell = Cell(operation, concurrency, cpu_us={name: [] for name in VARIANTS})
    async with AsyncExitStack() as stack:
        sends = {
            name: await stack.enter_async_context(FACTORIES[name](base_url, operation))
            for name in VARIANTS
        }
        # Warm-up: open each pool and size the batches on the slowest variant's speed.
        slowest = 0.0
        for send in sends.values():
            await batch(send, max(concurrency, 200), concurrency)
            _, wall = await batch(send, max(concurrency, 200), concurrency)
            slowest = max(slowest, wall / max(concurrency, 200))
        cell.requests = max(plan.min_batch, concurrency, int(plan.batch_seconds / slowest))
        for index in range(plan.rounds):
            start = index % len(VARIANTS)
            for name in [*VARIANTS[start:], *VARIANTS[:start]]:
                cpu, _ = await batch(sends[name], cell.requests, concurrency)
                cell.cpu_us[name].append(cpu / cell.requests * 1e6)
    return cell


async def run_all(
    base_url: str, operations: Sequence[str], concurrencies: Sequence[int], plan: Plan
) -> None:
    """Every cell in turn, each line printed as soon as it is measured."""
    # Terminated, the run ends like Ctrl-C: cancelled, so its clients and server close.
    main = asyncio.current_task()
    assert main is not None
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    for operation in operations:
        for concurrency in concurrencies:
            cell = await measure(base_url, operation, concurrency, plan)
            print(report(cell), flush=True)


def report(cell: Cell) -> str:
    med = {name: statistics.median(values) for name, values in cell.cpu_us.items()}
    vs_tuned = statistics.median(cell.ratios("aioretell", "tuned"))
    vs_floor = statistics.median(cell.ratios("aioretell", "floor"))
    tuned_floor = statistics.median(cell.ratios("tuned", "floor"))
    spread = cell.ratios("aioretell", "tuned")
    return (
        f"{cell.operation:<18} c={cell.concurrency:<5} "
        f"aioretell {med['aioretell']:6.1f}  tuned {med['tuned']:6.1f}  "
        f"floor {med['floor']:6.1f} µs/req | aioretell/tuned {vs_tuned:.3f} "
        f"[{min(spread):.2f}-{max(spread):.2f}]  aioretell/floor {vs_floor:.3f}  "
        f"tuned/floor {tuned_floor:.3f}  ({len(spread)} rounds x {cell.requests})"
    )


def _pin_malloc(argv: Sequence[str]) -> None:
    """Re-execute this process with ``MALLOC_MMAP_THRESHOLD_`` set, unless it already is."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") == MMAP_THRESHOLD:
        return
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.pipeline_overhead", *argv], env)


def _concurrency(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or any(not 1 <= v <= MAX_CONCURRENCY for v in values):
        raise argparse.ArgumentTypeError(
            f"each concurrency must be 1 to {MAX_CONCURRENCY:,}, got {text!r}"
        )
    return values


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline_overhead", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (< 1 min)")
    parser.add_argument(
        "--operations",
        default=",".join(OPERATIONS),
        help=f"comma-separated, of {', '.join(OPERATIONS)}",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=CONCURRENCY,
        help="comma-separated worker counts (default 1,64,1024)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per cell")
    args = parser.parse_args(args_list)
    operations = [op for op in args.operations.split(",") if op]
    unknown = sorted(set(operations) - set(OPERATIONS))
    if unknown or not operations:
        parser.error(f"--operations takes {', '.join(OPERATIONS)}; got {args.operations!r}")
    plan = QUICK if args.quick else FULL
    if args.rounds is not None:
        if args.rounds < 1:
            parser.error(f"--rounds must be at least 1, got {args.rounds}")
        plan = Plan(args.rounds, plan.batch_seconds, plan.min_batch)
    _pin_malloc(args_list)
    started = time.perf_counter()
    print(
        f"client CPU per request, median of {plan.rounds} rounds; ratios are medians of "
        f"per-round ratios [min-max]; MALLOC_MMAP_THRESHOLD_={os.environ['MALLOC_MMAP_THRESHOLD_']}"
        f", loadavg at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    try:
        with CannedServer() as server:
            asyncio.run(run_all(server.base_url, operations, args.concurrency, plan))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130
    print(
        f"{time.perf_counter() - started:.0f} s, loadavg at end {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
