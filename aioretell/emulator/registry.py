"""The handler registry: operationId -> function that acts on the state.

A handler is a plain synchronous function: it receives the validated request, mutates the
state and returns a :class:`Reply`. Adding one is a decorated function in a ``handlers``
module::

    @handles("getVoice")
    def get_voice(req: Request) -> Reply:
        return Reply(200, found(req.state.store("voices"), req.path["voice_id"], "Voice"))

Plain create/get/update/delete/list handlers come from a table instead (:mod:`.crud`).

Operations without a handler answer 501. The app conforms a handler's 2xx body to the
operation's response type (see :mod:`.conform`), so a handler returns the stored record as it
is; ``shaped=True`` skips that for handlers whose bodies are already exact (the call and chat
renderers, on the benchmark server's hot path).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .state import JSON, EmulatorState

T = TypeVar("T")


class ApiError(Exception):
    """An error answer in Retell's shape: ``{"status": "error", "message": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Request:
    state: EmulatorState
    #: Path parameters, e.g. ``{"call_id": "call_..."}``.
    path: Mapping[str, str]
    #: The body, checked against the operation's schema in the spec; ``{}`` without a body.
    body: JSON
    query: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    #: JSON-encodable body; ``None`` for an empty body (204).
    body: Any = None


Handler = Callable[[Request], Reply]
HANDLERS: dict[str, Handler] = {}
#: Operations whose handler bodies need no conforming to the response type.
SHAPED: set[str] = set()


def handles(*operation_ids: str, shaped: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``operation_ids``."""

    def register(func: Handler) -> Handler:
        for operation_id in operation_ids:
            if operation_id in HANDLERS:
                raise ValueError(f"duplicate emulator handler for {operation_id}")
            HANDLERS[operation_id] = func
            if shaped:
                SHAPED.add(operation_id)
        return func

    return register


def found(store: Mapping[str, T], record_id: str, what: str) -> T:
    """``store[record_id]``, or a 404 naming what was not found."""
    try:
        return store[record_id]
    except KeyError:
        raise ApiError(404, f"{what} not found: {record_id}") from None
