"""``aioretell campaign``: a campaign as a whole, whichever dialers work on it.

Leads by state and outcome, live calls, the recent rate, and the workers with their last
heartbeat (the leader marked), read from the journal: a SQLite file or a campaign of a
PostgreSQL database. ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

from . import journal as j
from .journal import CampaignStatus, JournalError, JournalUnavailableError
from .shared_cli import is_postgres, valid_name

#: Seconds the rate is measured over.
WINDOW_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--journal",
        required=True,
        help="the campaign's journal: a file, or postgresql://... with --campaign",
    )
    parser.add_argument("--campaign", default=None, metavar="NAME", help="with postgresql://")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    shared = is_postgres(args.journal)
    if shared and args.campaign is None:
        print("aioretell campaign: --journal postgresql://... needs --campaign NAME", file=err)
        return 2
    if not shared and args.campaign is not None:
        print(
            "aioretell campaign: --campaign names a campaign of a postgresql:// journal", file=err
        )
        return 2
    if args.campaign is not None and not valid_name(args.campaign):
        print(f"aioretell campaign: --campaign {args.campaign!r} is not a campaign name", file=err)
        return 2
    if shared:
        from .journal_postgres import check_dsn

        try:
            check_dsn(args.journal)
        except ImportError:
            print(
                "aioretell campaign: a postgresql:// journal needs psycopg: "
                'pip install "aioretell[postgres]"',
                file=err,
            )
            return 2
        except ValueError as exc:
            print(f"aioretell campaign: --journal {exc}", file=err)
            return 2
    elif not Path(args.journal).is_file():
        print(f"aioretell campaign: {args.journal}: no such journal file", file=err)
        return 2
    try:
        status = asyncio.run(_read(args))
    except JournalUnavailableError as exc:
        print(f"aioretell campaign: {exc}", file=err)
        return 1
    except JournalError as exc:
        print(f"aioretell campaign: {exc}", file=err)
        return 2
    if status is None:
        what = f"campaign {args.campaign!r}" if shared else "campaign"
        print(f"aioretell campaign: {args.journal} holds no {what}", file=err)
        return 1
    if args.json:
        sys.stdout.write(msgspec.json.encode(_as_json(status)).decode() + "\n")
    else:
        print(render(status))
    return 0


async def _read(args: argparse.Namespace) -> CampaignStatus | None:
    if is_postgres(args.journal):
        from .journal_postgres import PostgresJournal

        async with PostgresJournal(args.journal, campaign=args.campaign) as journal:
            return await journal.status(window_s=WINDOW_S)
    from .journal_sqlite import SQLiteJournal

    async with SQLiteJournal(Path(args.journal)) as opened:
        return await opened.status(window_s=WINDOW_S)


def _as_json(status: CampaignStatus) -> dict[str, Any]:
    info = status.info
    return {
        "campaign_id": info.campaign_id,
        "journal": status.where,
        "from_number": info.from_number,
        "agent_id": info.agent_id or None,
        "target": info.target,
        "leads": sum(n for s, n in status.states.items() if s != j.REJECTED),
        "states": status.states,
        "outcomes": status.outcomes,
        "live": status.live,
        "creates_per_s": status.recent_creates / status.window_s,
        "paused_for_s": _paused_for(status),
        "concurrency_limit": status.concurrency_limit,
        "workers": [
            {
                "worker_id": w.worker_id,
                "host": w.host,
                "pid": w.pid,
                "leader": w.leader,
                "placed": w.placed,
                "started_at": w.started_at,
                "heartbeat_s_ago": max(0.0, status.now - w.heartbeat_at),
                "stopped_at": w.stopped_at,
            }
            for w in status.workers
        ],
    }


def _paused_for(status: CampaignStatus) -> float:
    if status.paused_until is None:
        return 0.0
    return max(0.0, status.paused_until - status.now)


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(status: CampaignStatus) -> str:
    """The status as lines of text."""
    info = status.info
    states = status.states
    leads = sum(n for s, n in states.items() if s != j.REJECTED)
    order = (j.ENDED, j.FAILED, j.CREATED, j.DISPATCHING, j.PENDING, j.REJECTED)
    by_state = ", ".join(f"{states.get(s, 0)} {s}" for s in order if states.get(s, 0))
    lines = [
        f"Campaign {info.campaign_id}: {status.where}",
        f"  from {info.from_number}"
        + (f", agent {info.agent_id}" if info.agent_id else "")
        + f", dialling {info.target}",
        f"Leads: {leads} ({by_state or 'none'})",
    ]
    finished = sum(states.get(s, 0) for s in (j.ENDED, j.FAILED))
    if leads and finished == leads:
        lines[-1] += "; the campaign is finished"
    if status.outcomes:
        shown = sorted(status.outcomes.items(), key=lambda item: (-item[1], item[0]))
        lines.append("Outcomes: " + ", ".join(f"{name} {n}" for name, n in shown))
    live = f"Live calls: {status.live}"
    if status.concurrency_limit is not None:
        live += f" (account concurrency limit {status.concurrency_limit})"
    paused = _paused_for(status)
    if paused:
        live += f"; creates paused for {paused:.1f} s more after a 429"
    lines.append(live)
    rate = status.recent_creates / status.window_s
    lines.append(f"Rate: {rate:.2f} calls/s over the last {status.window_s:g} s")
    lines.append(f"Workers: {len(status.workers)}")
    for worker in status.workers:
        if worker.stopped_at is not None:
            state = f"stopped {_clock(worker.stopped_at)}"
        else:
            ago = max(0.0, status.now - worker.heartbeat_at)
            state = f"last heartbeat {ago:.0f} s ago"
        role = " (leader)" if worker.leader else ""
        lines.append(
            f"  {worker.worker_id}{role}: pid {worker.pid} on {worker.host}, started "
            f"{_clock(worker.started_at)}, {worker.placed} calls placed, {state}"
        )
    return "\n".join(lines)
