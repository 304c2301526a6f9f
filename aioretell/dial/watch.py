"""Following created calls to their end with as few requests as possible.

One ``list-calls`` request, filtered on the campaign, a terminal ``call_status`` and
``end_timestamp`` at or after the latest end seen (less a margin for late indexing), returns up
to 1,000 ended calls; polling ``get-call`` would cost one request per call per poll. Every
``full_scan_every`` polls (and on the first) the ``end_timestamp`` filter is dropped, so a call
indexed later than the margin is still found.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._client import AsyncRetell
from .._exceptions import APIError, AuthenticationError, PermissionDeniedError
from ..redis_pacer import PacerUnavailableError
from ..types.call import V3CallResponse
from .errors import AccountError
from .reconcile import campaign_filter

logger = logging.getLogger("aioretell.dial")

TERMINAL_STATUSES = ("ended", "not_connected", "error")
PAGE = 1000


@dataclass(frozen=True, slots=True)
class CallEnd:
    call_id: str
    call_status: str
    disconnection_reason: str | None


def call_end(call: V3CallResponse | Any) -> CallEnd | None:
    """A :class:`CallEnd` when ``call`` (any call response) has ended, else ``None``."""
    if call.call_status not in TERMINAL_STATUSES:
        return None
    return CallEnd(call.call_id, call.call_status, call.disconnection_reason)


class Watcher:
    def __init__(
        self,
        client: AsyncRetell,
        campaign_id: str,
        on_end: Callable[[CallEnd], Awaitable[bool]],
        *,
        interval: float = 1.0,
        margin_ms: int = 30_000,
        full_scan_every: int = 30,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self._client = client
        self._campaign_id = campaign_id
        self._on_end = on_end
        self._on_error = on_error
        self.interval = interval
        self._margin_ms = margin_ms
        self._full_scan_every = full_scan_every
        self._watched: set[str] = set()
        self._watermark: int | None = None
        self._polls = 0
        #: list-calls requests made
        self.requests = 0
        #: ends ``on_end`` applied (it answered true)
        self.caught = 0

    def watch(self, call_id: str) -> None:
        self._watched.add(call_id)

    def watch_only(self, call_ids: list[str]) -> None:
        """Watch exactly ``call_ids`` (the open calls of a shared campaign, read anew)."""
        self._watched = set(call_ids)

    def forget(self, call_id: str) -> None:
        self._watched.discard(call_id)

    @property
    def watching(self) -> int:
        return len(self._watched)

    async def poll_once(self) -> None:
        """One scan; a 401 or 403 raises :class:`AccountError` (it ends the run)."""
        try:
            await self._scan()
        except (AuthenticationError, PermissionDeniedError) as exc:
            raise AccountError(f"Retell refused the API key ({exc})") from None

    def failed(self, exc: APIError | PacerUnavailableError) -> None:
        """A poll failed: counted (the live view shows it), and tried again at the next one."""
        logger.info("list-calls failed while following calls: %s", exc)
        if self._on_error is not None:
            self._on_error("list-calls", exc)

    async def _scan(self) -> None:
        full = self._watermark is None or self._polls % self._full_scan_every == 0
        self._polls += 1
        criteria = campaign_filter(self._campaign_id)
        criteria["call_status"] = {"type": "enum", "op": "in", "value": list(TERMINAL_STATUSES)}
        if not full and self._watermark is not None:
            since = self._watermark - self._margin_ms
            criteria["end_timestamp"] = {"type": "number", "op": "ge", "value": since}
        cursor: str | None = None
        while True:
            if cursor is None:
                page = await self._client.call.list(filter_criteria=criteria, limit=PAGE)
            else:
                page = await self._client.call.list(
                    filter_criteria=criteria, limit=PAGE, pagination_key=cursor
                )
            self.requests += 1
            for call in page.items:
                if call.end_timestamp is not None:
                    self._watermark = max(self._watermark or 0, call.end_timestamp)
                end = call_end(call)
                if end is not None and call.call_id in self._watched:
                    self._watched.discard(call.call_id)
                    if await self._on_end(end):
                        self.caught += 1
            if not page.has_more or not page.pagination_key or not self._watched:
                return
            cursor = page.pagination_key

    async def run(self) -> None:
        """Poll while calls are watched, until cancelled."""
        while True:
            if self._watched:
                try:
                    await self.poll_once()
                except AccountError:
                    raise
                except (APIError, PacerUnavailableError) as exc:
                    self.failed(exc)
            await asyncio.sleep(self.interval)
