"""What every resource shares: a handle on the client and the operation table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._operation import Operation
from .._operation_table import OPERATIONS

if TYPE_CHECKING:
    from .._client import AsyncRetell


class Resource:
    """A group of operations on one API noun, bound to a client (or a view of it)."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncRetell) -> None:
        self._client = client


def operation(operation_id: str) -> Operation:
    """The operation named by the spec's operationId; a typo fails at import, not at call."""
    return OPERATIONS[operation_id]


def arguments(local_vars: dict[str, Any]) -> dict[str, Any]:
    """A method's keyword arguments as body fields (called first thing, on ``locals()``)."""
    local_vars.pop("self", None)
    return local_vars
