"""``aioretell dial`` on a campaign shared by many dialers: the options that choose it.

``--journal postgresql://...`` with ``--campaign NAME`` makes the dialer one worker of that
campaign (started on any number of machines); ``--worker-id`` names it (by default the host,
the process and a random tag); ``--redis URL`` paces the workers' other requests through one
:class:`~aioretell.redis_pacer.RedisPacer` namespace named after the campaign.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._redis import check_url, redact_url
from ..redis_pacer import PacerUnavailableError
from .campaign import LEASE_TTL_S
from .errors import UnreachableError
from .journal import Journal, JournalError

if TYPE_CHECKING:
    from .journal_postgres import PostgresJournal

#: Campaign names and worker ids: short, and safe in messages, lock keys and namespaces.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--campaign",
        default=None,
        metavar="NAME",
        help="with --journal postgresql://...: the campaign this dialer works on, shared by "
        "every dialer started with the same journal and name",
    )
    parser.add_argument(
        "--worker-id",
        default=None,
        metavar="ID",
        help="this dialer's name among the campaign's workers (default: host, process id and "
        "a random tag)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=LEASE_TTL_S,
        metavar="SECONDS",
        help="with --journal postgresql://...: how long a worker's claims (and the leader's "
        "lead) last without its heartbeat before another worker takes them over "
        f"(default {LEASE_TTL_S:g})",
    )
    parser.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="pace requests through Redis, shared by every dialer of the campaign "
        '(needs pip install "aioretell[redis]")',
    )


def valid_name(value: str) -> bool:
    """Whether ``value`` may name a campaign or a worker."""
    return _NAME.fullmatch(value) is not None


def is_postgres(journal: str | None) -> bool:
    return journal is not None and journal.startswith(("postgresql://", "postgres://"))


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the shared-campaign options, as one line; ``None`` when nothing."""
    shared = is_postgres(args.journal)
    if not shared and args.journal is not None and "://" in args.journal:
        return f"--journal {args.journal.split('://')[0]}://... is not supported: use a file or postgresql://"
    for option, value in (("--campaign", args.campaign), ("--worker-id", args.worker_id)):
        if value is not None and not valid_name(value):
            return (
                f"{option} {value!r} must be 1 to 64 letters, digits, '_', '.', ':' or '-', "
                "starting with a letter or digit"
            )
    if shared and args.campaign is None:
        return "--journal postgresql://... needs --campaign NAME (the campaign to work on)"
    if not shared and args.campaign is not None:
        return "--campaign names a campaign of a --journal postgresql://... database"
    if not shared and args.worker_id is not None:
        return "--worker-id names one of the workers of a --journal postgresql://... campaign"
    if not 1 <= args.lease_ttl <= 3600:  # NaN too
        return "--lease-ttl must be between 1 and 3600 seconds"
    if args.lease_ttl != LEASE_TTL_S and not shared:
        return "--lease-ttl applies to a --journal postgresql://... campaign"
    if args.redis is not None and not args.redis.startswith(_REDIS_SCHEMES):
        return f"--redis {redact_url(args.redis)!r} is not a redis://, rediss:// or unix:// URL"
    if shared:
        from .journal_postgres import check_dsn

        try:
            check_dsn(args.journal)
        except ImportError:
            return 'a postgresql:// journal needs psycopg: pip install "aioretell[postgres]"'
        except ValueError as exc:
            return f"--journal {exc}"
    if args.redis is not None:
        try:
            check_url(args.redis)
        except ImportError:
            return '--redis needs redis-py: pip install "aioretell[redis]"'
        except ValueError as exc:
            return f"--{exc}"
    return None


def account_of(target: str, api_key: str) -> str:
    """A name for the Retell account behind ``api_key`` at ``target``, shared by the campaigns
    of one database that dial from it. A digest: the key itself is never stored."""
    digest = hashlib.sha256(f"aioretell-account\n{target}\n{api_key}".encode()).hexdigest()
    return f"acct_{digest[:20]}"


def open_journal(args: argparse.Namespace, path: Path, *, target: str, key: str | None) -> Journal:
    """The journal ``--journal`` names: the SQLite file ``path``, or a campaign of a
    PostgreSQL database (``key`` is then required: it names the account)."""
    if is_postgres(args.journal):
        assert key is not None
        # psycopg warns when a query is cancelled as the run stops (its connection is then
        # discarded); that is how every run ends, not news for the user.
        logging.getLogger("psycopg").setLevel(logging.ERROR)
        return shared_journal(args, account=account_of(target, key))
    from .journal_sqlite import SQLiteJournal

    return SQLiteJournal(path)


def shared_journal(args: argparse.Namespace, *, account: str) -> PostgresJournal:
    from .journal_postgres import PostgresJournal

    return PostgresJournal(
        args.journal, campaign=args.campaign, account=account, worker_id=args.worker_id
    )


class Pacing:
    """How the dialer's client is paced, as an async context that closes what it opened.

    A single dialer: the client's own pacer (``--cps``, adaptive without it), or a
    :class:`~aioretell.redis_pacer.RedisPacer` with ``--redis``. A worker of a shared campaign:
    the same, wrapped so each 429 its client receives pauses every worker (the journal
    spaces the creates by ``--cps`` on the database clock).
    """

    def __init__(self, args: argparse.Namespace, campaign_id: str, *, shared: bool) -> None:
        from .._pacing import Pacer

        self._args = args
        self._redis: Any = None
        if args.redis is not None:
            from ..redis_pacer import RedisPacer

            # A shared campaign's journal decides every create (rate, live calls, the 429
            # pause) on PostgreSQL, so Redis down costs it only the polls' shared pacing: they
            # are paced inside each worker meanwhile instead of stopping the campaign. A lone
            # dialer's creates are paced by Redis alone: that one fails closed.
            self._redis = RedisPacer(
                args.redis,
                namespace=f"aioretell:dial:{campaign_id}",
                create_rate_limit=args.cps,
                on_unavailable="local" if shared else "fail",
            )
        self.pause: Any = None
        self.client_options: dict[str, Any]
        if not shared:
            self.client_options = (
                {"pacer": self._redis}
                if self._redis is not None
                else {
                    "create_rate_limit": args.cps,
                    # room for the polls beside the creates
                    "max_concurrency": args.concurrency + 2,
                }
            )
            return
        from .worker import ReportingPacer, SharedPause

        inner = self._redis or Pacer(
            rate_limit=None, create_rate_limit=args.cps, max_concurrency=args.concurrency + 4
        )
        self.pause = SharedPause()
        self.client_options = {"pacer": ReportingPacer(inner, self.pause)}

    async def __aenter__(self) -> Pacing:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def run_shared(
        self,
        client: Any,
        journal: Journal,
        campaign_id: str,
        options: Any,
        **kwargs: Any,
    ) -> Any:
        """:func:`~aioretell.dial.worker.run_worker` with this dialer's options."""
        from .journal_postgres import PostgresJournal
        from .worker import run_worker

        assert isinstance(journal, PostgresJournal)
        args = self._args
        if self._redis is not None:
            # A wrong --redis is one line at the start, though the run would carry on without.
            try:
                await self._redis.check()
            except PacerUnavailableError as exc:
                raise UnreachableError(str(exc)) from None
        return await run_worker(
            client,
            journal,
            campaign_id,
            options,
            cps=args.cps,
            poll_interval=args.poll_interval,
            reconcile_interval=args.reconcile_interval,
            lease_ttl_s=args.lease_ttl,
            heartbeat_s=args.lease_ttl / 6,
            pause=self.pause,
            notify=lambda line: print(line, file=sys.stderr),
            **kwargs,
        )


__all__ = [
    "JournalError",
    "account_of",
    "add_arguments",
    "is_postgres",
    "open_journal",
    "Pacing",
    "usage_problem",
]
