"""Running the emulator on a real socket: :class:`Emulator` and :func:`serve`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from aiohttp import web

from .._serving import StartStop, http_url, serve_app
from .app import EmulatorContext, context, create_app
from .config import EmulatorConfig
from .custom_llm import LiveCalls
from .faults import FaultInjector
from .state import EmulatorState
from .webhooks import WebhookDispatcher


class Emulator(StartStop):
    """An emulated Retell account served over HTTP on ``config.host``/``config.port``.

    ``async with Emulator(config) as emu:`` starts it (port 0 picks a free port, see
    :attr:`base_url`) and stops it on exit. State, faults and the request log are available
    before start too.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.app = create_app(config)
        self._ctx: EmulatorContext = context(self.app)
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        #: Webhook delivery to agents' ``webhook_url`` while the emulator runs.
        self.webhooks = WebhookDispatcher(self._ctx.state, config)
        #: Conversations of calls to custom-LLM agents while the emulator runs.
        self.live_calls = LiveCalls(self._ctx.state, config)

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not running; use 'async with Emulator(...)'")
        return self._base_url

    @property
    def state(self) -> EmulatorState:
        return self._ctx.state

    @property
    def faults(self) -> FaultInjector:
        return self._ctx.faults

    @property
    def requests(self) -> list[tuple[str, str, str]]:
        """``(operation_id, method, path)`` of every authenticated request, in order."""
        return self._ctx.requests

    @property
    def timeline(self) -> list[tuple[float, str, int]]:
        """``(clock time of its arrival, operation_id, status)`` of every authenticated
        request answered, in the order answered."""
        return self._ctx.timeline

    @property
    def clock(self) -> Callable[[], float]:
        return self.config.clock

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        # A test server: on stop, give in-flight handlers (e.g. a scripted delay) little grace.
        runner, host, port = await serve_app(
            self.app, self.config.host, self.config.port, shutdown_timeout=0.5
        )
        try:
            await self.webhooks.start()
            await self.live_calls.start()
        except BaseException:
            await self.webhooks.stop()
            await runner.cleanup()
            raise
        self._runner = runner
        self._base_url = http_url(host, port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self._base_url = None
        if runner is not None:
            await self.live_calls.stop()
            await self.webhooks.stop()
            await runner.cleanup()


async def serve(config: EmulatorConfig) -> None:
    """Serve until cancelled (the ``aioretell emulator`` command). Prints the URL, not the key."""
    async with Emulator(config) as emu:
        print(f"Retell emulator listening on {emu.base_url}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()
