"""A minimal Retell stand-in that answers from pre-encoded bodies, run in its own process.

It does as little as a server can (no state, no validation beyond the bearer header) so that in
a client benchmark the client is the bottleneck, and since it runs in another process,
``time.process_time()`` in the benchmark process is the client's CPU alone.

Run ``python -m benchmarks.canned_server [--port 0] [--page-size N]``: it prints the bound port
on one line of stdout and serves until it is terminated. :class:`CannedServer` does that from
the benchmark and kills the process on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

from aiohttp import web

from benchmarks import bodies

HOST = "127.0.0.1"
JSON = "application/json"


def make_app(page_size: int) -> web.Application:
    phone_call = bodies.phone_call().body
    chat = bodies.chat().body
    page = bodies.list_calls_page(page_size).body
    unauthorized = b'{"status":"error","message":"missing bearer token"}'

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
        return web.Response(status=200, body=chat, content_type=JSON)

    async def list_calls(request: web.Request) -> web.Response:
        await request.read()
        if not authorized(request):
            return web.Response(status=401, body=unauthorized, content_type=JSON)
        return web.Response(status=200, body=page, content_type=JSON)

    app = web.Application()
    app.router.add_post("/v2/create-phone-call", create_phone_call)
    app.router.add_get("/get-chat/{chat_id}", get_chat)
    app.router.add_post("/v3/list-calls", list_calls)
    return app


async def serve(port: int, page_size: int) -> None:
    runner = web.AppRunner(make_app(page_size), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=1024)
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
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.page_size))


class CannedServer:
    """``with CannedServer() as server:`` runs the server in a child process on a free port."""

    def __init__(self, page_size: int = 100, startup_timeout: float = 30.0) -> None:
        self._page_size = page_size
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> CannedServer:
        root = Path(__file__).resolve().parent.parent
        command = [sys.executable, "-m", "benchmarks.canned_server"]
        command += ["--page-size", str(self._page_size)]
        self._process = subprocess.Popen(
            command, cwd=root, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        try:
            self.port = self._read_port(self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_port(self, process: subprocess.Popen[str]) -> int:
        # readline() has no timeout: read in a thread so a child that hangs cannot hang us.
        line: list[str] = []

        def read() -> None:
            assert process.stdout is not None
            line.append(process.stdout.readline())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(self._startup_timeout)
        if not line or not line[0].strip().isdigit():
            raise RuntimeError(f"canned server did not report a port (exit {process.poll()})")
        return int(line[0])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
