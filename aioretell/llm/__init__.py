"""A server for Retell's custom-LLM WebSocket: typed events, a session per call, adapters.

``events`` holds the protocol's typed frames, ``session`` the sans-I/O call state and the
per-call session, ``server`` :class:`LLMServer` with its aiohttp.web adapter, and ``asgi`` the
Starlette/FastAPI adapter (extra ``aioretell[asgi]``). Not imported by ``import aioretell``.
"""

from .events import (
    AgentConfig,
    AgentInterrupt,
    CallDetails,
    ConfigEvent,
    LLMConfig,
    MalformedEventError,
    Metadata,
    PingPong,
    PingPongReply,
    ReminderRequired,
    Response,
    ResponseRequired,
    RetellEvent,
    ServerEvent,
    ToolCallInvocation,
    ToolCallResult,
    UnknownEvent,
    UpdateAgent,
    UpdateOnly,
    Utterance,
    UtteranceOrToolCall,
    UtteranceWords,
    decode_retell_event,
    decode_server_event,
    encode_retell_event,
    encode_server_event,
)
from .server import LLMServer
from .session import CallState, LLMSession, Socket

__all__ = [
    "AgentConfig",
    "AgentInterrupt",
    "CallDetails",
    "ConfigEvent",
    "CallState",
    "LLMConfig",
    "LLMServer",
    "LLMSession",
    "MalformedEventError",
    "Metadata",
    "PingPong",
    "PingPongReply",
    "ReminderRequired",
    "Response",
    "ResponseRequired",
    "RetellEvent",
    "ServerEvent",
    "Socket",
    "ToolCallInvocation",
    "ToolCallResult",
    "UnknownEvent",
    "UpdateAgent",
    "UpdateOnly",
    "Utterance",
    "UtteranceOrToolCall",
    "UtteranceWords",
    "decode_retell_event",
    "decode_server_event",
    "encode_retell_event",
    "encode_server_event",
]
