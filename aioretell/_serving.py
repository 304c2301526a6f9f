"""Serving an aiohttp application on a real socket: the emulator and the dialer's webhook
endpoint (``--listen``) both bind, report and stop their server this way."""

from __future__ import annotations

import abc
from typing import TypeVar

from aiohttp import web

__all__ = ["StartStop", "http_url", "serve_app"]

_S = TypeVar("_S", bound="StartStop")


async def serve_app(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 60.0
) -> tuple[web.AppRunner, str, int]:
    """Serve ``app`` on ``host``:``port`` (0 picks a free port); returns the runner, whose
    ``cleanup()`` stops it, and the host and port as bound. Raises :class:`OSError` when the
    address cannot be used, with nothing left open."""
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    return runner, str(bound_host), int(bound_port)


def http_url(host: str, port: int, path: str = "") -> str:
    """``http://host:port`` followed by ``path``; an IPv6 host goes in brackets."""
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


class StartStop(abc.ABC):
    """Something ``async with`` starts on the way in and stops on the way out."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start serving."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop serving; does nothing when not started."""

    async def __aenter__(self: _S) -> _S:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
