"""``--listen``: call ends from webhooks, deduplicated, verified, with a list-calls safety net."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from aioretell import AsyncRetell
from aioretell.cli import main
from aioretell.dial import journal as j
from aioretell.dial.campaign import run_campaign
from aioretell.dial.journal import CampaignInfo, Journal, Row
from aioretell.dial.journal_sqlite import SQLiteJournal
from aioretell.dial.leads import load_leads
from aioretell.dial.listen import ListenAddressError, WebhookFollower, parse_listen
from aioretell.dial.reconcile import call_metadata
from aioretell.dial.runner import DialOptions, Runner
from aioretell.dial.watch import Watcher
from aioretell.emulator import Emulator
from aioretell.webhooks import SIGNATURE_HEADER, sign

from .conftest import API_KEY, CAMPAIGN, FROM, numbers, write_csv

Make = Callable[..., Any]
#: Safety-net settings that never poll within a test: every end must come from a webhook.
NO_SAFETY_NET: dict[str, Any] = {"reconcile_interval": 3600.0, "reconcile_idle_s": 3600.0}
HAPPY = [(j.PENDING, j.DISPATCHING), (j.DISPATCHING, j.CREATED), (j.CREATED, j.ENDED)]


class SpyJournal(SQLiteJournal):
    """A journal that records every transition it commits, per row."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.moves: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)

    async def claim(self, now: float) -> Row | None:
        row = await super().claim(now)
        if row is not None:
            self.moves[row.ref].append((j.PENDING, j.DISPATCHING))
        return row

    async def _store_move(self, row: Row, to: str, fields: dict[str, Any]) -> None:
        source = row.state
        await super()._store_move(row, to, fields)
        self.moves[row.ref].append((source, to))


async def spy_journal(tmp_path: Path, csv: Path) -> SpyJournal:
    leads = load_leads(csv)
    journal = SpyJournal(tmp_path / f"{csv.stem}.db")
    info = CampaignInfo(CAMPAIGN, leads.sha256, csv.name, FROM, "", "test")
    await journal.open_campaign(info, leads)
    return journal


def list_calls(emu: Emulator) -> int:
    return sum(1 for operation, _, _ in emu.requests if operation == "listCalls")


async def dial(
    emu: Emulator,
    journal: Journal,
    follower: WebhookFollower | None,
    *,
    sidecar: Callable[[Runner], Any] | None = None,
    stop: asyncio.Event | None = None,
    reconcile_interval: float = 30.0,
    reconcile_idle_s: float = 5.0,
    **options: Any,
) -> tuple[Runner, Watcher]:
    watchers: list[Watcher] = []
    async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as client:
        runner = await run_campaign(
            client,
            journal,
            CAMPAIGN,
            DialOptions(from_number=FROM, **options),
            poll_interval=0.02,
            stop=stop,
            sidecar=sidecar,
            follower=follower,
            reconcile_interval=reconcile_interval,
            reconcile_idle_s=reconcile_idle_s,
            watchers=watchers,
        )
    return runner, watchers[0]


async def test_webhooks_end_every_call_once_without_polling(
    tmp_path: Path, make_emulator: Make
) -> None:
    wanted = numbers(30)
    busy = wanted[5]  # ends at once, in the create's answer
    csv = write_csv(tmp_path / "hooks.csv", wanted)
    async with WebhookFollower(API_KEY, CAMPAIGN) as follower:
        emu = await make_emulator(
            webhook_url=follower.url,
            webhook_duplicates=1,
            outcomes_by_suffix=((busy[-4:], "dial_busy"),),
        )
        async with await spy_journal(tmp_path, csv) as journal:
            runner, watcher = await dial(emu, journal, follower, concurrency=8, **NO_SAFETY_NET)
            rows = await journal.rows()
            moves = dict(journal.moves)
        # Let the late call_analyzed events and the duplicates arrive: they must change nothing.
        await emu.webhooks.flush()
        await follower.receiver.drain()

    assert {row.state for row in rows} == {j.ENDED}
    assert all(row.attempt == 1 for row in rows)
    assert next(r for r in rows if r.to_number == busy).disconnection_reason == "dial_busy"
    # Each row moved through the state machine once: one end applied per lead, no repeats.
    assert moves == {row.ref: HAPPY for row in rows}
    # The webhooks did the work: no list-calls at all, every end but the busy one from an event.
    assert list_calls(emu) == 0 and watcher.requests == 0 and watcher.caught == 0
    assert runner.stats.ends_via == {"webhook": 29, "create": 1}
    assert follower.applied == 29 and follower.foreign == 0
    # The emulator did send each event twice, and the copies were answered as duplicates.
    copies = [a for a in emu.webhooks.attempts if a.copy == 1 and a.event == "call_ended"]
    assert len(copies) == 30 and {a.status for a in copies} == {200}
    assert not follower.receiver.dead_letters

    # The same leads followed by polling list-calls instead: many requests, not zero.
    polled_emu = await make_emulator(outcomes_by_suffix=((busy[-4:], "dial_busy"),))
    async with await spy_journal(tmp_path, write_csv(tmp_path / "poll.csv", wanted)) as journal:
        polled, _ = await dial(polled_emu, journal, None, concurrency=8)
    assert polled.stats.ends_via == {"poll": 29, "create": 1}
    assert list_calls(polled_emu) > 0


def call_ended(
    call_id: str, ref: str, campaign: str = CAMPAIGN, event: str = "call_ended"
) -> bytes:
    call = {
        "call_type": "phone_call",
        "call_id": call_id,
        "agent_id": "agent_1",
        "agent_version": 1,
        "call_status": "ended",
        "disconnection_reason": "user_hangup",
        "from_number": FROM,
        "direction": "outbound",
        "metadata": call_metadata(campaign, ref, 1),
    }
    return msgspec.json.encode({"event": event, "call": call})


def signed(body: bytes, key: str = API_KEY) -> dict[str, str]:
    signature = sign(body, api_key=key, timestamp_ms=int(time.time() * 1000))
    return {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}


async def test_bad_signature_and_other_campaigns_change_nothing(
    tmp_path: Path, make_emulator: Make
) -> None:
    """Forged and foreign events are refused or ignored; only a signed event of ours counts."""
    emu = await make_emulator()  # delivers no webhooks: the test posts them itself
    csv = write_csv(tmp_path / "forged.csv", numbers(2))
    seen: dict[str, Any] = {}

    async with WebhookFollower(API_KEY, CAMPAIGN) as follower, aiohttp.ClientSession() as http:

        async def post(body: bytes, headers: dict[str, str]) -> int:
            async with http.post(follower.url, data=body, headers=headers) as response:
                return response.status

        async def driver(runner: Runner) -> None:
            try:
                while len(runner.created_calls()) < 2:
                    await asyncio.sleep(0.01)
                first_id, second_id = runner.created_calls()
                first, second = runner.open_row(first_id), runner.open_row(second_id)
                assert first is not None and second is not None
                assert first.call_id is not None and second.call_id is not None
                ours = call_ended(first.call_id, first.ref)
                seen["forged"] = await post(ours, signed(ours, key="key_someone_else"))
                seen["unsigned"] = await post(ours, {"Content-Type": "application/json"})
                # Another campaign's metadata (a call_analyzed: a call_ended would claim the
                # deduplication key of this call id).
                foreign = call_ended(first.call_id, first.ref, "cmp_other", "call_analyzed")
                seen["foreign"] = await post(foreign, signed(foreign))
                await follower.receiver.drain()
                seen["after_refused"] = first.state
                seen["genuine"] = await post(ours, signed(ours))
                seen["duplicate"] = await post(ours, signed(ours))
                await follower.receiver.drain()
                seen["after_genuine"] = first.state
                last = call_ended(second.call_id, second.ref)
                await post(last, signed(last))
                await follower.receiver.drain()
            finally:
                stop.set()  # the run ends even if an event was not applied; asserted below

        stop = asyncio.Event()
        async with await spy_journal(tmp_path, csv) as journal:
            runner, watcher = await dial(
                emu, journal, follower, sidecar=driver, stop=stop, **NO_SAFETY_NET
            )
            moves = dict(journal.moves)

    assert seen == {
        "forged": 401,
        "unsigned": 401,
        "foreign": 204,
        "after_refused": j.CREATED,
        "genuine": 204,
        "duplicate": 200,
        "after_genuine": j.ENDED,
    }
    assert moves == {"L2": HAPPY, "L3": HAPPY}
    assert follower.foreign == 1 and follower.received == 2 and follower.applied == 2
    assert runner.stats.ends_via == {"webhook": 2} and watcher.requests == 0


@asynccontextmanager
async def lossy_relay(target: str, lost: set[str]) -> AsyncIterator[str]:
    """A hop before ``target`` that loses every event of the first call it sees (answering
    204, so the sender thinks it delivered); the call id is added to ``lost``."""
    session = aiohttp.ClientSession()

    async def relay(request: web.Request) -> web.Response:
        body = await request.read()
        call_id = msgspec.json.decode(body)["call"]["call_id"]
        if not lost:
            lost.add(call_id)
        if call_id in lost:
            return web.Response(status=204)
        headers = {SIGNATURE_HEADER: request.headers[SIGNATURE_HEADER]}
        async with session.post(target, data=body, headers=headers) as response:
            return web.Response(status=response.status)

    app = web.Application()
    app.router.add_post("/hook", relay)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}/hook"
    finally:
        await runner.cleanup()
        await session.close()


async def test_a_lost_webhook_is_caught_by_the_safety_net(
    tmp_path: Path, make_emulator: Make
) -> None:
    csv = write_csv(tmp_path / "lost.csv", numbers(12))
    lost: set[str] = set()
    async with (
        WebhookFollower(API_KEY, CAMPAIGN) as follower,
        lossy_relay(follower.url, lost) as relay_url,
    ):
        emu = await make_emulator(webhook_url=relay_url)
        async with await spy_journal(tmp_path, csv) as journal:
            # Never on a timer: only the "nothing left but open calls, and quiet" poll.
            runner, watcher = await dial(
                emu, journal, follower, reconcile_interval=3600.0, reconcile_idle_s=0.2
            )
            rows = await journal.rows()
            moves = dict(journal.moves)

    assert len(lost) == 1
    (lost_row,) = [row for row in rows if row.call_id in lost]
    assert lost_row.state == j.ENDED and lost_row.call_status == "ended"
    assert {row.state for row in rows} == {j.ENDED}
    assert moves == {row.ref: HAPPY for row in rows}
    via = runner.stats.ends_via
    assert via["poll"] >= 1 and via["poll"] + via.get("webhook", 0) == 12
    assert watcher.caught == via["poll"] and follower.applied == via.get("webhook", 0)
    assert 1 <= list_calls(emu) == watcher.requests


async def test_resumed_open_calls_are_polled_once_at_start(
    tmp_path: Path, make_emulator: Make
) -> None:
    """Calls left open by an earlier run may have ended while nobody listened."""
    emu = await make_emulator()
    csv = write_csv(tmp_path / "resume.csv", numbers(3))
    async with await spy_journal(tmp_path, csv) as journal:
        async with AsyncRetell(api_key=API_KEY, base_url=emu.base_url) as client:
            while (row := await journal.claim(now=0.0)) is not None:
                assert row.to_number is not None
                call = await client.call.create_phone_call(
                    from_number=FROM,
                    to_number=row.to_number,
                    metadata=call_metadata(CAMPAIGN, row.ref, 1),
                )
                await journal.mark_created(row, call.call_id, create_ms=None)
        while any(c.end_at > emu.state.now() for c in emu.state.calls.values()):
            await asyncio.sleep(0.02)
        async with WebhookFollower(API_KEY, CAMPAIGN) as follower:
            runner, watcher = await dial(emu, journal, follower, **NO_SAFETY_NET)
        assert {row.state for row in await journal.rows()} == {j.ENDED}
    assert runner.stats.ends_via == {"poll": 3} and watcher.requests == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["8765", ":8765", "host:", "host:port", "host:70000"])
def test_parse_listen_refuses(value: str) -> None:
    with pytest.raises(ListenAddressError):
        parse_listen(value)


@pytest.fixture
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    monkeypatch.delenv("RETELL_BASE_URL", raising=False)


@pytest.mark.usefixtures("_no_key")
def test_cli_listen_with_the_in_process_emulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(6))
    out = tmp_path / "r.ndjson"
    args = ["dial", str(csv), "--from-number", FROM, "--journal", str(tmp_path / "c.db")]
    args += ["--out", str(out), "--cps", "200", "--listen", "127.0.0.1:0"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "Following calls from webhooks received at http://127.0.0.1:" in captured.err
    assert "The in-process emulator delivers its webhooks to" in captured.err
    assert "from webhooks" in captured.out
    records = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert {r["state"] for r in records} == {"ended"}


@pytest.mark.usefixtures("_no_key")
def test_cli_refuses_a_bad_listen_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(1))
    assert main(["dial", str(csv), "--from-number", FROM, "--listen", "8765"]) == 2
    assert "is not HOST:PORT" in capsys.readouterr().err
    assert not (tmp_path / "leads.journal.db").exists()


class BrokenJournal(SpyJournal):
    async def mark_ended(
        self, row: Row, *, call_status: str, disconnection_reason: str | None
    ) -> None:
        raise RuntimeError("journal bug")


async def test_an_error_applying_a_webhook_ends_the_run(
    tmp_path: Path, make_emulator: Make
) -> None:
    """The receiver's handler is nobody's task: its failure is carried to the run's."""
    from aioretell.dial.errors import BackgroundTaskError

    csv = write_csv(tmp_path / "broken.csv", numbers(3))
    leads = load_leads(csv)
    async with WebhookFollower(API_KEY, CAMPAIGN) as follower:
        emu = await make_emulator(webhook_url=follower.url)
        async with BrokenJournal(tmp_path / "broken.db") as journal:
            info = CampaignInfo(CAMPAIGN, leads.sha256, csv.name, FROM, "", "test")
            await journal.open_campaign(info, leads)
            with pytest.raises(BackgroundTaskError, match="call follower stopped: RuntimeError"):
                await asyncio.wait_for(dial(emu, journal, follower, **NO_SAFETY_NET), timeout=60)
            states = {row.state for row in await journal.rows()}
        await follower.receiver.drain()
    assert states <= {j.DISPATCHING, j.CREATED}
