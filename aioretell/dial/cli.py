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
from . import options, shared_cli
from .campaign import run_campaign
from .confirm import Plan, confirm
from .emulated import (
    EMULATOR_CALL_S,
    EMULATOR_CONCURRENCY,
    EMULATOR_KEY,
    IN_PROCESS,
    in_process_emulator,
    record_path,
)
from .errors import CampaignError
from .journal import CampaignInfo, Journal, JournalError, JournalUnavailableError, Opened
from .leads import LeadFile, LeadFileError, load_leads
from .listen import WebhookFollower, parse_listen
from .options import Server
from .reconcile import new_campaign_id
from .report import LiveView, Snapshot, print_rejected, print_summary, write_ndjson
from .runner import LOOKUP_GRACE_S, DialOptions, Runner
from .watch import Watcher

#: Upper bounds of the numeric options: beyond them a value is a typo, not a plan.
MAX_CPS = 1_000.0
MAX_CONCURRENCY = 1_000
MAX_REDIAL = 100
#: The idempotency key lasts an hour: a lookup grace beyond 50 minutes could outlive it.
MAX_LOOKUP_GRACE_S = 3_000.0


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
        type=non_empty,
        default=None,
        help="the campaign's journal: a file (default: LEADS.journal.db beside the CSV), or "
        "postgresql://... with --campaign to share the campaign with other dialers",
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
    parser.add_argument(
        "--lookup-grace",
        type=number(0, MAX_LOOKUP_GRACE_S),
        default=LOOKUP_GRACE_S,
        metavar="SECONDS",
        help="how long a create that may have placed a call is looked for by list-calls "
        f"before it is sent again, with the same idempotency key (default {LOOKUP_GRACE_S:g})",
    )
    shared_cli.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    problem = shared_cli.usage_problem(args)
    if problem is not None:
        print(f"aioretell dial: {problem}", file=err)
        return 2
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
    if key is None and shared_cli.is_postgres(args.journal):
        print(
            "aioretell dial: a postgresql:// journal shares a campaign of a real account (or of "
            "an emulator at --base-url) between dialers: set --api-key or $RETELL_API_KEY",
            file=err,
        )
        return 2
    try:
        journal = shared_cli.open_journal(args, journal_path, target=target, key=key)
    except JournalError as exc:
        print(f"aioretell dial: {exc}", file=err)
        return 2
    async with journal:
        info = CampaignInfo(
            campaign_id=new_campaign_id(),
            csv_sha256=leads.sha256,
            csv_name=leads.path.name,
            from_number=args.from_number,
            agent_id=args.agent_id or "",
            target=target,
        )
        try:
            dead = await journal.acquire_lease(ttl_s=args.lease_ttl)  # --lease-ttl, 30 s default
        except JournalError as exc:  # held by another dialer, or the database is unreachable
            print(f"aioretell dial: {exc}", file=err)
            return 1
        try:
            if dead is not None:
                print(
                    f"Took the journal over from a dialer that stopped without releasing it "
                    f"(pid {dead.pid} on {dead.host})",
                    file=err,
                )
            try:
                opened = await journal.open_campaign(info, leads)
            except JournalError as exc:
                print(f"aioretell dial: {exc}", file=err)
                return 1 if isinstance(exc, JournalUnavailableError) else 2
            info = opened.info
            record = record_path(journal_path) if target == IN_PROCESS else None
            refusal = await _report_opened(journal, opened, leads, record)
            if refusal is not None:
                print(f"aioretell dial: {refusal}", file=err)
                return 2
            print_rejected(leads.rejected, err)
            fresh = opened.new
            if args.listen is None:
                async with _target(key, base_url, None, journal_path, fresh) as (api_key, url):
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
                async with _target(key, base_url, follower.local_url, journal_path, fresh) as (
                    api_key,
                    url,
                ):
                    _print_webhook_mode(follower, args.reconcile_interval, in_process=key is None)
                    return await _campaign(args, journal, info, api_key, url, follower)
            finally:
                await follower.stop()
        except JournalError as exc:  # the in-process emulator's record, or the database
            print(f"aioretell dial: {exc}", file=err)
            return 1 if isinstance(exc, JournalUnavailableError) else 2
        finally:
            await journal.release_lease()


async def _report_opened(
    journal: Journal, opened: Opened, leads: LeadFile, record: Path | None
) -> str | None:
    """Say what the run starts from; a reason to refuse it, or ``None``. ``record``: the
    in-process emulator's record, when the campaign's calls are placed there."""
    err = sys.stderr
    info, path = opened.info, journal.where
    if opened.new:
        print(f"Campaign {info.campaign_id}: journal {path}", file=err)
        return None
    counts = await journal.counts()
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"Resuming campaign {info.campaign_id} from {path} ({shown})", file=err)
    changes = opened.changes
    if changes is not None:
        print(
            f"{leads.path.name} is not the file of the last run: {changes.added} new leads "
            f"added to the campaign; {changes.known} it already had are left as they are (none "
            "is dialled again)"
            + (
                f"; {changes.missing} leads of the campaign are not in this file and stay in it"
                if changes.missing
                else ""
            ),
            file=err,
        )
    unfinished = counts.get(j.CREATED, 0) + counts.get(j.DISPATCHING, 0)
    if record is not None and unfinished and _missing(record):
        return (
            f"the in-process emulator's record {record} is missing, so the {unfinished} "
            "unfinished calls it placed cannot be followed; put the file back to resume (they "
            "were emulated calls: deleting the journal starts over, and no real call is placed)"
        )
    return None


def _missing(path: Path) -> bool:
    return not path.exists()


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
    key: str | None, base_url: str | None, webhook_url: str | None, journal: Path, fresh: bool
) -> AsyncIterator[tuple[str, str | None]]:
    if key is not None:
        yield key, base_url
        return
    async with in_process_emulator(
        record_path(journal), webhook_url=webhook_url, fresh=fresh
    ) as emulator:
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
        redial_delay_s=args.redial_delay,
        # The in-process emulator's list-calls is current: nothing to wait for.
        lookup_grace_s=0.0 if info.target == IN_PROCESS else args.lookup_grace,
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
                retries=stats.retries,
                errors=stats.errors,
                last_error=stats.last_error,
                last_error_at=stats.last_error_at,
                looking_up=runner.looking_up,
            )

        view = LiveView(snapshot, stream=err)
        views.append(view)
        await view.run()

    def reconciling(count: int) -> None:
        print(f"Looking up {count} calls whose create may or may not have happened", file=err)

    watchers: list[Watcher] = []
    pacing = shared_cli.Pacing(args, info.campaign_id, shared=journal.shared)
    async with (
        pacing,
        AsyncRetell(
            api_key=key,
            base_url=url,
            connection_limit=max(100, args.concurrency + 2),
            **pacing.client_options,
        ) as client,
    ):
        _on_interrupt(stop)
        try:
            runner = (
                await pacing.run_shared(
                    client,
                    journal,
                    info.campaign_id,
                    options,
                    stop=stop,
                    sidecar=live_view,
                    follower=follower,
                    watchers=watchers,
                )
                if journal.shared
                else await run_campaign(
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
            )
        except (CampaignError, JournalError) as exc:
            for view in views:
                view.close()
            try:
                unfinished = str(sum(1 for row in await journal.rows() if not row.terminal))
            except JournalError:  # the journal's database is what failed
                unfinished = "The"
            print(
                f"aioretell dial: {exc}. {unfinished} leads are not finished (none was marked "
                "failed for this): run the same command again once this is fixed.",
                file=err,
            )
            return 1
        finally:
            for view in views:
                view.close()
            _restore_interrupt()
    rows = await journal.rows()
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
