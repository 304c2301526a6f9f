"""What every resource shares: a handle on the client and the operation table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._operation import Operation
from .._operation_table import OPERATIONS

if TYPE_CHECKING:
    from .._client import AsyncRetell


class Resource:
    """A group of operations on one API noun, bound to a client (or a view of it)."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncRetell) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._client!r})"


def operation(operation_id: str) -> Operation:
    """The operation named by the spec's operationId; a typo fails at import, not at call."""
    return OPERATIONS[operation_id]
