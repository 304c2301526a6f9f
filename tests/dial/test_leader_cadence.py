"""The leader's parts keep their own pace: a list-calls poll that hangs does not hold back the
get-concurrency readings the admission counts live calls from."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from aioretell import AsyncRetell
from aioretell.dial import journal as j
from aioretell.dial.journal_postgres import PostgresJournal
from aioretell.dial.leads import load_leads
from aioretell.dial.runner import DialOptions
from aioretell.dial.worker import run_worker
from aioretell.emulator import Emulator, EmulatorConfig

from .conftest import API_KEY, CAMPAIGN, FAST, FROM, numbers, write_csv
from .test_workers import info_for

#: How long a held list-calls waits for a reading before it is answered anyway: far longer
#: than the polls' interval, so only a leader whose reading waits for its poll runs into it.
PATIENCE_S = 15.0


class HoldListCalls:
    """Emulator middleware: each list-calls is answered only once a get-concurrency request
    has arrived after it (or after :data:`PATIENCE_S`)."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        #: per list-calls held: whether a reading released it
        self.released_by_reading: list[bool] = []

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/get-concurrency":
            self.reading.set()
        elif request.path == "/v3/list-calls":
            self.reading.clear()
            try:
                await asyncio.wait_for(self.reading.wait(), PATIENCE_S)
            except asyncio.TimeoutError:
                self.released_by_reading.append(False)
            else:
                self.released_by_reading.append(True)
        return await handler(request)


async def test_a_hanging_list_calls_does_not_hold_back_the_readings(
    tmp_path: Path, postgres_dsn: str
) -> None:
    wanted = numbers(6)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    hold = HoldListCalls()
    emu = Emulator(EmulatorConfig(api_key=API_KEY, **FAST))
    emu.app.middlewares.append(hold.middleware)
    journal = PostgresJournal(postgres_dsn, campaign="cadence", worker_id="w1")
    try:
        async with emu:
            await journal.acquire_lease(ttl_s=30.0)
            await journal.open_campaign(info_for(csv), load_leads(csv))
            async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as client:
                run = run_worker(
                    client,
                    journal,
                    CAMPAIGN,
                    DialOptions(from_number=FROM, lookup_grace_s=0.0, lookup_every_s=0.05),
                    cps=None,
                    poll_interval=0.03,
                )
                await asyncio.wait_for(run, timeout=120)
            assert await journal.counts() == {j.ENDED: 6}
    finally:
        await journal.close()
    assert Counter(emu.state.dialed_numbers()) == dict.fromkeys(wanted, 1)
    assert hold.released_by_reading, "the leader never polled list-calls"
    assert all(hold.released_by_reading), hold.released_by_reading
