from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aioretell import AsyncRetell
from aioretell.dial.campaign import run_campaign
from aioretell.dial.capacity import CapacityGate
from aioretell.dial.journal import CampaignInfo, Journal
from aioretell.dial.journal_postgres import PostgresJournal
from aioretell.dial.journal_sqlite import SQLiteJournal
from aioretell.dial.leads import load_leads
from aioretell.dial.reconcile import campaign_filter
from aioretell.dial.runner import DialOptions, Runner
from aioretell.emulator import Emulator, EmulatorConfig
from tests.services import POSTGRES_URL, require

API_KEY = "key_dial_tests"
FROM = "+14155550100"
CAMPAIGN = "cmp_test"
#: Real-time emulator settings short enough that a test campaign takes a fraction of a second.
FAST = {"ring_duration_s": 0.02, "call_duration_s": 0.1, "concurrency_limit": 500}


def write_csv(path: Path, numbers: list[str], header: str = "phone_number,name") -> Path:
    lines = [header] + [f"{n},Lead {i}" for i, n in enumerate(numbers)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def numbers(count: int, area: str = "212") -> list[str]:
    return [f"+1{area}555{i:04d}" for i in range(100, 100 + count)]


@pytest.fixture
async def make_emulator() -> AsyncIterator[Callable[..., Any]]:
    running: list[Emulator] = []

    async def make(**overrides: Any) -> Emulator:
        emu = Emulator(EmulatorConfig(api_key=API_KEY, **{**FAST, **overrides}))
        await emu.start()
        running.append(emu)
        return emu

    yield make
    for emu in running:
        await emu.stop()


#: The journal implementations every journal test runs against: a backend is ``"sqlite"`` or
#: the URL of a PostgreSQL schema of the test's own (see :func:`postgres_dsn`).
BACKENDS = ["sqlite", "postgres"]


def with_schema(url: str, schema: str) -> str:
    """``url`` with its connections' ``search_path`` set to ``schema``."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
async def postgres_dsn() -> AsyncIterator[str]:
    """A schema of this test's own in the test PostgreSQL, dropped afterwards."""
    import psycopg

    url = require("PostgreSQL", POSTGRES_URL, 5432, "AIORETELL_TEST_POSTGRES")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield with_schema(url, schema)
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "sqlite"
    return str(request.getfixturevalue("postgres_dsn"))


def open_journal(backend: str, tmp_path: Path, name: str = "j.db", worker: str = "w1") -> Journal:
    """The journal ``name``: a file of ``tmp_path``, or a campaign of the PostgreSQL schema
    ``backend`` seen as worker ``worker`` (the same one unless a test asks for another)."""
    if backend == "sqlite":
        return SQLiteJournal(tmp_path / name)
    return PostgresJournal(backend, campaign=name, worker_id=worker)


async def new_journal(
    tmp_path: Path, csv: Path, name: str = "j.db", backend: str = "sqlite"
) -> Journal:
    """A journal holding campaign ``CAMPAIGN`` over the leads of ``csv``."""
    leads = load_leads(csv)
    journal = open_journal(backend, tmp_path, name)
    info = CampaignInfo(CAMPAIGN, leads.sha256, csv.name, FROM, "", "test")
    await journal.open_campaign(info, leads)
    return journal


async def dial(
    emu: Emulator,
    journal: Journal,
    *,
    gate: CapacityGate | None = None,
    stop: asyncio.Event | None = None,
    sidecar: Callable[[Runner], Awaitable[None]] | None = None,
    **options: Any,
) -> Runner:
    async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as client:
        return await run_campaign(
            client,
            journal,
            CAMPAIGN,
            DialOptions(from_number=FROM, **options),
            stop=stop,
            poll_interval=0.02,
            gate=gate,
            sidecar=sidecar,
        )


async def calls_per_number(base_url: str, campaign: str = CAMPAIGN) -> Counter[str]:
    """Through the API: list-calls filtered on the campaign, counted by ``to_number``."""
    counts: Counter[str] = Counter()
    async with AsyncRetell(api_key=API_KEY, base_url=base_url) as client:
        cursor: str | None = None
        while True:
            if cursor is None:
                page = await client.call.list(filter_criteria=campaign_filter(campaign), limit=1000)
            else:
                page = await client.call.list(
                    filter_criteria=campaign_filter(campaign), limit=1000, pagination_key=cursor
                )
            counts.update(call.to_number or "" for call in page.items)
            if not page.has_more or page.pagination_key is None:
                return counts
            cursor = page.pagination_key


def dialled(record: Path) -> Counter[str]:
    """Calls per number in the record file of the dialer's in-process emulator."""
    calls = {}
    for line in record.read_bytes().splitlines():
        call = msgspec.json.decode(line)
        calls[call["call_id"]] = call  # a call's later lines (stopped) replace its first
    return Counter(call["to_number"] for call in calls.values() if call["dialed"])
