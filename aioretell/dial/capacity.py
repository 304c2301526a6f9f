"""Keeping the campaign's live calls within the account's concurrency.

The gate counts the campaign's own *live* calls: a slot is taken before a create is sent and
given back once the call is known to have ended (or the create failed). Every ``interval``
seconds it reads ``get-concurrency`` and allows ``concurrency_limit -
reserved_inbound_concurrency - others`` live calls, where ``others`` are the calls the server
counts that are not ours (inbound calls, other campaigns). Our own count lags the server's (we
learn a call ended a poll later), which only ever makes the gate stricter, never looser.

A failed reading keeps the last allowance (and is reported to ``on_error``); a 401 or 403 ends
the poller with :class:`~aioretell.dial.errors.AccountError`, which ends the run.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from .._exceptions import APIError, AuthenticationError, PermissionDeniedError
from ..redis_pacer import PacerUnavailableError
from ..types.concurrency import ConcurrencyRetrieveResponse
from .errors import AccountError

logger = logging.getLogger("aioretell.dial")

Fetch = Callable[[], Awaitable[ConcurrencyRetrieveResponse]]
OnError = Callable[[str, BaseException], None]


class CapacityGate:
    def __init__(
        self, fetch: Fetch | None, *, interval: float = 1.0, on_error: OnError | None = None
    ) -> None:
        self._fetch = fetch
        self.interval = interval
        self._on_error = on_error
        #: slots held: creates in flight plus calls created and not yet seen ended
        self.live = 0
        #: calls confirmed created and not yet seen ended
        self.created_live = 0
        #: how many live calls the account allows us now; ``inf`` without a reading
        self.allowed: float = math.inf if fetch is None else 0.0
        self.limit: int | None = None
        self.others = 0
        self._changed = asyncio.Event()
        self._ready = asyncio.Event()
        if fetch is None:
            self._ready.set()

    async def acquire(self) -> None:
        """Wait for a free slot and take it."""
        await self._ready.wait()
        while self.live >= self.allowed:
            self._changed.clear()
            await self._changed.wait()
        self.live += 1

    def confirm(self) -> None:
        """The create for a held slot returned a call that is live on the server."""
        self.created_live += 1

    def release(self, *, confirmed: bool) -> None:
        """Give a slot back: its call ended (``confirmed``) or its create placed nothing."""
        self.live -= 1
        if confirmed:
            self.created_live -= 1
        self._wake()

    def adopt(self, calls: int) -> None:
        """Count calls created by an earlier run that are still being followed."""
        self.live += calls
        self.created_live += calls

    def hold(self) -> None:
        """Take a slot at once for a create an earlier run may have placed (being looked up):
        :meth:`confirm` or :meth:`release` it like any other."""
        self.live += 1

    def _wake(self) -> None:
        self._changed.set()

    async def poll_once(self) -> None:
        assert self._fetch is not None
        before = self.created_live
        try:
            reading = await self._fetch()
        except (AuthenticationError, PermissionDeniedError) as exc:
            raise AccountError(f"Retell refused the API key ({exc})") from None
        except (APIError, PacerUnavailableError) as exc:
            if self._on_error is not None:
                self._on_error("get-concurrency", exc)
            if not self._ready.is_set():
                logger.warning("get-concurrency failed (%s); dialling without its limit", exc)
                self.allowed = math.inf
                self._ready.set()
                self._wake()
            return
        self.apply(reading, ours=min(before, self.created_live))

    def apply(self, reading: ConcurrencyRetrieveResponse, *, ours: int | None = None) -> None:
        """Take a get-concurrency reading (``ours``: our calls it counts, by default all)."""
        if ours is None:
            ours = self.created_live
        if reading.concurrency_limit is None:
            self.allowed = math.inf
            self._ready.set()
            self._wake()
            return
        limit = reading.concurrency_limit - (reading.reserved_inbound_concurrency or 0)
        self.limit = limit
        self.others = max(0, (reading.current_concurrency or 0) - ours)
        self.allowed = max(0, limit - self.others)
        self._ready.set()
        self._wake()

    async def run(self) -> None:
        """Poll until cancelled."""
        if self._fetch is None:
            return
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval)
