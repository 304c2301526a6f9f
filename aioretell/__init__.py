"""aioretell: a fast asyncio client for the Retell AI API.

``AsyncRetell`` is the client; ``aioretell.types`` holds the response and request Structs;
``aioretell.emulator`` is a local Retell server for development and tests.
"""

from typing import TYPE_CHECKING, Any

from ._client import AsyncRetell
from ._exceptions import (
    AmbiguousOutcomeError,
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestInfo,
    RetellError,
    UnprocessableEntityError,
    WrongEventLoopError,
)
from ._pagination import Pager
from ._transport import Timeout
from ._version import __version__
from .fan_out import FanOut, Outcome, Progress, fan_out

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousOutcomeError",
    "AsyncRetell",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "FanOut",
    "InternalServerError",
    "NotFoundError",
    "Outcome",
    "Pager",
    "PermissionDeniedError",
    "Progress",
    "RateLimitError",
    "RequestInfo",
    "RetellError",
    "Timeout",
    "UnprocessableEntityError",
    "WrongEventLoopError",
    "__version__",
    "fan_out",
]

if TYPE_CHECKING:
    from ._fast_transport import FastTransport as FastTransport


def __getattr__(name: str) -> Any:
    # FastTransport needs the `fast` extra (httptools): imported when first asked for, so that
    # `import aioretell` never does, and left out of __all__ for the same reason.
    if name == "FastTransport":
        from ._fast_transport import FastTransport as FastTransport

        return FastTransport
    raise AttributeError(f"module 'aioretell' has no attribute {name!r}")
