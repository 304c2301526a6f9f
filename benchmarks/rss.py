"""Peak memory of a client with 10,000 requests in flight, one fresh process per client and run.

The child process imports everything, builds the client with its library's default pool (100
connections everywhere, as in the throughput benchmark), reads its baseline peak RSS
(``ru_maxrss``, or ``VmHWM`` on Linux: see :func:`_maxrss_kib`), then starts all ``N``
``chat.retrieve`` calls at once against the canned server, which answers each ``get-chat`` after
``--delay`` (10 ms). So all ``N`` are issued and unanswered together (100 on the wire, the rest
queued in the client's pool), the state a dialler is in when it fans out. It waits until all
are answered or a deadline passes, reads the peak again, and reports the peak minus the
baseline, how many were answered and how long it took; requests still pending at the deadline
are abandoned with the process (the official SDK's httpx pool needs minutes to work through
10,000 queued requests, so it is measured at the deadline, still holding them all).

``python -m benchmarks.rss --client NAME --url URL`` is the child (``--pool N`` to widen the
pool); :func:`run` starts one per client and round, the clients taking turns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.canned_server import CannedServer, raise_open_files_limit
from benchmarks.targets import API_KEY, CANNED_CHAT_ID

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("aioretell", "aioretell fast", "retell-sdk", "retell-sdk aiohttp", "floor")
DELAY_S = 0.01


def _maxrss_kib() -> int:
    """This process's peak resident set, KiB: ``ru_maxrss``, or ``VmHWM`` where Linux has it.

    On Linux ``ru_maxrss`` survives fork and exec: a child started by a big parent begins with
    the parent's peak, which would hide its own. ``VmHWM`` is the same high-water mark kept per
    address space, so it starts afresh at exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage // 1024 if sys.platform == "darwin" else usage  # bytes on macOS, KiB elsewhere


def _client(name: str, url: str, pool: int) -> tuple[Any, Any]:
    """(the retrieve coroutine function, an async close) for client ``name``.

    ``pool`` connections, or the library's default pool (100 everywhere) when it is 0. With a
    wide pool the SDK gets a 120 s timeout: its default 5 s connect timeout fails every request
    when thousands of connections open at once.
    """
    if name == "aioretell":
        from aioretell import AsyncRetell

        ours = AsyncRetell(api_key=API_KEY, base_url=url, connection_limit=pool or 100)
        return ours.chat.retrieve, ours.close
    if name == "aioretell fast":
        from aioretell import AsyncRetell
        from aioretell._fast_transport import FastTransport

        transport = FastTransport(connection_limit=pool or 100)
        fast = AsyncRetell(api_key=API_KEY, base_url=url, transport=transport)
        return fast.chat.retrieve, transport.aclose
    if name == "floor":
        import aiohttp
        import msgspec

        from aioretell.types import ChatResponse

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=pool or 100))
        decoder = msgspec.json.Decoder(ChatResponse)
        headers = {"Accept": "application/json", "Authorization": f"Bearer {API_KEY}"}

        async def retrieve(chat_id: str) -> object:
            async with session.get(f"{url}/get-chat/{chat_id}", headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"unexpected status {resp.status}")
            return decoder.decode(body)

        return retrieve, session.close
    import httpx
    import retell

    options: dict[str, Any] = {}
    if pool:
        options["limits"] = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        options["timeout"] = httpx.Timeout(120.0)
    if name == "retell-sdk aiohttp":
        http_client: httpx.AsyncClient = retell.DefaultAioHttpClient(**options)
    else:
        http_client = retell.DefaultAsyncHttpxClient(**options)
    sdk = retell.AsyncRetell(api_key=API_KEY, base_url=url, max_retries=0, http_client=http_client)
    return sdk.chat.retrieve, sdk.close


async def _child(name: str, url: str, requests: int, pool: int, deadline: float) -> None:
    retrieve, _close = _client(name, url, pool)
    baseline = _maxrss_kib()
    counts = {"started": 0, "answered": 0}
    errors: list[str] = []
    reported = threading.Lock()
    started = time.perf_counter()

    def report() -> None:
        # From the loop when all are answered, or from the watchdog thread at the deadline: a
        # client can block its loop for minutes (httpcore's pool scans its whole queue for each
        # request it takes), and a timer on that loop would never fire.
        if not reported.acquire(blocking=False):
            return
        result = {
            "baseline_kib": baseline,
            "peak_kib": _maxrss_kib(),
            "wall_s": time.perf_counter() - started,
            "started": counts["started"],
            "answered": counts["answered"],
            "errors": len(errors),
            "error_types": sorted(set(errors)),
        }
        print(json.dumps(result), flush=True)
        # Leave without closing: unwinding thousands of pending requests measures nothing.
        os._exit(0)

    watchdog = threading.Timer(deadline, report)
    watchdog.daemon = True
    watchdog.start()

    async def one() -> None:
        counts["started"] += 1
        try:
            await retrieve(CANNED_CHAT_ID)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(type(exc).__name__)
        else:
            counts["answered"] += 1

    await asyncio.gather(*(one() for _ in range(requests)))
    report()


@dataclass(frozen=True, slots=True)
class RssSample:
    baseline_kib: int
    peak_kib: int
    wall_s: float
    started: int
    answered: int
    errors: int
    error_types: list[str]

    @property
    def delta_mib(self) -> float:
        return (self.peak_kib - self.baseline_kib) / 1024


@dataclass(frozen=True, slots=True)
class RssResult:
    client: str
    requests: int
    samples: list[RssSample]

    def delta_mib(self) -> list[float]:
        return [s.delta_mib for s in self.samples]

    def baseline_mib(self) -> list[float]:
        return [s.baseline_kib / 1024 for s in self.samples]

    def wall_s(self) -> list[float]:
        return [s.wall_s for s in self.samples]

    def errors(self) -> int:
        return sum(s.errors for s in self.samples)

    def answered(self) -> list[int]:
        return [s.answered for s in self.samples]

    def started(self) -> list[int]:
        return [s.started for s in self.samples]


def once(name: str, url: str, requests: int, deadline: float, pool: int = 0) -> RssSample:
    out = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.rss", "--client", name, "--url", url),
            *("--requests", str(requests), "--pool", str(pool), "--deadline", str(deadline)),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=deadline + 120,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return RssSample(**data)


def run(
    requests: int = 10_000,
    rounds: int = 2,
    clients: Sequence[str] = CLIENTS,
    deadline: float = 20.0,
    delay: float = DELAY_S,
) -> list[RssResult]:
    samples: dict[str, list[RssSample]] = {name: [] for name in clients}
    with CannedServer(delay=delay) as server:
        for index in range(rounds):
            start = index % len(clients)
            for name in [*clients[start:], *clients[:start]]:
                samples[name].append(once(name, server.base_url, requests, deadline))
    return [RssResult(name, requests, s) for name, s in samples.items()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=CLIENTS, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--pool", type=int, default=0, help="connections; 0: library default")
    parser.add_argument("--deadline", type=float, default=20.0, help="seconds to wait at most")
    args = parser.parse_args(argv)
    raise_open_files_limit()
    asyncio.run(_child(args.client, args.url, args.requests, args.pool, args.deadline))


if __name__ == "__main__":
    main()
