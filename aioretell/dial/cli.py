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

from .._cli_args import UsageError, http_url, integer, non_empty, number, seconds, text_encoding
from .._client import DEFAULT_BASE_URL, AsyncRetell
from . import journal as j
from . import options
from .campaign import run_campaign
from .confirm import Plan, confirm
from .journal import CampaignInfo, Journal, JournalError
from .leads import LeadFile, LeadFileError, load_leads
from .listen import WebhookFollower, parse_listen
from .options import IN_PROCESS, Server
from .reconcile import new_campaign_id
from .report import LiveView, Snapshot, print_rejected, print_summary, write_ndjson
from .runner import DialOptions, Runner
from .watch import Watcher

EMULATOR_KEY = "key_dial_emulator"
#: Upper bounds of the numeric options: beyond them a value is a typo, not a plan.
MAX_CPS = 1_000.0
MAX_CONCURRENCY = 1_000
MAX_REDIAL = 100
#: The in-process emulator: short calls, room for a few hundred at once, and a few numbers
#: with a fixed outcome so the summary shows more than hang-ups.
EMULATOR_CALL_S = 2.0
EMULATOR_CONCURRENCY = 300
EMULATOR_OUTCOMES = (("13", "dial_busy"), ("37", "dial_no_answer"), ("99", "invalid_destination"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Call every lead of a CSV once, crash-safe: each lead is a row of a journal, so running "
        "the same command again resumes the campaign and dials nobody twice. With no API key "
        "(no --api-key, no $RETELL_API_KEY) it dials a Retell emulator started in-process and "
        "places no real call; with a key it says what it is about to dial and asks first."
    )
    parser.add_argument(
        "leads",
        type=Path,
        metavar="LEADS.csv",
        help="a phone_number (or to_number) column; every other column becomes a dynamic variable",
    )
    parser.add_argument(
        "--from-number", required=True, type=non_empty, help="your Retell number, E.164"
    )
    parser.add_argument(
        "--agent-id", default=None, type=non_empty, help="override the number's outbound agent"
    )
    parser.add_argument(
        "--cps",
        type=number(0, MAX_CPS, above_low=True),
        default=None,
        help="creates per second (default: as fast as 429s allow)",
    )
    parser.add_argument(
        "--concurrency",
        type=integer(1, MAX_CONCURRENCY),
        default=20,
        metavar="N",
        help="create requests in flight at most (default: %(default)s)",
    )
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        help="the campaign's journal (default: LEADS.journal.db beside the CSV)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write one NDJSON line per lead here at the end"
    )
    parser.add_argument(
        "--encoding",
        type=text_encoding,
        default=None,
        help="the CSV's encoding, e.g. cp1252 for a Windows/Excel export (default: UTF-8)",
    )
    parser.add_argument(
        "--base-url",
        type=http_url,
        default=None,
        help="the Retell API to dial through (default: $RETELL_BASE_URL, else "
        f"{DEFAULT_BASE_URL}); needs a key",
    )
    parser.add_argument(
        "--api-key",
        type=non_empty,
        default=None,
        help="default: $RETELL_API_KEY; none means the in-process emulator (no real calls)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="dial a real server without asking (required when stdin is not a terminal)",
    )
    parser.add_argument(
        "--redial",
        type=integer(0, MAX_REDIAL),
        default=0,
        metavar="N",
        help="redial busy/no-answer up to N times (default: %(default)s)",
    )
    parser.add_argument(
        "--redial-delay",
        type=seconds(allow_zero=True),
        default=60.0,
        metavar="SECONDS",
        help="wait before a redial (default: %(default)g)",
    )
    parser.add_argument(
        "--poll-interval",
        type=seconds(),
        default=1.0,
        metavar="SECONDS",
        help="how often to read get-concurrency and look for ended calls (default: %(default)g)",
    )
    parser.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help="learn call ends from webhooks served here (path /retell-webhook) instead of "
        "polling list-calls; Retell must be able to reach it",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=seconds(),
        default=30.0,
        metavar="SECONDS",
        help="with --listen: how often list-calls is still polled for lost webhooks "
        "(default: %(default)g)",
    )


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        options.check(args)
        server = options.choose_server(args)
        leads = load_leads(args.leads, args.encoding)
    except (UsageError, LeadFileError) as exc:
        print(f"aioretell dial: {exc}", file=err)
        return 2
    if not server.in_process:
        journal_path = options.default_journal(args)
        plan = Plan(
            server=server.target,
            leads=len(leads.leads),
            csv_name=leads.path.name,
            from_number=args.from_number,
            agent_id=args.agent_id,
            redial=args.redial,
            resuming=journal_path if journal_path.exists() else None,
        )
        stop = confirm(plan, yes=args.yes, stdin=sys.stdin, stream=err)
        if stop is not None:
            return stop
    return asyncio.run(_dial(args, leads, server))


async def _dial(args: argparse.Namespace, leads: LeadFile, server: Server) -> int:
    err = sys.stderr
    key, base_url, target = server.key, server.base_url, server.target
    journal_path = options.default_journal(args)
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
        if args.listen is None:
            async with _target(key, base_url, None) as (api_key, url):
                print(
                    f"Following calls by polling list-calls every {args.poll_interval:g} s "
                    "(--listen HOST:PORT to follow them from webhooks instead)",
                    file=err,
                )
                return await _campaign(args, journal, info, api_key, url, None)
        host, port = parse_listen(args.listen)
        follower = WebhookFollower(key or EMULATOR_KEY, info.campaign_id, host, port)
        try:
            await follower.start()
        except OSError as exc:
            print(f"aioretell dial: cannot listen on {args.listen}: {exc}", file=err)
            return 2
        try:
            async with _target(key, base_url, follower.local_url) as (api_key, url):
                _print_webhook_mode(follower, args.reconcile_interval, in_process=key is None)
                return await _campaign(args, journal, info, api_key, url, follower)
        finally:
            await follower.stop()


def _print_webhook_mode(follower: WebhookFollower, interval: float, *, in_process: bool) -> None:
    err = sys.stderr
    print(
        f"Following calls from webhooks received at {follower.url} (list-calls polled every "
        f"{interval:g} s, and when only open calls are left and none ends for a while, as a "
        "safety net for lost webhooks)",
        file=err,
    )
    if in_process:
        print(f"The in-process emulator delivers its webhooks to {follower.local_url}", file=err)
    else:
        print(
            f"Set the webhook URL of your Retell agent (or account) to {follower.url}, or to a "
            "public URL that forwards to it: Retell must be able to reach it over the internet. "
            f"Webhooks are verified with the API key; calls whose end no webhook reports are "
            f"found by the list-calls safety net within {interval:g} s.",
            file=err,
        )


@contextlib.asynccontextmanager
async def _target(
    key: str | None, base_url: str | None, webhook_url: str | None
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
        webhook_url=webhook_url,
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
    args: argparse.Namespace,
    journal: Journal,
    info: CampaignInfo,
    key: str,
    url: str | None,
    follower: WebhookFollower | None,
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

    watchers: list[Watcher] = []
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
                follower=follower,
                reconcile_interval=args.reconcile_interval,
                watchers=watchers,
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
    _print_follow_summary(runner, watchers, follower)
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


def _print_follow_summary(
    runner: Runner, watchers: list[Watcher], follower: WebhookFollower | None
) -> None:
    via = runner.stats.ends_via
    polls = sum(watcher.requests for watcher in watchers)
    parts = []
    if follower is not None:
        parts.append(f"{via.get('webhook', 0)} from webhooks")
    requests = "1 request" if polls == 1 else f"{polls} requests"
    parts.append(f"{via.get('poll', 0)} from list-calls polls ({requests})")
    if via.get("create"):
        parts.append(f"{via['create']} already ended when created")
    line = "Call ends learnt: " + ", ".join(parts)
    if follower is not None:
        line += f"; {follower.received} webhook events for this campaign"
        if follower.foreign:
            line += f", {follower.foreign} for other calls ignored"
    print(line)
    if follower is not None and follower.received == 0 and via.get("poll", 0) > 0:
        print(
            f"No webhook reached {follower.url}: every end came from the safety-net polls. "
            "Check the webhook URL configured in Retell and that it reaches this address.",
            file=sys.stderr,
        )


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
