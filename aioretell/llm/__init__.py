"""A server for Retell's custom-LLM WebSocket: typed events, a session per call, adapters.

``events`` holds the protocol's typed frames, ``session`` the sans-I/O call state and the
per-call session, ``server`` :class:`LLMServer` with its aiohttp.web adapter, and ``asgi`` the
Starlette/FastAPI adapter (extra ``aioretell[asgi]``). Not imported by ``import aioretell``.
"""

from . import events
from .events import *  # noqa: F403  (re-exports exactly events.__all__, the one list of them)
from .server import LLMServer
from .session import CallState, LLMSession, Socket

__all__ = ["CallState", "LLMServer", "LLMSession", "Socket"]
__all__ += events.__all__
