"""Iterating over a paged list: ``client.call.list_all(...)`` and the other ``*_all`` methods.

Retell's paged lists answer ``{"items": [...], "has_more": ..., "pagination_key": ...}``; the
next page is asked for with that ``pagination_key``. A :class:`Pager` fetches a page only when
its consumer has used up the previous one, so breaking out early costs no extra request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import msgspec

from ._operation import Operation

if TYPE_CHECKING:
    from ._client import AsyncRetell

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Page(Protocol[T_co]):
    """What every paged list response has."""

    @property
    def items(self) -> Sequence[T_co]: ...
    @property
    def has_more(self) -> bool: ...
    @property
    def pagination_key(self) -> str | None: ...


class Pager(Generic[T]):
    """An async iterator over every item of a paged list, one page request at a time.

    ``async for item in pager`` yields items; ``async for page in pager.pages()`` yields the
    pages themselves. The arguments were checked when the pager was made; nothing is sent until
    iteration starts.
    """

    __slots__ = ("_body", "_client", "_cursor_in", "_done", "_items", "_op", "_path", "_query")

    def __init__(
        self,
        client: AsyncRetell,
        op: Operation,
        *,
        path: Mapping[str, str] | None = None,
        query: msgspec.Struct | None = None,
        body: msgspec.Struct | None = None,
        cursor_in: Literal["query", "body"],
    ) -> None:
        self._client = client
        self._op = op
        self._path = path
        self._query = query
        self._body = body
        self._cursor_in = cursor_in
        self._items: list[T] = []
        self._done = False

    def __repr__(self) -> str:
        return f"Pager({self._op.operation_id}, done={self._done})"

    def __aiter__(self) -> Pager[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._done:
                raise StopAsyncIteration
            page = await self._next_page()
            # Reversed once so that each item is a cheap pop from the end.
            self._items = list(reversed(page.items))
        return self._items.pop()

    def pages(self) -> _Pages[T]:
        """The pages themselves, for a pager not yet iterated item by item."""
        if self._items:
            raise RuntimeError("pages() needs a fresh pager: this one is part-way through a page")
        return _Pages(self)

    async def _next_page(self) -> Page[T]:
        page: Page[T] = await self._client._request(
            self._op, path=self._path, query=self._query, body=self._body
        )
        cursor = page.pagination_key
        if not page.has_more or not cursor or cursor == self._cursor():
            # The last page; a cursor that does not move would otherwise loop for ever.
            self._done = True
        else:
            self._advance(cursor)
        return page

    def _cursor(self) -> Any:
        params = self._query if self._cursor_in == "query" else self._body
        return getattr(params, "pagination_key", None)

    def _advance(self, cursor: str) -> None:
        if self._cursor_in == "query":
            assert self._query is not None
            self._query = msgspec.structs.replace(self._query, pagination_key=cursor)
        else:
            assert self._body is not None
            self._body = msgspec.structs.replace(self._body, pagination_key=cursor)


class _Pages(Generic[T]):
    __slots__ = ("_pager",)

    def __init__(self, pager: Pager[T]) -> None:
        self._pager = pager

    def __aiter__(self) -> _Pages[T]:
        return self

    async def __anext__(self) -> Page[T]:
        pager = self._pager
        if pager._done:
            raise StopAsyncIteration
        return await pager._next_page()
