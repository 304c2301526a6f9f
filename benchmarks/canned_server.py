"""A minimal Retell stand-in that answers from pre-encoded bodies, run in its own process.

It does as little as a server can (no state, no validation beyond the bearer header) so that in
a client benchmark the client is the bottleneck, and since it runs in another process,
``time.process_time()`` in the benchmark process is the client's CPU alone.

Run ``python -m benchmarks.canned_server [--port 0] [--page-size N]``: it prints the bound port
on one line of stdout and serves until it is terminated. :class:`CannedServer` does that from
the benchmark and kills the process on exit.

For the memory benchmark ``get-chat`` can be made slow: ``--delay S`` answers each request after
``S`` seconds, and ``--hold N`` keeps every answer back until ``N`` requests are waiting (then
releases them all and starts counting again; ``--hold-timeout`` bounds the wait), so a client can
be caught with exactly ``N`` requests in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from aiohttp import web

from benchmarks import bodies

HOST = "127.0.0.1"
JSON = "application/json"
_S = TypeVar("_S", bound="ChildServer")


class _Hold:
    """Keeps answers back until ``size`` requests wait, then lets that whole group go."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size = size
        self.timeout = timeout
        self.waiting = 0
        self.release = asyncio.Event()

    async def wait(self) -> None:
        release = self.release
        self.waiting += 1
        if self.waiting >= self.size:
            self.waiting = 0
            self.release = asyncio.Event()
            release.set()
            return
        try:
            await asyncio.wait_for(release.wait(), self.timeout)
        except asyncio.TimeoutError:
            pass  # answer anyway
        finally:
            if not release.is_set():  # timed out or cancelled: no longer one of the group
                self.waiting -= 1


def make_app(
    page_size: int, *, delay: float = 0.0, hold: int = 0, hold_timeout: float = 60.0
) -> web.Application:
    phone_call = bodies.phone_call().body
    chat = bodies.chat().body
    page = bodies.list_calls_page(page_size).body
    unauthorized = b'{"status":"error","message":"missing bearer token"}'
    holder = _Hold(hold, hold_timeout) if hold > 0 else None

    def authorized(request: web.Request) -> bool:
        return request.headers.get("Authorization", "").startswith("Bearer ")

    async def create_phone_call(request: web.Request) -> web.Response:
        await request.read()
        if not authorized(request):
            return web.Response(status=401, body=unauthorized, content_type=JSON)
        return web.Response(status=201, body=phone_call, content_type=JSON)

    async def get_chat(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.Response(status=401, body=unauthorized, content_type=JSON)
        if holder is not None:
            await holder.wait()
        if delay > 0:
            await asyncio.sleep(delay)
        return web.Response(status=200, body=chat, content_type=JSON)

    async def get_call(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.Response(status=401, body=unauthorized, content_type=JSON)
        return web.Response(status=200, body=phone_call, content_type=JSON)

    async def list_calls(request: web.Request) -> web.Response:
        await request.read()
        if not authorized(request):
            return web.Response(status=401, body=unauthorized, content_type=JSON)
        return web.Response(status=200, body=page, content_type=JSON)

    app = web.Application()
    app.router.add_post("/v2/create-phone-call", create_phone_call)
    app.router.add_get("/get-chat/{chat_id}", get_chat)
    app.router.add_get("/v2/get-call/{call_id}", get_call)
    app.router.add_post("/v3/list-calls", list_calls)
    return app


async def serve(port: int, page_size: int, delay: float, hold: int, hold_timeout: float) -> None:
    app = make_app(page_size, delay=delay, hold=hold, hold_timeout=hold_timeout)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=4096)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--page-size", type=int, default=100, help="calls per list-calls page")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before a get-chat answer")
    parser.add_argument("--hold", type=int, default=0, help="hold get-chat answers until N wait")
    parser.add_argument("--hold-timeout", type=float, default=60.0, help="longest hold, seconds")
    args = parser.parse_args(argv)
    raise_open_files_limit()
    asyncio.run(serve(args.port, args.page_size, args.delay, args.hold, args.hold_timeout))


def raise_open_files_limit() -> None:
    """Lift the soft limit on open files to the hard one (many sockets in the memory run)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ChildServer:
    """A server in a child process that announces where it listens in one line of output.

    Subclasses give the command and say how to find the port in a line. The child's output goes
    to a temporary file (a pipe nobody reads could fill up and stall it).
    """

    def __init__(self, startup_timeout: float = 30.0) -> None:
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None
        self.port = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def port_in(self, line: str) -> int | None:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self: _S) -> _S:
        root = Path(__file__).resolve().parent.parent
        self._log = tempfile.NamedTemporaryFile(prefix="aioretell-bench-", suffix=".log")
        self._process = subprocess.Popen(
            self.command(),
            cwd=root,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self.port = self._wait_for_port(self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_port(self, process: subprocess.Popen[bytes]) -> int:
        assert self._log is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            for line in Path(self._log.name).read_text(errors="replace").splitlines():
                port = self.port_in(line)
                if port is not None:
                    return port
            if process.poll() is not None:
                break
            time.sleep(0.05)
        output = Path(self._log.name).read_text(errors="replace")[-2000:]
        raise RuntimeError(
            f"{self.command()[2:4]} did not report a port (exit {process.poll()}):\n{output}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class CannedServer(ChildServer):
    """``with CannedServer() as server:`` runs the canned server in a child process."""

    def __init__(
        self,
        page_size: int = 100,
        *,
        delay: float = 0.0,
        hold: int = 0,
        hold_timeout: float = 60.0,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(startup_timeout)
        self._options = [
            *("--page-size", str(page_size)),
            *("--delay", str(delay)),
            *("--hold", str(hold)),
            *("--hold-timeout", str(hold_timeout)),
        ]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.canned_server", *self._options]

    def port_in(self, line: str) -> int | None:
        line = line.strip()
        return int(line) if line.isdigit() else None


if __name__ == "__main__":
    main()
