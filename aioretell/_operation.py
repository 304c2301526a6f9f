"""One API endpoint described as data.

Every endpoint is an :class:`Operation`: its HTTP method and path template, the Structs for its
query, body and response, whether retrying it is safe, and the body field that makes a repeat
harmless when it has one. The table of all operations is generated from the OpenAPI spec
(``aioretell/_operation_table.py``); resources name an operation and the client's single
request pipeline does the rest.

Types are referenced by dotted name (``"aioretell.types.call:PhoneCallResponse"``) and resolved
on first use, so importing the table does not import every type module.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass, field
from typing import Any, Literal


class RetrySafety(enum.Enum):
    """Whether an operation may be repeated after an ambiguous failure."""

    #: Reads, updates, deletes and the POST list endpoints: repeating them changes nothing.
    SAFE = "safe"
    #: Creates that place a call or start a conversation: a repeat may dial twice.
    SIDE_EFFECT = "side_effect"


BodyKind = Literal["json", "multipart"]


def _resolve(ref: str | None) -> Any:
    if ref is None:
        return None
    module_name, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass(frozen=True, slots=True)
class Operation:
    """A single endpoint of the Retell API."""

    operation_id: str
    http_method: str
    path: str
    path_params: tuple[str, ...]
    retry: RetrySafety
    body_kind: BodyKind | None = None
    body_ref: str | None = None
    query_ref: str | None = None
    response_ref: str | None = None
    #: The optional body field Retell deduplicates repeats on (a repeat with the same key gets
    #: the first result). The client fills it when the caller leaves it unset, which makes
    #: retrying this create safe.
    idempotency_field: str | None = None
    #: Places a call or opens a conversation: paced by the client's ``create_rate_limit``.
    starts_conversation: bool = False
    _types: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def custom(
        cls,
        http_method: str,
        path: str,
        *,
        retry: RetrySafety,
        has_body: bool,
        response_type: Any,
    ) -> Operation:
        """An operation outside the table (``client.request``): its path is used as given."""
        op = cls(
            operation_id=f"{http_method} {path}",
            http_method=http_method,
            path=path,
            path_params=(),
            retry=retry,
            body_kind="json" if has_body else None,
        )
        op._types.update(body=None, query=None, response=response_type)
        return op

    @property
    def is_safe(self) -> bool:
        return self.retry is RetrySafety.SAFE

    @property
    def body_type(self) -> Any:
        return self._cached("body", self.body_ref)

    @property
    def query_type(self) -> Any:
        return self._cached("query", self.query_ref)

    @property
    def response_type(self) -> Any:
        """The Struct (or builtin type) the response decodes into; ``None`` for no body."""
        return self._cached("response", self.response_ref)

    def _cached(self, key: str, ref: str | None) -> Any:
        try:
            return self._types[key]
        except KeyError:
            value = self._types[key] = _resolve(ref)
            return value
