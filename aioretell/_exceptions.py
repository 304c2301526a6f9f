"""Exceptions raised by aioretell.

::

    RetellError                       anything aioretell raises on purpose
    ├── ClientClosedError             the client was used after ``aclose()`` / ``async with``
    ├── WrongEventLoopError           the client was used from an event loop other than its own
    ├── AmbiguousOutcomeError         a create failed in a way that may have taken effect
    └── APIError                      a request to Retell failed
        ├── APIConnectionError        no usable response (DNS, refused, reset, cut-off body)
        │   └── APITimeoutError       a connect, pool, read or total timeout
        ├── APIResponseValidationError  a complete 2xx body that does not decode into its type
        └── APIStatusError            Retell answered with a non-2xx status
            ├── BadRequestError               400
            ├── AuthenticationError           401
            ├── PermissionDeniedError         403
            ├── NotFoundError                 404
            ├── ConflictError                 409
            ├── UnprocessableEntityError      422
            ├── RateLimitError                429
            └── InternalServerError           5xx

Other statuses (402, 408, ...) raise :class:`APIStatusError` itself. Invalid arguments raise the
builtin ``TypeError`` / ``ValueError`` before anything is sent. ``asyncio.CancelledError`` is never
wrapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousOutcomeError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestInfo",
    "RetellError",
    "UnprocessableEntityError",
    "WrongEventLoopError",
]


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What was being sent when an error happened. Never holds credentials."""

    operation_id: str
    method: str
    url: str
    attempts: int = 1


class RetellError(Exception):
    """Base class of every exception aioretell raises on purpose."""


class ClientClosedError(RetellError, RuntimeError):
    """The client was used after it was closed."""


class WrongEventLoopError(RetellError, RuntimeError):
    """The client was used from another event loop than the one that opened its connections.

    A connection pool belongs to one event loop. Create the client inside the loop that uses
    it (in the coroutine given to ``asyncio.run``), one client per loop.
    """


class APIError(RetellError):
    """A request to the Retell API failed."""

    message: str
    request: RequestInfo | None

    def __init__(self, message: str, *, request: RequestInfo | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIConnectionError(APIError):
    """No usable response: the connection failed or was reset, or the body was cut off.

    ``request_sent`` is False only when the request certainly never reached the server
    (connect refused, DNS failure, a timeout while waiting for a pooled connection); such
    failures are safe to retry even for operations with side effects.
    """

    def __init__(
        self,
        message: str = "Connection error.",
        *,
        request: RequestInfo | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message, request=request)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """A connect, pool acquire, read or total timeout expired."""

    def __init__(
        self,
        message: str = "Request timed out.",
        *,
        request: RequestInfo | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message, request=request, request_sent=request_sent)


class APIResponseValidationError(APIError):
    """A complete success response whose body does not decode into the expected type.

    Not valid JSON, JSON that msgspec refuses (such as a lone surrogate escape), or JSON of the
    wrong shape: the server answered, so it is never retried. ``body`` holds the raw bytes.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: bytes,
        headers: Mapping[str, str],
        request: RequestInfo | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.status_code = status_code
        self.body = body
        self.headers = headers


class APIStatusError(APIError):
    """Retell answered with a non-success status."""

    status_code: int
    body: bytes
    headers: Mapping[str, str]

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: bytes,
        headers: Mapping[str, str],
        request: RequestInfo | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.status_code = status_code
        self.body = body
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, message={self.message!r})"


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422."""


class RateLimitError(APIStatusError):
    """429: too many requests or too many concurrent calls."""


class InternalServerError(APIStatusError):
    """5xx."""


class AmbiguousOutcomeError(RetellError):
    """A create that may have taken effect failed, and was not retried (or retries ran out).

    The request may or may not have placed the call or started the conversation. Check with a
    read (``client.call.list`` filtered on your metadata) before trying again, or build the
    client with ``retry_ambiguous_creates=True`` if a duplicate is acceptable. A create that
    carried an ``idempotency_key`` may be sent again with the same key (for up to an hour):
    Retell then answers with the first result instead of acting twice.
    """

    def __init__(
        self,
        message: str,
        *,
        cause: BaseException,
        request: RequestInfo,
        metadata: Any = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause
        self.request = request
        #: the ``metadata`` the create carried, so the caller can look the call up
        self.metadata = metadata
        #: the idempotency key the create carried (the caller's, or the one the client made)
        self.idempotency_key = idempotency_key
        self.__cause__ = cause


STATUS_ERRORS: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP status."""
    if status >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status, APIStatusError)
