"""``aioretell dial``: the arguments, and the glue between leads, journal, runner and report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from .._client import DEFAULT_BASE_URL, AsyncRetell
from . import journal as j
from .campaign import run_campaign
from .journal import CampaignInfo, Journal, JournalError
from .leads import LeadFile, LeadFileError, load_leads, normalize_e164
from .reconcile import new_campaign_id
from .report import LiveView, Snapshot, print_rejected, print_summary, write_ndjson
from .runner import DialOptions, Runner

EMULATOR_KEY = "key_dial_emulator"
IN_PROCESS = "in-process emulator"
#: The in-process emulator: short calls, room for a few hundred at once, and a few numbers
#: with a fixed outcome so the summary shows more than hang-ups.
EMULATOR_CALL_S = 2.0
EMULATOR_CONCURRENCY = 300
EMULATOR_OUTCOMES = (("13", "dial_busy"), ("37", "dial_no_answer"), ("99", "invalid_destination"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("leads", type=Path, metavar="LEADS.csv")
    parser.add_argument("--from-number", required=True, help="your Retell number, E.164")
    parser.add_argument("--agent-id", default=None, help="override the number's outbound agent")
    parser.add_argument(
        "--cps", type=float, default=None, help="creates per second (default: adapt to 429s)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=20, metavar="N", help="requests in flight at most"
    )
    parser.add_argument("--journal", type=Path, default=None, help="default: LEADS.journal.db")
    parser.add_argument("--out", type=Path, default=None, help="write results as NDJSON here")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--api-key", default=None, help="defaults to $RETELL_API_KEY")
    parser.add_argument(
        "--redial", type=int, default=0, metavar="N", help="redial busy/no-answer up to N times"
    )
    parser.add_argument("--redial-delay", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often to read get-concurrency and look for ended calls",
    )


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    if normalize_e164(args.from_number) != args.from_number:
        print(f"aioretell dial: --from-number {args.from_number!r} is not E.164", file=err)
        return 2
    if args.concurrency < 1 or args.redial < 0 or (args.cps is not None and args.cps <= 0):
        print("aioretell dial: --concurrency and --cps must be positive, --redial >= 0", file=err)
        return 2
    try:
        leads = load_leads(args.leads)
    except LeadFileError as exc:
        print(f"aioretell dial: {exc}", file=err)
        return 2
    return asyncio.run(_dial(args, leads))


async def _dial(args: argparse.Namespace, leads: LeadFile) -> int:
    err = sys.stderr
    key = args.api_key or os.environ.get("RETELL_API_KEY")
    base_url: str | None = args.base_url
    if key is None and base_url is not None:
        print("aioretell dial: --base-url needs --api-key or $RETELL_API_KEY", file=err)
        return 2
    target = IN_PROCESS if key is None else (base_url or DEFAULT_BASE_URL).rstrip("/")
    journal_path: Path = args.journal or args.leads.with_suffix(".journal.db")
    try:
        journal = Journal(journal_path)
    except JournalError as exc:
        print(f"aioretell dial: {exc}", file=err)
        return 2
    with journal:
        info = CampaignInfo(
            campaign_id=new_campaign_id(),
            csv_sha256=leads.sha256,
            csv_name=leads.path.name,
            from_number=args.from_number,
            agent_id=args.agent_id or "",
            target=target,
        )
        try:
            found = journal.campaign()
            info = journal.check_campaign(info)
        except JournalError as exc:
            print(f"aioretell dial: {exc}", file=err)
            return 2
        counts = journal.counts()
        if found is None:
            journal.start(info, leads)
            print(f"Campaign {info.campaign_id}: journal {journal_path}", file=err)
        else:
            shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            print(f"Resuming campaign {info.campaign_id} from {journal_path} ({shown})", file=err)
            if target == IN_PROCESS and (counts.get(j.CREATED) or counts.get(j.DISPATCHING)):
                print(
                    "aioretell dial: this journal's unfinished calls were placed on an "
                    "in-process emulator that is gone; pass a new --journal",
                    file=err,
                )
                return 2
        print_rejected(leads.rejected, err)
        async with _target(key, base_url, err) as (api_key, url):
            return await _campaign(args, journal, info, api_key, url)


@contextlib.asynccontextmanager
async def _target(
    key: str | None, base_url: str | None, err: object
) -> AsyncIterator[tuple[str, str | None]]:
    if key is not None:
        yield key, base_url
        return
    from ..emulator import Emulator, EmulatorConfig

    config = EmulatorConfig(
        api_key=EMULATOR_KEY,
        call_duration_s=EMULATOR_CALL_S,
        concurrency_limit=EMULATOR_CONCURRENCY,
        outcomes_by_suffix=EMULATOR_OUTCOMES,
    )
    async with Emulator(config) as emulator:
        print(
            f"No RETELL_API_KEY and no --base-url: dialling a Retell emulator started in-process "
            f"at {emulator.base_url} (calls last {EMULATOR_CALL_S:g} s, "
            f"{EMULATOR_CONCURRENCY} at most; numbers ending 13 are busy, 37 do not answer, "
            "99 are invalid). No real calls are placed.",
            file=sys.stderr,
        )
        yield EMULATOR_KEY, emulator.base_url


async def _campaign(
    args: argparse.Namespace, journal: Journal, info: CampaignInfo, key: str, url: str | None
) -> int:
    err = sys.stderr
    options = DialOptions(
        from_number=args.from_number,
        agent_id=args.agent_id,
        concurrency=args.concurrency,
        redial=args.redial,
        cps=args.cps,
        redial_delay_s=args.redial_delay,
    )
    stop = asyncio.Event()
    started = time.monotonic()
    views: list[LiveView] = []

    async def live_view(runner: Runner) -> None:
        placed_before = runner.stats.placed

        def snapshot() -> Snapshot:
            stats = runner.stats
            return Snapshot(
                total=stats.total,
                placed=stats.placed,
                ongoing=runner.gate.created_live,
                ended=stats.ended,
                failed=stats.failed,
                elapsed_s=time.monotonic() - started,
                placed_this_run=stats.placed - placed_before,
            )

        view = LiveView(snapshot, stream=err)
        views.append(view)
        await view.run()

    def reconciling(count: int) -> None:
        print(f"Looking up {count} calls whose create may or may not have happened", file=err)

    async with AsyncRetell(
        api_key=key,
        base_url=url,
        create_rate_limit=args.cps,
        max_concurrency=args.concurrency + 2,  # room for the polls beside the creates
        connection_limit=max(100, args.concurrency + 2),
    ) as client:
        _on_interrupt(stop)
        try:
            runner = await run_campaign(
                client,
                journal,
                info.campaign_id,
                options,
                stop=stop,
                poll_interval=args.poll_interval,
                sidecar=live_view,
                on_reconcile=reconciling,
            )
        finally:
            for view in views:
                view.close()
            _restore_interrupt()
    rows = journal.rows()
    elapsed = time.monotonic() - started
    print_summary(
        rows,
        create_ms=runner.stats.create_ms,
        elapsed_s=elapsed,
        placed=len(runner.stats.create_ms),
    )
    if args.out is not None:
        write_ndjson(args.out, rows)
        print(f"Results: {args.out} ({len(rows)} lines)", file=err)
    left = sum(1 for row in rows if not row.terminal)
    if left:
        print(
            f"Stopped with {left} leads not finished; run the same command again to resume.",
            file=err,
        )
        return 130 if stop.is_set() else 1
    return 0


def _on_interrupt(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        if stop.is_set():
            print("\nSecond interrupt: exiting now; the journal is consistent.", file=sys.stderr)
            os._exit(130)
        stop.set()
        print(
            "\nStopping: no new calls; letting the requests in flight finish "
            "(Ctrl-C again to exit at once).",
            file=sys.stderr,
        )

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, interrupted)


def _restore_interrupt() -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signum)
