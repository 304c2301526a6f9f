"""The hot path at microsecond resolution: client CPU per request, the variants side by side.

``python -m benchmarks.hot_path [--quick] [--out PATH]`` prints a markdown section and writes it
as the ``hot-path`` section of ``docs/benchmarks.md`` (``--out`` another file).

What makes a 5 µs difference visible on a shared 2-core machine:

* one client process for every variant, so they share the interpreter, allocator and caches,
  and the variants take turns in short batches (about ``batch_seconds`` each) over many rounds,
  the first variant of a round rotating; a variant's number is the median over its rounds and
  a comparison is the median of the round-by-round differences (or ratios), so drift of the
  machine falls on both sides of each pair;
* CPU time of the client process (``time.process_time()``: user and system, so the socket
  system calls count) per request; the server runs in another process;
* glibc's mmap threshold pinned (``MALLOC_MMAP_THRESHOLD_=1048576``, set by re-executing this
  process with it before anything is measured): otherwise glibc moves the threshold as the
  process runs, and a variant measured after some large free pays page faults that the one
  before it did not.

The variants, all doing ``chat.retrieve`` (``GET /get-chat/{id}``, decoded into the same
msgspec Struct) against :mod:`benchmarks.canned_server`, plain and behind TLS:

* ``bare protocol``: an ``asyncio.Protocol`` keep-alive pool with hand-built request bytes,
  ``httptools`` and ``msgspec``: no client logic at all, the floor of this loop;
* ``aiohttp tuned``: aiohttp with the public knobs aioretell sets, as
  :mod:`benchmarks.pipeline_overhead` builds it: one ``ClientSession`` whose default headers
  are aioretell's fixed ones (the key included), aioretell's pool settings, no cookie jar, no
  netrc or proxy lookup, no read or total timer; ``resp = await session.request(...)``,
  ``await resp.read()``, ``resp.release()``. aioretell's own use of aiohttp is held to 1.05x
  of it;
* ``aiohttp floor``: ``benchmarks.client_cpu``'s floor, a default ``ClientSession``;
* ``aioretell fast`` and ``aioretell aiohttp``: ``AsyncRetell`` on ``FastTransport`` and on its
  default ``AiohttpTransport``;
* ``FastTransport alone`` and ``AiohttpTransport alone``: each transport's ``send`` and the
  decode, without the client's pipeline (the transports as the client builds them, its fixed
  headers given once), to tell the transport's cost from the pipeline's;
* ``retell-sdk`` (httpx) and ``retell-sdk aiohttp`` (``DefaultAioHttpClient``), the official SDK,
  ``max_retries=0``, as in ``benchmarks.client_cpu``;

on asyncio's loop and on uvloop, at 1, 64 and 1,024 requests in flight (100 connections in
every pool). The HTTPS server uses a certificate from a throwaway authority made at start
(:mod:`benchmarks.tls_cert`); every client trusts it through ``SSL_CERT_FILE``, verification on.
Then the peak memory of 10,000 requests in flight (:mod:`benchmarks.rss`) for aioretell on each
transport. Numbers are reported against the targets of issue #14, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import sections

ROOT = Path(__file__).resolve().parent.parent
MMAP_THRESHOLD = "1048576"
#: Marks the re-executed process (and where the certificates are).
_CERT_DIR_ENV = "AIORETELL_HOT_PATH_CERTS"
OPERATION = "chat.retrieve"
POOL = 100
LIBRARIES = ("aiohttp", "httptools", "uvloop", "msgspec", "retell-sdk", "httpx", "httpx-aiohttp")

Send = Callable[[], Coroutine[Any, Any, object]]
Factory = Callable[[Any, str], AbstractAsyncContextManager[Send]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the clients that are not in client_cpu ----------------------------------------------------


class _BareConnection(asyncio.Protocol):
    """One keep-alive connection: write the request, collect the body, resolve a future."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        body, self.body = b"".join(self.body), []
        if waiter is not None:
            waiter.set_result((self.parser.get_status_code(), body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))


@asynccontextmanager
async def bare_client(target: Any, operation: str) -> AsyncIterator[Send]:
    """The floor: a LIFO pool of protocol connections, request bytes built once."""
    import ssl
    from urllib.parse import urlsplit

    import msgspec

    from aioretell import __version__
    from aioretell.types import ChatResponse

    url = urlsplit(target.base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    tls = ssl.create_default_context() if url.scheme == "https" else None
    # The bytes aioretell sends: the same headers, so the server does the same work.
    request = (
        f"GET /get-chat/{target.chat_id} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Accept: application/json\r\nUser-Agent: aioretell/{__version__}\r\n"
        f"Authorization: Bearer {target.api_key}\r\nAccept-Encoding: gzip\r\n\r\n"
    ).encode()
    decoder = msgspec.json.Decoder(ChatResponse)
    loop = asyncio.get_running_loop()
    idle: list[_BareConnection] = []
    waiters: collections.deque[asyncio.Future[_BareConnection]] = collections.deque()
    opened: list[_BareConnection] = []

    async def acquire() -> _BareConnection:
        if len(opened) < POOL:
            conn = _BareConnection()
            opened.append(conn)
            await loop.create_connection(lambda: conn, host, port, ssl=tls)
            return conn
        waiter: asyncio.Future[_BareConnection] = loop.create_future()
        waiters.append(waiter)
        return await waiter

    async def send() -> object:
        conn = idle.pop() if idle else await acquire()
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        conn.waiter = waiter
        conn.transport.write(request)  # type: ignore[union-attr]
        status, body = await waiter
        if waiters:
            waiters.popleft().set_result(conn)
        else:
            idle.append(conn)
        if status != 200:
            raise RuntimeError(f"unexpected status {status}")
        return decoder.decode(body)

    try:
        yield send
    finally:
        for conn in opened:
            if conn.transport is not None:
                conn.transport.close()


def aiohttp_tuned_client(target: Any, operation: str) -> AbstractAsyncContextManager[Send]:
    """aiohttp with the public knobs aioretell sets: :mod:`benchmarks.pipeline_overhead`'s."""
    from aioretell.types import ChatResponse
    from benchmarks import pipeline_overhead

    wire = pipeline_overhead.Wire("GET", f"/get-chat/{target.chat_id}", None, ChatResponse)
    return pipeline_overhead.tuned_client(target.base_url, target.api_key, wire)


@asynccontextmanager
async def aioretell_fast_client(target: Any, operation: str) -> AsyncIterator[Send]:
    from aioretell import AsyncRetell
    from aioretell._fast_transport import FastTransport
    from benchmarks.client_cpu import _sends

    async with (
        FastTransport(connection_limit=POOL) as transport,
        AsyncRetell(api_key=target.api_key, base_url=target.base_url, transport=transport) as c,
    ):
        yield _sends(c, target)[operation]


@asynccontextmanager
async def transport_alone(target: Any, operation: str, fast: bool) -> AsyncIterator[Send]:
    """A transport's ``send`` and the decode, without AsyncRetell's pipeline around them: the
    request built once, as the pipeline would build it, with its default timeouts."""
    import msgspec

    from aioretell import Timeout, __version__
    from aioretell._exceptions import RequestInfo
    from aioretell._fast_transport import FastTransport
    from aioretell._sansio import HTTPRequest
    from aioretell._transport import AiohttpTransport, PoolConfig
    from aioretell.types import ChatResponse

    url = f"{target.base_url}/get-chat/{target.chat_id}"
    # As the client builds its own transport: the fixed headers given once, none per request.
    fixed = {
        "Accept": "application/json",
        "User-Agent": f"aioretell/{__version__}",
        "Authorization": f"Bearer {target.api_key}",
    }
    request = HTTPRequest("GET", url, {})
    info = RequestInfo("getChat", "GET", url)
    timeout = Timeout().to_aiohttp()
    decoder = msgspec.json.Decoder(ChatResponse)
    pool = PoolConfig(limit=POOL)
    transport: FastTransport | AiohttpTransport = (
        FastTransport.from_pool(pool, headers=fixed)
        if fast
        else AiohttpTransport(pool, headers=fixed)
    )

    async def send() -> object:
        response = await transport.send(request, timeout, info)
        if response.status != 200:
            raise RuntimeError(f"unexpected status {response.status}")
        return decoder.decode(response.body)

    try:
        yield send
    finally:
        await transport.aclose()


def _alone(fast: bool) -> Factory:
    def factory(target: Any, operation: str) -> AbstractAsyncContextManager[Send]:
        return transport_alone(target, operation, fast)

    return factory


def factories() -> dict[str, Factory]:
    from benchmarks import client_cpu

    found: dict[str, Factory] = {
        "bare protocol": bare_client,
        "FastTransport alone": _alone(fast=True),
        "aioretell fast": aioretell_fast_client,
        "aiohttp tuned": aiohttp_tuned_client,
        "aiohttp floor": client_cpu.floor_client,
        "AiohttpTransport alone": _alone(fast=False),
        "aioretell aiohttp": client_cpu.aioretell_client,
        "retell-sdk aiohttp": client_cpu.sdk_aiohttp_client,
        "retell-sdk": client_cpu.sdk_client,
    }
    if not client_cpu.sdk_aiohttp_available():
        del found["retell-sdk aiohttp"]
    return found


# -- the TLS server ------------------------------------------------------------------------------


def _serve_tls(certdir: Path) -> None:
    """The canned server's app behind TLS (this module's ``--serve-tls``)."""
    from aiohttp import web

    from benchmarks import canned_server, tls_cert

    certs = tls_cert.Certificates(
        certdir / "ca.pem", certdir / "server.pem", certdir / "server-key.pem"
    )

    async def serve() -> None:
        runner = web.AppRunner(canned_server.make_app(100), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(
            runner, canned_server.HOST, 0, backlog=4096, ssl_context=certs.server_context()
        )
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()  # until terminated

    canned_server.raise_open_files_limit()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def tls_server(certdir: Path) -> Any:
    """A :class:`~benchmarks.canned_server.ChildServer` running :func:`_serve_tls`."""
    from benchmarks.canned_server import HOST, CannedServer

    class TLSCannedServer(CannedServer):
        def command(self) -> list[str]:
            return [sys.executable, "-m", "benchmarks.hot_path", "--serve-tls", str(certdir)]

        @property
        def base_url(self) -> str:
            return f"https://{HOST}:{self.port}"

    return TLSCannedServer()


# -- measuring -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Cell:
    """Every variant at one (scheme, loop, concurrency): CPU µs/request and req/s per round."""

    scheme: str
    loop: str
    concurrency: int
    requests: dict[str, int] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)
    rps: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.cpu_us[name])

    def paired(self, a: str, b: str, op: Callable[[float, float], float]) -> list[float]:
        n = min(len(self.cpu_us[a]), len(self.cpu_us[b]))
        return [op(x, y) for x, y in zip(self.cpu_us[a][:n], self.cpu_us[b][:n], strict=True)]

    def ratio(self, a: str, b: str) -> float:
        """Median of the round-by-round ratios of ``a``'s CPU per request to ``b``'s."""
        return statistics.median(self.paired(a, b, lambda x, y: x / y))

    def difference(self, a: str, b: str) -> float:
        return statistics.median(self.paired(a, b, lambda x, y: x - y))


@dataclass(frozen=True, slots=True)
class Plan:
    concurrency: tuple[int, ...]
    tls_concurrency: tuple[int, ...]
    loops: tuple[str, ...]
    rounds: int
    batch_seconds: float
    slow_rounds: int
    #: a variant whose batch of ``concurrency`` requests takes longer runs ``slow_rounds`` only
    slow_batch_seconds: float
    #: variants left out above this concurrency (the SDK's httpx pool: minutes for 1,024 queued)
    skip: dict[str, int]
    rss_requests: int
    rss_rounds: int


FULL = Plan(
    concurrency=(1, 64, 1024),
    tls_concurrency=(1, 64),
    loops=("asyncio", "uvloop"),
    rounds=15,
    batch_seconds=0.08,
    slow_rounds=4,
    slow_batch_seconds=0.5,
    skip={},
    rss_requests=10_000,
    rss_rounds=3,
)
QUICK = Plan(
    concurrency=(64,),
    tls_concurrency=(64,),
    loops=("asyncio", "uvloop"),
    rounds=4,
    batch_seconds=0.03,
    slow_rounds=2,
    slow_batch_seconds=0.3,
    skip={"retell-sdk": 64},
    rss_requests=10_000,
    rss_rounds=1,
)


def _batch_size(rate: float, concurrency: int, seconds: float) -> int:
    wanted = max(concurrency, int(rate * seconds))
    magnitude = 10 ** max(0, len(str(wanted)) - 2)
    return max(concurrency, round(wanted / magnitude) * magnitude)


async def measure(target: Any, scheme: str, loop_name: str, concurrency: int, plan: Plan) -> Cell:
    from benchmarks.client_cpu import timed_batch

    cell = Cell(scheme, loop_name, concurrency)
    made = factories()
    names = [n for n in made if concurrency <= plan.skip.get(n, sys.maxsize)]
    planned: dict[str, int] = {}
    async with contextlib.AsyncExitStack() as stack:
        sends: dict[str, Send] = {}
        for name in names:
            sends[name] = await stack.enter_async_context(made[name](target, OPERATION))
        for name in names:
            # Warm: open the pool, then time one batch to size this variant's batches.
            await timed_batch(sends[name], max(concurrency, min(POOL, 200)), concurrency)
            probe = await timed_batch(sends[name], max(concurrency, 200), concurrency)
            size = _batch_size(probe.requests_per_s, concurrency, plan.batch_seconds)
            cell.requests[name] = size
            cell.cpu_us[name], cell.rps[name], cell.errors[name] = [], [], probe.errors
            slow = size / probe.requests_per_s > plan.slow_batch_seconds
            planned[name] = plan.slow_rounds if slow else plan.rounds
        for index in range(plan.rounds):
            start = index % len(names)
            for name in [*names[start:], *names[:start]]:
                if index >= planned[name]:
                    continue
                sample = await timed_batch(sends[name], cell.requests[name], concurrency)
                cell.cpu_us[name].append(sample.cpu_us_per_request)
                cell.rps[name].append(sample.requests_per_s)
                cell.errors[name] += sample.errors
    return cell


def run_on(loop_name: str, main: Coroutine[Any, Any, list[Cell]]) -> list[Cell]:
    if loop_name == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


async def all_cells(loop_name: str, targets: dict[str, Any], plan: Plan) -> list[Cell]:
    cells = []
    for scheme, levels in (("http", plan.concurrency), ("https", plan.tls_concurrency)):
        for c in levels:
            started = time.perf_counter()
            cells.append(await measure(targets[scheme], scheme, loop_name, c, plan))
            log(f"  {scheme} {loop_name} c={c}: {time.perf_counter() - started:.0f} s")
    return cells


# -- the report ----------------------------------------------------------------------------------


def _n(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def cell_table(cell: Cell) -> list[str]:
    lines = [
        _row(
            "client",
            "batches x requests",
            "µs CPU / request, median (min to max)",
            "minus bare protocol, µs",
            "÷ bare protocol",
            "÷ aioretell fast",
            "req/s",
            "errors",
        ),
        _row(*["---"] * 8),
    ]
    base = "bare protocol"
    for name in sorted(cell.cpu_us, key=cell.median):
        values = cell.cpu_us[name]
        lines.append(
            _row(
                name,
                f"{len(values)} x {cell.requests[name]:,}",
                f"{_n(cell.median(name))} ({_n(min(values))} to {_n(max(values))})",
                _n(cell.difference(name, base)),
                f"{cell.ratio(name, base):.2f}x",
                f"{cell.ratio(name, 'aioretell fast'):.2f}x",
                _n(statistics.median(cell.rps[name])),
                cell.errors[name],
            )
        )
    return lines


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    measured: float
    limit: float
    at_most: bool  # the measured value must be <= limit (else >=)

    @property
    def met(self) -> bool:
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit


def targets(cells: list[Cell], rss_mib: dict[str, float]) -> list[Target]:
    out = []
    for cell in cells:
        if cell.concurrency != 64:
            continue
        where = f"{cell.scheme}, {cell.loop}, c=64"
        if cell.scheme == "http":
            for ours in ("aioretell fast", "FastTransport alone"):
                out.append(
                    Target(
                        f"{ours} ÷ bare protocol ({where})",
                        cell.ratio(ours, "bare protocol"),
                        1.5,
                        True,
                    )
                )
        for theirs, ours in (
            ("aioretell aiohttp", "aioretell fast"),
            ("AiohttpTransport alone", "FastTransport alone"),
        ):
            out.append(
                Target(
                    f"{theirs} ÷ {ours} ({where})",
                    cell.ratio(theirs, ours),
                    4.0 if cell.scheme == "http" else 2.0,
                    False,
                )
            )
        if cell.scheme == "http" and "retell-sdk aiohttp" in cell.cpu_us:
            out.append(
                Target(
                    f"retell-sdk aiohttp ÷ aioretell fast ({where})",
                    cell.ratio("retell-sdk aiohttp", "aioretell fast"),
                    20.0,
                    False,
                )
            )
    for cell in cells:
        # The aiohttp transport against aiohttp with the same public knobs, at every level.
        if cell.scheme == "http" and {"aioretell aiohttp", "aiohttp tuned"} <= cell.cpu_us.keys():
            out.append(
                Target(
                    f"aioretell aiohttp ÷ aiohttp tuned ({cell.scheme}, {cell.loop}, "
                    f"c={cell.concurrency:,})",
                    cell.ratio("aioretell aiohttp", "aiohttp tuned"),
                    1.05,
                    True,
                )
            )
    if "aioretell" in rss_mib and "aioretell fast" in rss_mib:
        out.append(
            Target(
                "peak memory, 10,000 in flight: aioretell fast ÷ aioretell aiohttp",
                rss_mib["aioretell fast"] / rss_mib["aioretell"],
                0.5,
                True,
            )
        )
    return out


def render(
    cells: list[Cell],
    rss_results: list[Any],
    environment: dict[str, str],
) -> str:
    rss_mib = {r.client: statistics.median(r.delta_mib()) for r in rss_results}
    lines = [
        "## Hot path: CPU per request at microsecond resolution",
        "",
        "Written by `python -m benchmarks.hot_path`; how it measures is in that module's "
        "docstring. One client process holds every variant; they take turns in short batches "
        "over many rounds. Each number is client CPU time (user + system) per request, the "
        "median over the rounds; differences and ratios are medians of round-by-round pairs. "
        "All clients do `chat.retrieve` into the same msgspec Struct, 100 connections per pool.",
        "",
        "|  |  |",
        "| --- | --- |",
        *(_row(k, v) for k, v in environment.items()),
        "",
        "### Against the targets of issue #14",
        "",
        _row("target", "measured", "wanted", "met"),
        _row("---", "---", "---", "---"),
    ]
    for t in targets(cells, rss_mib):
        wanted = ("≤ " if t.at_most else "≥ ") + f"{t.limit:g}"
        lines.append(_row(t.text, f"{t.measured:.2f}", wanted, "yes" if t.met else "**no**"))
    for cell in cells:
        lines += ["", f"### {cell.scheme}, {cell.loop}, c = {cell.concurrency:,}", ""]
        lines += cell_table(cell)
    if rss_results:
        lines += [
            "",
            "### Peak memory, 10,000 requests in flight",
            "",
            "`benchmarks.rss`: a fresh process per client and run, 10,000 `chat.retrieve` "
            "started at once, 100 connections, answers 10 ms late; peak RSS minus the RSS "
            "before the requests.",
            "",
            _row("client", "runs", "peak minus before, MiB (median)", "answered", "errors"),
            _row("---", "---", "---", "---", "---"),
        ]
        for r in rss_results:
            lines.append(
                _row(
                    r.client,
                    len(r.samples),
                    _n(statistics.median(r.delta_mib())),
                    f"{min(r.answered()):,}",
                    r.errors(),
                )
            )
    return "\n".join(lines) + "\n"


def environment(argv: Sequence[str], seconds: float, load: tuple[str, str]) -> dict[str, str]:
    import aioretell

    versions = [f"aioretell {aioretell.__version__}"]
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    from benchmarks.run import cpu_model

    return {
        "machine": f"{cpu_model()}, {os.cpu_count()} logical cores, {platform.system()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "libraries": ", ".join(versions),
        "load average (1 min) at start, at end": f"{load[0]}, {load[1]}",
        "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_", "(unset)"),
        "command": shlex.join(["python", "-m", "benchmarks.hot_path", *argv]),
        "run time": f"{seconds / 60:.1f} min",
    }


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


# -- entry -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hot_path", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run, under a minute")
    parser.add_argument(
        "--out",
        type=Path,
        default=sections.DOC,
        help="the file whose hot-path section is written (default: docs/benchmarks.md)",
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the memory measurement")
    parser.add_argument("--serve-tls", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _reexec_pinned(argv: Sequence[str]) -> None:
    """Run again with glibc's mmap threshold pinned and a certificate authority to trust."""
    from benchmarks import tls_cert

    certdir = Path(tempfile.mkdtemp(prefix="aioretell-hot-path-"))
    certs = tls_cert.make(certdir)
    env = {
        **os.environ,
        "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD,
        "SSL_CERT_FILE": str(certs.cafile),
        _CERT_DIR_ENV: str(certdir),
    }
    command = [sys.executable, "-m", "benchmarks.hot_path", *argv]
    os.execve(sys.executable, command, env)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.serve_tls is not None:
        _serve_tls(args.serve_tls)
        return 0
    certdir = os.environ.get(_CERT_DIR_ENV)
    if certdir is None or os.environ.get("MALLOC_MMAP_THRESHOLD_") != MMAP_THRESHOLD:
        _reexec_pinned(argv)  # same directory and path: does not return
    assert certdir is not None
    try:
        return _run(args, argv, Path(certdir))
    except KeyboardInterrupt:
        log("interrupted; nothing written")
        return 130
    finally:
        for path in Path(certdir).glob("*.pem"):
            path.unlink()
        with contextlib.suppress(OSError):
            Path(certdir).rmdir()


def _run(args: argparse.Namespace, argv: Sequence[str], certdir: Path) -> int:
    from benchmarks import rss
    from benchmarks.canned_server import CannedServer
    from benchmarks.targets import API_KEY, CANNED_CHAT_ID
    from benchmarks.targets import Target as Where

    plan = QUICK if args.quick else FULL
    started, load_start = time.perf_counter(), _load()
    cells: list[Cell] = []
    with CannedServer() as plain, tls_server(certdir) as tls:
        where = {
            "http": Where("canned", plain.base_url, API_KEY, CANNED_CHAT_ID),
            "https": Where("canned-tls", tls.base_url, API_KEY, CANNED_CHAT_ID),
        }
        for loop_name in plan.loops:
            log(f"{loop_name}:")
            cells += run_on(loop_name, all_cells(loop_name, where, plan))
    rss_results = []
    if not args.no_rss:
        log("peak memory, 10,000 in flight:")
        rss_results = rss.run(
            requests=plan.rss_requests,
            rounds=plan.rss_rounds,
            clients=("aioretell", "aioretell fast"),
        )
    seconds = time.perf_counter() - started
    env = environment(argv, seconds, (load_start, _load()))
    text = render(cells, rss_results, env)
    print(text)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        sections.write("hot-path", text, args.out)
    except OSError as exc:
        log(f"could not write {args.out}: {exc.strerror or exc}")
        return 1
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
