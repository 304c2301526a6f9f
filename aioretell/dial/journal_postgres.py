"""The campaign journal in PostgreSQL: one campaign shared by any number of dialers.

Each dialer is a *worker* of the campaign (its own row in ``aioretell_workers``, with a
heartbeat); several work on one campaign at once. What SQLite does with one exclusive lease,
this journal does row by row:

- a claim (pending -> dispatching) gives the row an owner, a fresh claim token and a lease
  (``lease_until``, on the database clock), renewed by the owner's heartbeat while its create
  or lookup lasts; every later write of that dispatching row must carry the token (a fence),
  so a worker that lost the row (frozen past its lease, reconciled by another) records
  nothing and learns :class:`~aioretell.dial.journal.ClaimLostError`;
- the moves of a created call (ended, requeued) are fenced by its ``call_id`` and state, so
  whoever learns the end first (the leader's poll, any worker's webhook) applies it once;
- :meth:`PostgresJournal.admit` is the one admission transaction of every create (see its
  docstring), and :mod:`.leader` holds the session advisory lock of the campaign's leader.

Every statement is here (the dialer writes no SQL). Tables are created in the connection's
``search_path`` schema (``?options=-csearch_path%3Dmy_schema`` in the URL picks another one),
with their names prefixed ``aioretell_``. Advisory lock keys hash the schema, so campaigns of
two schemas never share a lock. Needs ``pip install "aioretell[postgres]"``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import secrets
import socket
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .journal import (
    CREATED,
    DISPATCHING,
    ENDED,
    PENDING,
    REJECTED,
    ROW_FIELDS,
    CampaignInfo,
    CampaignStatus,
    ClaimLostError,
    Journal,
    JournalError,
    JournalUnavailableError,
    LeadChanges,
    LeaseHeldError,
    LeaseHolder,
    LeaseLostError,
    NewRefs,
    Opened,
    Row,
    TransitionError,
    Wait,
    WorkerInfo,
    campaign_problems,
    lead_changes,
    process_alive,
    stored_row,
)
from .leads import LeadFile

if TYPE_CHECKING:
    from psycopg import AsyncConnection, AsyncCursor
    from psycopg.rows import DictRow
    from psycopg_pool import AsyncConnectionPool

SCHEMA_VERSION = "1"
#: Seconds a claim lasts without its owner's heartbeat.
CLAIM_TTL_S = 30.0
#: Connections of one worker's pool (the leader's lock connection is apart).
POOL_SIZE = 4
CONNECT_TIMEOUT_S = 5
#: Seconds a session may sit inside a transaction doing nothing before the server ends it
#: (ours take milliseconds).
IDLE_IN_TRANSACTION_S = 10
#: A pooled connection idle longer than this is checked (an empty query) before it is used;
#: one used more recently is not (a round trip saved on every call of a busy worker): if it
#: broke since, its next statement fails as one that breaks mid-statement does.
CHECK_IDLE_S = 1.0

_DDL = """
CREATE TABLE IF NOT EXISTS aioretell_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aioretell_accounts (
    account TEXT PRIMARY KEY,
    paused_until TIMESTAMPTZ,
    tat TIMESTAMPTZ,
    concurrency_limit INTEGER,
    reserved_inbound INTEGER,
    others INTEGER,
    read_at TIMESTAMPTZ,
    current_concurrency INTEGER,
    read_requested_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS aioretell_campaigns (
    name TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL REFERENCES aioretell_accounts,
    csv_sha256 TEXT NOT NULL,
    csv_name TEXT NOT NULL,
    from_number TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    target TEXT NOT NULL,
    leader TEXT,
    leader_since TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS aioretell_leads (
    campaign TEXT NOT NULL REFERENCES aioretell_campaigns ON DELETE CASCADE,
    ref TEXT NOT NULL,
    line INTEGER NOT NULL,
    to_number TEXT,
    variables JSONB NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    requeues INTEGER NOT NULL DEFAULT 0,
    redials INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    not_before DOUBLE PRECISION NOT NULL DEFAULT 0,
    dispatched_at DOUBLE PRECISION,
    placed BOOLEAN NOT NULL DEFAULT false,
    call_id TEXT,
    call_status TEXT,
    disconnection_reason TEXT,
    reason TEXT,
    create_ms DOUBLE PRECISION,
    owner TEXT,
    claim_token TEXT,
    lease_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (campaign, ref)
);
CREATE UNIQUE INDEX IF NOT EXISTS aioretell_leads_number
    ON aioretell_leads (campaign, to_number) WHERE state <> 'rejected';
CREATE INDEX IF NOT EXISTS aioretell_leads_due
    ON aioretell_leads (campaign, state, not_before, line);
CREATE INDEX IF NOT EXISTS aioretell_leads_call
    ON aioretell_leads (call_id) WHERE call_id IS NOT NULL;
-- Live calls (leads dispatching or created) per campaign, kept by a trigger (see _LIVE_DDL).
CREATE TABLE IF NOT EXISTS aioretell_live (
    campaign TEXT NOT NULL,
    slot SMALLINT NOT NULL,
    calls BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, slot)
);
CREATE TABLE IF NOT EXISTS aioretell_workers (
    campaign TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    token TEXT,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    stopped_at TIMESTAMPTZ,
    placed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, worker_id)
);
"""

_ROW_COLUMNS = ", ".join((*ROW_FIELDS, "claim_token"))

#: Columns added to an existing schema when it is opened (schema 1 started without them).
_ADDED_COLUMNS = {
    "aioretell_accounts": (
        ("current_concurrency", "INTEGER"),
        ("read_requested_at", "TIMESTAMPTZ"),
    ),
}

#: The admission function's name carries its version: a schema without it gets it (and the
#: live-call trigger it relies on) when first opened by this code; workers still running older
#: code keep calling theirs.
ADMIT_FUNCTION = "aioretell_admit_v1"
_ADMIT_CALL = f"SELECT * FROM {ADMIT_FUNCTION}(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)".encode()

#: Sent after an admission that claimed a lead: a transaction that writes the write-ahead log
#: (a message for logical decoding, which nothing reads) and so commits durably: the log is on
#: disk past the admission's commit before the claim is used. (A transaction that writes no
#: log does not wait for the disk.)
_DURABLE = b"SELECT pg_logical_emit_message(true, 'aioretell', '')"

_LIVE = f"('{DISPATCHING}', '{CREATED}')"

#: Slots of ``aioretell_live`` that count calls leaving the live states, one picked per session.
_OUT_SLOTS = 8

#: ``aioretell_live`` counts each campaign's leads dispatching or created, so the admission reads
#: a number instead of counting rows (thousands of them when claims pile up). A trigger keeps
#: it in the transaction of every change (whoever writes it, old code included); installing
#: the trigger locks the leads against writes until the recount below commits with it. Slot 0
#: counts leads entering (claims: one admission at a time), slots 1 to _OUT_SLOTS leads leaving
#: (negative), so an admission never waits for the commit of a call's end to count its claim.
_LIVE_DDL = f"""
CREATE OR REPLACE FUNCTION aioretell_count_live() RETURNS trigger LANGUAGE plpgsql AS $live$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.state IN {_LIVE} THEN
        INSERT INTO aioretell_live AS v (campaign, slot, calls)
        VALUES (OLD.campaign, 1 + pg_backend_pid() % {_OUT_SLOTS}, -1)
        ON CONFLICT (campaign, slot) DO UPDATE SET calls = v.calls - 1;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.state IN {_LIVE} THEN
        INSERT INTO aioretell_live AS v (campaign, slot, calls) VALUES (NEW.campaign, 0, 1)
        ON CONFLICT (campaign, slot) DO UPDATE SET calls = v.calls + 1;
    END IF;
    RETURN NULL;
END
$live$;
DROP TRIGGER IF EXISTS aioretell_live_insert ON aioretell_leads;
DROP TRIGGER IF EXISTS aioretell_live_update ON aioretell_leads;
DROP TRIGGER IF EXISTS aioretell_live_delete ON aioretell_leads;
CREATE TRIGGER aioretell_live_insert AFTER INSERT ON aioretell_leads
    FOR EACH ROW WHEN (NEW.state IN {_LIVE}) EXECUTE FUNCTION aioretell_count_live();
CREATE TRIGGER aioretell_live_update AFTER UPDATE OF state, campaign ON aioretell_leads
    FOR EACH ROW WHEN ((OLD.state IN {_LIVE}) <> (NEW.state IN {_LIVE})
        OR OLD.campaign <> NEW.campaign)
    EXECUTE FUNCTION aioretell_count_live();
CREATE TRIGGER aioretell_live_delete AFTER DELETE ON aioretell_leads
    FOR EACH ROW WHEN (OLD.state IN {_LIVE}) EXECUTE FUNCTION aioretell_count_live();
DELETE FROM aioretell_live;
INSERT INTO aioretell_live (campaign, slot, calls)
    SELECT c.name, 0, COUNT(l.ref) FROM aioretell_campaigns c
    LEFT JOIN aioretell_leads l ON l.campaign = c.name AND l.state IN {_LIVE}
    GROUP BY c.name;
"""

#: The whole admission of :meth:`PostgresJournal.admit` as one server-side call: one round trip
#: and no client in the middle of the account's lock (the lock is held for the function's
#: run and its commit alone, and a client frozen mid-call cannot keep it).
_ADMIT_DDL = """
CREATE OR REPLACE FUNCTION {name}(
    p_account TEXT, p_campaign TEXT, p_worker TEXT, p_token TEXT, p_now DOUBLE PRECISION,
    p_interval DOUBLE PRECISION, p_cap BIGINT, p_recheck DOUBLE PRECISION,
    p_pause DOUBLE PRECISION, p_lease DOUBLE PRECISION)
RETURNS TABLE (
    wait_s DOUBLE PRECISION, why TEXT, ref TEXT, line INTEGER, to_number TEXT, variables JSONB,
    state TEXT, attempt INTEGER, requeues INTEGER, redials INTEGER, retries INTEGER,
    not_before DOUBLE PRECISION, dispatched_at DOUBLE PRECISION, placed BOOLEAN, call_id TEXT,
    call_status TEXT, disconnection_reason TEXT, reason TEXT, create_ms DOUBLE PRECISION,
    claim_token TEXT)
LANGUAGE plpgsql AS $admit$
#variable_conflict use_column
DECLARE
    acct aioretell_accounts%ROWTYPE;
    db_now TIMESTAMPTZ;
    turn TIMESTAMPTZ;
    live_campaign BIGINT;
    live_account BIGINT;
    known_campaign BIGINT;
    known_account BIGINT;
    total BIGINT;
    due DOUBLE PRECISION;
BEGIN
    -- Committed without waiting for the disk, so the account's lock is not held meanwhile:
    -- the caller's next transaction (_DURABLE) waits for it before using a claim.
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(hashtextextended(
        current_schema() || ':account:' || p_account, 0));
    IF p_pause > 0 THEN
        UPDATE aioretell_accounts SET paused_until = GREATEST(paused_until,
            clock_timestamp() + make_interval(secs => p_pause)) WHERE account = p_account;
    END IF;
    SELECT * INTO acct FROM aioretell_accounts WHERE account = p_account;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the campaign has not been opened';
    END IF;
    db_now := clock_timestamp();
    IF acct.paused_until > db_now THEN
        wait_s := EXTRACT(EPOCH FROM acct.paused_until - db_now);
        why := 'paused after a 429';
        RETURN NEXT;
        RETURN;
    END IF;
    -- GCRA without burst: the next turn is the stored one, or now if that has passed.
    turn := GREATEST(COALESCE(acct.tat, db_now), db_now);
    IF p_interval > 0 AND turn > db_now THEN
        wait_s := EXTRACT(EPOCH FROM turn - db_now);
        why := 'calls per second';
        RETURN NEXT;
        RETURN;
    END IF;
    -- Live calls, from above (other traffic is taken not to grow after a reading).
    -- The journal: every lead dispatching or created may hold a slot (live_*).
    -- The leader's reading: current_concurrency counts every live call of the account Retell
    -- had, ours and others alike; a call of ours it may have missed is one not recorded
    -- created before the reading was requested (known_*: those that were, still open), so
    -- current + live - known bounds all live calls, each counted once.
    -- The campaign takes the smaller of the two. The account must add other traffic to the
    -- journal's count: from the same reading that is current - known_account, which gives
    -- the reading's bound again. (Others estimated once, at the reading, would come out low
    -- by each call of known that had ended at Retell before it, once the journal learns so.)
    -- A reading that does not say when it was requested knows no call of ours to be in it:
    -- the account counts the journal's calls plus the others it estimated (see
    -- record_reading). So a call that ends at Retell frees its slot with the next reading,
    -- before the journal learns it ended; one created after the reading, when it learns so.
    SELECT COALESCE(SUM(v.calls) FILTER (WHERE v.campaign = p_campaign), 0),
        COALESCE(SUM(v.calls), 0)
      INTO live_campaign, live_account
      FROM aioretell_live v JOIN aioretell_campaigns c ON c.name = v.campaign
      WHERE c.account = p_account;
    total := live_account + COALESCE(acct.others, 0);
    IF acct.read_requested_at IS NOT NULL AND acct.current_concurrency IS NOT NULL THEN
        SELECT COUNT(*) FILTER (WHERE l.campaign = p_campaign), COUNT(*)
          INTO known_campaign, known_account
          FROM aioretell_leads l JOIN aioretell_campaigns c ON c.name = l.campaign
          WHERE c.account = p_account AND l.state = '{created}'
            AND l.created_at < acct.read_requested_at;
        live_campaign := LEAST(live_campaign,
            acct.current_concurrency + live_campaign - known_campaign);
        total := acct.current_concurrency + live_account - known_account;
    END IF;
    IF live_campaign >= p_cap
            OR total + COALESCE(acct.reserved_inbound, 0) >= acct.concurrency_limit THEN
        wait_s := p_recheck;
        why := 'concurrency';
        RETURN NEXT;
        RETURN;
    END IF;
    UPDATE aioretell_leads l SET state = '{dispatching}', dispatched_at = p_now,
        owner = p_worker, claim_token = p_token,
        lease_until = clock_timestamp() + make_interval(secs => p_lease),
        updated_at = clock_timestamp()
    WHERE l.campaign = p_campaign AND l.ref = (
        SELECT d.ref FROM aioretell_leads d
        WHERE d.campaign = p_campaign AND d.state = '{pending}' AND d.not_before <= p_now
        ORDER BY d.not_before, d.line LIMIT 1
        FOR UPDATE SKIP LOCKED)
    RETURNING {returning}
    INTO {into};
    IF NOT FOUND THEN
        SELECT MIN(d.not_before) INTO due FROM aioretell_leads d
        WHERE d.campaign = p_campaign AND d.state = '{pending}';
        IF due IS NOT NULL THEN
            wait_s := GREATEST(0, due - p_now);
            why := 'no lead due yet';
            RETURN NEXT;
        END IF;
        RETURN;  -- no row: no lead pending at all
    END IF;
    IF p_interval > 0 THEN
        UPDATE aioretell_accounts SET tat = turn + make_interval(secs => p_interval)
        WHERE account = p_account;
    END IF;
    RETURN NEXT;
END
$admit$
""".format(
    name=ADMIT_FUNCTION,
    pending=PENDING,
    dispatching=DISPATCHING,
    created=CREATED,
    returning=", ".join(f"l.{name}" for name in (*ROW_FIELDS, "claim_token")),
    into=_ROW_COLUMNS,
)


def redact(dsn: str) -> str:
    """``dsn`` without its password, for messages: ``postgresql://user@host:port/db``."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - a DSN libpq cannot parse is shown as a placeholder
        return "postgresql://(unreadable URL)"
    user = parts.get("user")
    host = parts.get("host") or "localhost"
    port = parts.get("port")
    where = f"postgresql://{f'{user}@' if user else ''}{host}{f':{port}' if port else ''}"
    return where + f"/{parts.get('dbname') or ''}"


def check_dsn(dsn: str) -> None:
    """Raise :class:`ValueError` (one line) when ``dsn`` is not a PostgreSQL URL libpq reads."""
    from psycopg.conninfo import conninfo_to_dict

    if not dsn.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"{dsn!r} is not a postgresql:// URL")
    try:
        conninfo_to_dict(dsn)
    except Exception as exc:  # noqa: BLE001 - psycopg.ProgrammingError, re-raised as one line
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{redact(dsn)} is not a URL libpq can use ({message})") from None


def default_worker_id() -> str:
    """The host, the process and a random tag: unique among the campaign's workers."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class Reading:
    """A get-concurrency reading as the admission uses it."""

    concurrency_limit: int | None
    reserved_inbound: int
    #: live calls of the account that are not this campaign's (inbound, other dialers)
    others: int


class _SessionLostError(JournalUnavailableError):
    """The server ended this connection's session while a transaction of ours was open on it:
    the transaction was rolled back, so it may run again on another connection."""


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _again_if_session_lost(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Run a one-transaction method once more when its session was ended under it.

    A worker stopped (SIGSTOP, a long GC, a paused VM) inside a transaction has its session
    ended by ``idle_in_transaction_session_timeout``, so that it holds no lock meanwhile; when
    it wakes, its next statement fails. The transaction never committed, so running it again
    on a fresh connection is what it would have done. A second failure is a real outage.
    """

    @functools.wraps(method)
    async def again(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except _SessionLostError:
            return await method(*args, **kwargs)

    return again


class PostgresJournal(Journal):
    """One campaign (``campaign``, its name) of a PostgreSQL database, as one worker sees it.

    ``account`` names the Retell account the campaign dials from (its shared pause, rate and
    concurrency); campaigns of one account in one database share them. Opens its connections on
    first use; :meth:`close` them.
    """

    shared = True

    def __init__(
        self,
        dsn: str,
        *,
        campaign: str,
        account: str = "default",
        worker_id: str | None = None,
        pool_size: int = POOL_SIZE,
    ) -> None:
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise JournalError(
                'a postgresql:// journal needs psycopg: pip install "aioretell[postgres]"'
            ) from None
        self.dsn = dsn
        self.name = campaign
        self.account = account
        self.worker_id = worker_id or default_worker_id()
        self.where = f"{redact(dsn)} campaign {campaign!r}"
        #: how this worker's sessions show in ``pg_stat_activity``
        self.application_name = f"aioretell {campaign} {self.worker_id}"[:63]
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool[AsyncConnection[DictRow]] | None = None
        self._closed = False
        self._down = False
        self._worker_token: str | None = None
        self._lease_ttl_s = CLAIM_TTL_S
        #: claim tokens of the rows this worker holds dispatching (renewed by its heartbeat)
        self._claims: set[str] = set()
        #: when each pooled connection was last given back (monotonic clock)
        self._used_at: weakref.WeakKeyDictionary[AsyncConnection[DictRow], float] = (
            weakref.WeakKeyDictionary()
        )

    # -- connections ---------------------------------------------------------------------

    async def _open(self) -> AsyncConnectionPool[AsyncConnection[DictRow]]:
        if self._pool is not None:
            return self._pool
        if self._closed:
            raise JournalError(f"{self.where}: the journal is closed")
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        # A first connection of our own: its error is the one line to show (a pool would
        # only time out), and it creates the tables.
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.dsn,
                connect_timeout=CONNECT_TIMEOUT_S,
                autocommit=True,
                application_name=self.application_name,
            )
        except psycopg.Error as exc:
            raise JournalUnavailableError(
                f"cannot connect to PostgreSQL at {redact(self.dsn)}: {_first_line(exc)}"
            ) from None
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended("
                    "current_schema() || ':aioretell-schema', 0))"
                )
                await conn.execute(_DDL.encode())
                await _add_columns(conn)
                found_admit = await (
                    await conn.execute(
                        "SELECT to_regproc(quote_ident(current_schema()) || '.' || %s)",
                        (ADMIT_FUNCTION,),
                    )
                ).fetchone()
                if found_admit is None or found_admit[0] is None:
                    await conn.execute(_LIVE_DDL.encode())
                    await conn.execute(_ADMIT_DDL.encode())
                await conn.execute(
                    "INSERT INTO aioretell_meta (key, value) VALUES ('schema', %s)"
                    " ON CONFLICT (key) DO NOTHING",
                    (SCHEMA_VERSION,),
                )
                found = await (
                    await conn.execute("SELECT value FROM aioretell_meta WHERE key = 'schema'")
                ).fetchone()
        except psycopg.Error as exc:
            raise JournalError(
                f"{self.where}: cannot set up the journal's tables ({_first_line(exc)})"
            ) from None
        finally:
            await conn.close()
        if found is None or found[0] != SCHEMA_VERSION:
            version = None if found is None else found[0]
            raise JournalError(f"{self.where}: journal schema {version!r} is unknown")

        async def configure(connection: AsyncConnection[DictRow]) -> None:
            await connection.set_autocommit(True)
            # A worker frozen inside a transaction (SIGSTOP while it loads leads) would hold
            # its locks (the campaign's), and every other worker with them: the server ends
            # such a session. (The admission is one statement: no client can freeze in it.)
            await connection.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                (f"{IDLE_IN_TRANSACTION_S}s",),
            )

        pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            self.dsn,
            min_size=1,
            max_size=self._pool_size,
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": self.application_name,
            },
            configure=configure,
            check=self._check,
            open=False,
            name=f"aioretell-{self.worker_id}",
        )
        await pool.open(wait=False)
        self._pool = pool
        return pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        """A connection of the pool (autocommit: each statement commits alone); a database
        failure is a :class:`JournalError` (one line, no password)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = await self._open()
        # Once the database failed, the writes made on the way out (the summary, signing
        # off) wait a second each, not the full timeout.
        timeout = 1.0 if self._down else CONNECT_TIMEOUT_S * 2
        try:
            async with pool.connection(timeout=timeout) as conn:
                try:
                    yield conn
                except psycopg.OperationalError as exc:
                    if not conn.broken:
                        raise
                    raise _SessionLostError(
                        f"PostgreSQL at {redact(self.dsn)} ended the session: {_first_line(exc)}"
                    ) from None
                finally:
                    self._used_at[conn] = time.monotonic()
        except PoolTimeout:
            self._down = True
            raise JournalUnavailableError(
                f"PostgreSQL at {redact(self.dsn)} did not give a connection within "
                f"{timeout:g} s (is it down?)"
            ) from None
        except psycopg.OperationalError as exc:
            self._down = True
            raise JournalUnavailableError(
                f"PostgreSQL at {redact(self.dsn)} failed: {_first_line(exc)}"
            ) from None
        except psycopg.Error as exc:
            raise JournalError(f"{self.where}: {_first_line(exc)}") from None
        else:
            self._down = False

    async def _check(self, conn: AsyncConnection[DictRow]) -> None:
        """The pool's check of a connection it gives out (see :data:`CHECK_IDLE_S`)."""
        from psycopg_pool import AsyncConnectionPool

        if time.monotonic() - self._used_at.get(conn, -math.inf) > CHECK_IDLE_S:
            await AsyncConnectionPool.check_connection(conn)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncCursor[DictRow]]:
        """A cursor in one transaction, committed on exit (errors as :meth:`_connection`)."""
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield cursor

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- the campaign --------------------------------------------------------------------

    @_again_if_session_lost
    async def campaign(self) -> CampaignInfo | None:
        async with self._tx() as cur:
            return await self._campaign(cur)

    async def _campaign(self, cur: AsyncCursor[DictRow]) -> CampaignInfo | None:
        await cur.execute(
            "SELECT campaign_id, csv_sha256, csv_name, from_number, agent_id, target, account"
            " FROM aioretell_campaigns WHERE name = %s",
            (self.name,),
        )
        found = await cur.fetchone()
        if found is None:
            return None
        # The campaign keeps the account it was opened with: a worker whose key differs (a
        # rotated key; the server is checked apart) shares that account's limits and rows.
        self.account = found.pop("account")
        return CampaignInfo(**found)

    @_again_if_session_lost
    async def open_campaign(self, expected: CampaignInfo, leads: LeadFile) -> Opened:
        # Every worker may open (and load) the campaign at the same moment: one at a time.
        async with self._tx() as cur:
            await self._lock(cur, "campaign")
            found = await self._campaign(cur)
            if found is None:
                await self._start(cur, expected, leads)
                return Opened(expected, new=True)
            problems = campaign_problems(found, expected)
            if problems:
                called = await self._count_called(cur)
                raise JournalError(self.refusal(found, problems, called))
            if found.csv_sha256 == expected.csv_sha256:
                return Opened(found, new=False)
            changes = await self._add_leads(cur, leads)
            return Opened(await self._campaign(cur) or found, new=False, changes=changes)

    @_again_if_session_lost
    async def start(self, info: CampaignInfo, leads: LeadFile) -> None:
        async with self._tx() as cur:
            await self._lock(cur, "campaign")
            await self._start(cur, info, leads)

    async def _start(self, cur: AsyncCursor[DictRow], info: CampaignInfo, leads: LeadFile) -> None:
        await cur.execute(
            "INSERT INTO aioretell_accounts (account) VALUES (%s) ON CONFLICT DO NOTHING",
            (self.account,),
        )
        await cur.execute(
            "INSERT INTO aioretell_campaigns (name, campaign_id, account, csv_sha256, csv_name,"
            " from_number, agent_id, target) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                self.name,
                info.campaign_id,
                self.account,
                info.csv_sha256,
                info.csv_name,
                info.from_number,
                info.agent_id,
                info.target,
            ),
        )
        await self._insert_leads(cur, leads, set(), set())

    @_again_if_session_lost
    async def add_leads(self, leads: LeadFile) -> LeadChanges:
        async with self._tx() as cur:
            await self._lock(cur, "campaign")
            return await self._add_leads(cur, leads)

    async def _add_leads(self, cur: AsyncCursor[DictRow], leads: LeadFile) -> LeadChanges:
        await cur.execute(
            "SELECT to_number FROM aioretell_leads WHERE campaign = %s AND state <> %s",
            (self.name, REJECTED),
        )
        known = {r["to_number"] for r in await cur.fetchall()}
        await cur.execute(
            "DELETE FROM aioretell_leads WHERE campaign = %s AND state = %s", (self.name, REJECTED)
        )
        await cur.execute("SELECT ref FROM aioretell_leads WHERE campaign = %s", (self.name,))
        taken = {r["ref"] for r in await cur.fetchall()}
        renamed = await self._insert_leads(cur, leads, known, taken)
        await cur.execute(
            "UPDATE aioretell_campaigns SET csv_sha256 = %s, csv_name = %s WHERE name = %s",
            (leads.sha256, leads.path.name, self.name),
        )
        return lead_changes(leads, known, renamed)

    async def _insert_leads(
        self, cur: AsyncCursor[DictRow], leads: LeadFile, known: set[str], taken: set[str]
    ) -> dict[str, str]:
        """COPY the file's new leads and its rejected lines in; returns refs given anew."""
        from psycopg.types.json import Jsonb

        refs = NewRefs(taken)
        async with cur.copy(
            "COPY aioretell_leads (campaign, ref, line, to_number, variables, state, reason)"
            " FROM STDIN"
        ) as copy:
            for lead in leads.leads:
                if lead.to_number in known:
                    continue
                await copy.write_row(
                    (
                        self.name,
                        refs.free(lead.ref),
                        lead.line,
                        lead.to_number,
                        Jsonb(lead.variables),
                        PENDING,
                        None,
                    )
                )
            for bad in leads.rejected:
                await copy.write_row(
                    (
                        self.name,
                        refs.free(bad.ref, note=False),
                        bad.line,
                        bad.raw_number,
                        Jsonb({}),
                        REJECTED,
                        bad.reason,
                    )
                )
        return refs.renamed

    # -- reading -------------------------------------------------------------------------

    @_again_if_session_lost
    async def rows(self) -> list[Row]:
        async with self._tx() as cur:
            await cur.execute(
                f"SELECT {_ROW_COLUMNS} FROM aioretell_leads WHERE campaign = %s"
                ' ORDER BY line, ref COLLATE "C"'.encode(),
                (self.name,),
            )
            return [_row(found) for found in await cur.fetchall()]

    @_again_if_session_lost
    async def get(self, ref: str) -> Row:
        async with self._tx() as cur:
            found = await self._get(cur, ref)
        if found is None:
            raise KeyError(ref)
        return found

    async def _get(self, cur: AsyncCursor[DictRow], ref: str) -> Row | None:
        await cur.execute(
            f"SELECT {_ROW_COLUMNS} FROM aioretell_leads WHERE campaign = %s AND ref = %s".encode(),
            (self.name, ref),
        )
        found = await cur.fetchone()
        return None if found is None else _row(found)

    @_again_if_session_lost
    async def by_call_id(self, call_id: str) -> Row | None:
        """The row whose latest call is ``call_id``, if this campaign has one."""
        async with self._tx() as cur:
            await cur.execute(
                f"SELECT {_ROW_COLUMNS} FROM aioretell_leads"
                " WHERE call_id = %s AND campaign = %s".encode(),
                (call_id, self.name),
            )
            found = await cur.fetchone()
        return None if found is None else _row(found)

    @_again_if_session_lost
    async def counts(self) -> dict[str, int]:
        async with self._tx() as cur:
            await cur.execute(
                "SELECT state, COUNT(*) AS n FROM aioretell_leads WHERE campaign = %s"
                " GROUP BY state",
                (self.name,),
            )
            return {r["state"]: int(r["n"]) for r in await cur.fetchall()}

    @_again_if_session_lost
    async def count_called(self) -> int:
        async with self._tx() as cur:
            return await self._count_called(cur)

    async def _count_called(self, cur: AsyncCursor[DictRow]) -> int:
        await cur.execute(
            "SELECT COUNT(*) AS n FROM aioretell_leads WHERE campaign = %s"
            " AND (dispatched_at IS NOT NULL OR attempt > 1 OR state IN (%s, %s, %s))",
            (self.name, DISPATCHING, CREATED, ENDED),
        )
        found = await cur.fetchone()
        return 0 if found is None else int(found["n"])

    @_again_if_session_lost
    async def next_due(self) -> float | None:
        async with self._tx() as cur:
            await cur.execute(
                "SELECT MIN(not_before) AS due FROM aioretell_leads"
                " WHERE campaign = %s AND state = %s",
                (self.name, PENDING),
            )
            found = await cur.fetchone()
        return None if found is None or found["due"] is None else float(found["due"])

    # -- transitions ---------------------------------------------------------------------

    @_again_if_session_lost
    async def claim(self, now: float) -> Row | None:
        async with self._tx() as cur:
            return await self._claim(cur, now)

    async def _claim(self, cur: AsyncCursor[DictRow], now: float) -> Row | None:
        """Inside a transaction: take the next due pending row (skipping rows another
        worker's transaction holds), with a fresh claim token and lease."""
        token = secrets.token_hex(12)
        await cur.execute(
            f"""
            UPDATE aioretell_leads SET state = %s, dispatched_at = %s, owner = %s,
                claim_token = %s, lease_until = clock_timestamp() + make_interval(secs => %s),
                updated_at = clock_timestamp()
            WHERE campaign = %s AND ref = (
                SELECT ref FROM aioretell_leads
                WHERE campaign = %s AND state = %s AND not_before <= %s
                ORDER BY not_before, line LIMIT 1
                FOR UPDATE SKIP LOCKED)
            RETURNING {_ROW_COLUMNS}
            """.encode(),
            (
                DISPATCHING,
                now,
                self.worker_id,
                token,
                self._lease_ttl_s,
                self.name,
                self.name,
                PENDING,
                now,
            ),
        )
        found = await cur.fetchone()
        if found is None:
            return None
        self._claims.add(token)
        return _row(found)

    async def _store_move(self, row: Row, to: str, fields: dict[str, Any]) -> None:
        """The fenced update of one move, one statement: a dispatching row only while it
        carries ``row.claim``, a created one only while it holds ``row.call_id``; a call
        created also counts on this worker's row."""
        source = row.state
        values = dict(fields)
        if to != DISPATCHING:
            values["claim_token"] = None
            values["lease_until"] = None
        counted = to == CREATED and self._worker_token is not None
        query = _move_query(source, to, tuple(values), counted)
        fenced_by = row.claim if source == DISPATCHING else row.call_id
        params: list[Any] = [to, *values.values(), self.name, row.ref, source, fenced_by]
        if counted:
            params += [self.name, self.worker_id]
        async with self._connection() as conn:
            cursor = await conn.execute(query, params)
            if await cursor.fetchone() is None:
                stored = await self._get(conn.cursor(), row.ref)
                if source == DISPATCHING and stored is not None and stored.claim != row.claim:
                    raise ClaimLostError(
                        f"{row.ref}: the journal does not hold it as {row.state} under this "
                        "claim: another worker holds it now, or did (this one's claim expired "
                        "and it was reconciled); nothing recorded"
                    )
                raise TransitionError(f"{row.ref}: the journal does not hold it as {row.state}")
        if to != DISPATCHING and row.claim is not None:
            self._claims.discard(row.claim)
            row.claim = None

    # -- admission, shared by every worker ------------------------------------------------

    async def admit(
        self,
        now: float,
        *,
        cps: float | None,
        cap: int,
        recheck_s: float,
        pause_s: float = 0.0,
    ) -> Row | Wait | None:
        """The admission of one create: one call of the database function ``ADMIT_FUNCTION``
        (one round trip, one transaction on the account's advisory lock, so two workers never
        both take the last slot; a claim then waits for the disk in a second, see below):

        0. ``pause_s`` > 0 (this worker saw a 429): the account's pause is pushed to at least
           that long from now;
        1. while the account is paused (``paused_until > clock_timestamp()``): wait until then;
        2. ``cps``: calls-per-second by GCRA on the account row, on the database clock (no
           burst): wait for the theoretical arrival time;
        3. live calls against ``cap`` for this campaign and against ``concurrency_limit -
           reserved_inbound`` for the account, from the journal (rows dispatching or
           created) and the leader's latest get-concurrency reading (its
           ``current_concurrency`` plus our calls it may not have counted, see
           :meth:`record_reading`; the function's comments say how): when full, wait
           ``recheck_s``;
        4. claim the next due pending lead (``FOR UPDATE SKIP LOCKED``) with a fresh claim
           token and lease, and only then spend the GCRA turn.

        Returns the claimed row, a :class:`Wait`, or ``None`` when no lead is pending at all;
        a claim is on disk before it is returned (the function commits without waiting for
        the disk, so the lock is not held meanwhile, and a second statement then commits
        durably after it). ``now`` is the caller's clock, for the leads' ``not_before`` only.
        """
        from psycopg.types.numeric import Int8

        token = secrets.token_hex(12)
        async with self._connection() as conn:
            cursor = await conn.execute(
                _ADMIT_CALL,
                (
                    self.account,
                    self.name,
                    self.worker_id,
                    token,
                    float(now),
                    1.0 / cps if cps else 0.0,
                    Int8(cap),
                    float(recheck_s),
                    float(pause_s),
                    float(self._lease_ttl_s),
                ),
                prepare=True,
            )
            found = await cursor.fetchone()
            if found is not None and found["why"] is None:
                await conn.execute(_DURABLE, prepare=True)
        if found is None:
            return None
        if found["why"] is not None:
            return Wait(float(found["wait_s"]), found["why"])
        self._claims.add(token)
        return _row(found)

    @_again_if_session_lost
    async def pause(self, seconds: float) -> None:
        """A 429: every worker of the account waits ``seconds`` from now (at least)."""
        async with self._tx() as cur:
            await self._pause(cur, seconds)

    async def _pause(self, cur: AsyncCursor[DictRow], seconds: float) -> None:
        await cur.execute(
            "UPDATE aioretell_accounts SET paused_until = GREATEST(paused_until,"
            " clock_timestamp() + make_interval(secs => %s)) WHERE account = %s",
            (seconds, self.account),
        )

    @_again_if_session_lost
    async def account_created(self) -> int:
        """Calls of the account's campaigns recorded created and not seen ended."""
        async with self._tx() as cur:
            return await self._account_created(cur)

    async def _account_created(self, cur: AsyncCursor[DictRow]) -> int:
        await cur.execute(
            "SELECT COUNT(*) AS n FROM aioretell_leads l JOIN aioretell_campaigns c"
            " ON c.name = l.campaign WHERE c.account = %s AND l.state = %s",
            (self.account, CREATED),
        )
        found = await cur.fetchone()
        return 0 if found is None else int(found["n"])

    async def clock(self) -> float:
        """The database clock, in epoch seconds. Read it just before a get-concurrency request
        and give it to :meth:`record_reading` as ``requested_at``."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS now", prepare=True
            )
            found = await cursor.fetchone()
        assert found is not None
        return float(found["now"])

    async def reading_due(self, max_age_s: float) -> float | None:
        """The database clock (for :meth:`record_reading`'s ``requested_at``) when the
        account's latest get-concurrency reading was requested more than ``max_age_s`` ago or
        never, else ``None``: one round trip, for a worker standing in for a stalled leader."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS now,"
                " EXTRACT(EPOCH FROM read_requested_at)::float8 AS requested"
                " FROM aioretell_accounts WHERE account = %s",
                (self.account,),
                prepare=True,
            )
            found = await cursor.fetchone()
        if found is None:
            return None  # the campaign is not open yet: nothing to read for
        now = float(found["now"])
        requested = found["requested"]
        return now if requested is None or now - requested > max_age_s else None

    @_again_if_session_lost
    async def record_reading(
        self,
        *,
        concurrency_limit: int | None,
        reserved_inbound: int,
        current: int,
        ours_before: int | None = None,
        requested_at: float | None = None,
    ) -> Reading:
        """Store a get-concurrency reading on the account row, for :meth:`admit`.

        ``requested_at``: the database clock (:meth:`clock`) read before the request was sent.
        Our calls recorded created before then were on Retell when it answered, so
        ``current`` counts those still live; any other call of ours may be missing from it.
        With it the admission bounds live calls by ``current`` plus those, so a call that
        ended at Retell frees its slot with the reading, before the journal learns the end.
        A reading requested before the one stored is dropped (another worker's came first),
        and the stored one returned.

        Without it (``ours_before``: :meth:`account_created` before the request), the
        admission counts the journal's live calls plus ``others``, the live calls that are
        not the journal's (inbound, other dialers): ``current`` less the account's created
        calls counted before the request and now, whichever is fewer. The returned
        :class:`Reading` has ``others`` either way (with ``requested_at``: less our calls
        recorded created before it and still open).
        """
        if requested_at is None and ours_before is None:
            raise ValueError("record_reading needs requested_at (or ours_before)")
        async with self._tx() as cur:
            if requested_at is not None:
                await cur.execute(
                    "SELECT COUNT(*) AS n FROM aioretell_leads l JOIN aioretell_campaigns c"
                    " ON c.name = l.campaign WHERE c.account = %s AND l.state = %s"
                    " AND l.created_at < to_timestamp(%s)",
                    (self.account, CREATED, requested_at),
                )
                found = await cur.fetchone()
                ours = 0 if found is None else int(found["n"])
            else:
                assert ours_before is not None
                ours = min(ours_before, await self._account_created(cur))
            others = max(0, current - ours)
            await cur.execute(
                "UPDATE aioretell_accounts SET concurrency_limit = %(limit)s,"
                " reserved_inbound = %(reserved)s, others = %(others)s,"
                " current_concurrency = %(current)s, read_requested_at = to_timestamp(%(at)s),"
                " read_at = clock_timestamp() WHERE account = %(account)s"
                " AND (%(at)s::float8 IS NULL OR read_requested_at IS NULL"
                " OR read_requested_at <= to_timestamp(%(at)s)) RETURNING account",
                {
                    "limit": concurrency_limit,
                    "reserved": reserved_inbound,
                    "others": others,
                    "current": current,
                    "at": requested_at,
                    "account": self.account,
                },
            )
            if await cur.fetchone() is None:  # a later reading is stored: it stands
                await cur.execute(
                    "SELECT concurrency_limit, reserved_inbound, others FROM aioretell_accounts"
                    " WHERE account = %s",
                    (self.account,),
                )
                stored = await cur.fetchone()
                if stored is not None:
                    return Reading(
                        stored["concurrency_limit"],
                        stored["reserved_inbound"] or 0,
                        stored["others"] or 0,
                    )
        return Reading(concurrency_limit, reserved_inbound, others)

    @_again_if_session_lost
    async def open_call_ids(self) -> list[str]:
        """Every call of the campaign recorded created and not seen ended."""
        async with self._tx() as cur:
            await cur.execute(
                "SELECT call_id FROM aioretell_leads WHERE campaign = %s AND state = %s"
                " AND call_id IS NOT NULL",
                (self.name, CREATED),
            )
            return [found["call_id"] for found in await cur.fetchall()]

    @_again_if_session_lost
    async def expired_claims(self, *, limit: int = 100) -> list[Row]:
        """Claim for this worker the dispatching rows whose lease expired (their worker died,
        froze or lost the database): each gets a fresh token, so the old owner can no longer
        record anything, and a lease this worker renews while it looks the call up."""
        async with self._tx() as cur:
            await cur.execute(
                f"""
                UPDATE aioretell_leads SET owner = %s, claim_token = md5(random()::text || ref),
                    lease_until = clock_timestamp() + make_interval(secs => %s),
                    updated_at = clock_timestamp()
                WHERE campaign = %s AND ref IN (
                    SELECT ref FROM aioretell_leads
                    WHERE campaign = %s AND state = %s AND lease_until < clock_timestamp()
                    ORDER BY lease_until LIMIT %s
                    FOR UPDATE SKIP LOCKED)
                RETURNING {_ROW_COLUMNS}
                """.encode(),
                (self.worker_id, self._lease_ttl_s, self.name, self.name, DISPATCHING, limit),
            )
            rows = [_row(found) for found in await cur.fetchall()]
        self._claims.update(row.claim for row in rows if row.claim is not None)
        return rows

    @_again_if_session_lost
    async def finished(self) -> bool:
        """Every lead of the campaign is in a final state."""
        async with self._tx() as cur:
            await cur.execute(
                "SELECT EXISTS (SELECT 1 FROM aioretell_leads WHERE campaign = %s"
                " AND state IN (%s, %s, %s)) AS busy",
                (self.name, PENDING, DISPATCHING, CREATED),
            )
            found = await cur.fetchone()
        return found is not None and not found["busy"]

    def leader_lock(self, *, idle_s: float) -> LeaderLock:
        return LeaderLock(self, idle_s=idle_s)

    @_again_if_session_lost
    async def status(self, *, window_s: float = 60.0) -> CampaignStatus | None:
        async with self._tx() as cur:
            info = await self._campaign(cur)
            if info is None:
                return None
            await cur.execute(
                "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS now,"
                " EXTRACT(EPOCH FROM a.paused_until)::float8 AS paused_until,"
                " a.concurrency_limit, c.leader FROM aioretell_campaigns c"
                " JOIN aioretell_accounts a ON a.account = c.account WHERE c.name = %s",
                (self.name,),
            )
            top = await cur.fetchone()
            assert top is not None
            await cur.execute(
                "SELECT state, COUNT(*) AS n, COUNT(*) FILTER (WHERE created_at >="
                " clock_timestamp() - make_interval(secs => %s)) AS recent"
                " FROM aioretell_leads WHERE campaign = %s GROUP BY state",
                (window_s, self.name),
            )
            by_state = await cur.fetchall()
            await cur.execute(
                "SELECT COALESCE(disconnection_reason, call_status, '(none)') AS outcome,"
                " COUNT(*) AS n FROM aioretell_leads WHERE campaign = %s AND state = %s"
                " GROUP BY 1",
                (self.name, ENDED),
            )
            outcomes = {r["outcome"]: int(r["n"]) for r in await cur.fetchall()}
            await cur.execute(
                "SELECT worker_id, pid, host, placed,"
                " EXTRACT(EPOCH FROM started_at)::float8 AS started_at,"
                " EXTRACT(EPOCH FROM heartbeat_at)::float8 AS heartbeat_at,"
                " EXTRACT(EPOCH FROM stopped_at)::float8 AS stopped_at"
                " FROM aioretell_workers WHERE campaign = %s ORDER BY started_at, worker_id",
                (self.name,),
            )
            workers = [
                WorkerInfo(**found, leader=found["worker_id"] == top["leader"])
                for found in await cur.fetchall()
            ]
        states = {r["state"]: int(r["n"]) for r in by_state}
        return CampaignStatus(
            info=info,
            where=self.where,
            states=states,
            outcomes=outcomes,
            recent_creates=sum(int(r["recent"]) for r in by_state),
            window_s=window_s,
            workers=workers,
            now=float(top["now"]),
            paused_until=top["paused_until"],
            concurrency_limit=top["concurrency_limit"],
        )

    # -- the worker's lease --------------------------------------------------------------

    @_again_if_session_lost
    async def acquire_lease(self, *, ttl_s: float) -> LeaseHolder | None:
        """Register this worker (many may work on the campaign). Refused only while another
        live process holds the same worker id; a dead one's claims expire at once."""
        host = socket.gethostname()
        token = secrets.token_hex(16)
        self._lease_ttl_s = max(ttl_s, 1.0)
        async with self._tx() as cur:
            await cur.execute(
                "SELECT token, pid, host, EXTRACT(EPOCH FROM started_at)::float8 AS started_at,"
                " EXTRACT(EPOCH FROM heartbeat_at)::float8 AS heartbeat_at,"
                " EXTRACT(EPOCH FROM clock_timestamp() - heartbeat_at)::float8 AS silent_s,"
                " EXTRACT(EPOCH FROM clock_timestamp() - started_at)::float8 AS running_s"
                " FROM aioretell_workers WHERE campaign = %s AND worker_id = %s FOR UPDATE",
                (self.name, self.worker_id),
            )
            found = await cur.fetchone()
            previous: LeaseHolder | None = None
            if found is not None and found["token"] is not None:
                previous = LeaseHolder(
                    found["pid"], found["host"], found["started_at"], found["heartbeat_at"]
                )
                fresh = found["silent_s"] < ttl_s
                alive = found["host"] != host or process_alive(found["pid"])
                if fresh and alive:
                    raise LeaseHeldError(
                        f"worker {self.worker_id!r} of {self.where} is in use by another dialer "
                        f"(pid {found['pid']} on {found['host']}, running for "
                        f"{found['running_s']:.0f} s, last heartbeat "
                        f"{max(0.0, found['silent_s']):.0f} s ago); give each dialer its own "
                        "--worker-id, or none (one is made from the host and process)"
                    )
            await cur.execute(
                "INSERT INTO aioretell_workers (campaign, worker_id, token, pid, host,"
                " started_at, heartbeat_at) VALUES (%s, %s, %s, %s, %s, clock_timestamp(),"
                " clock_timestamp()) ON CONFLICT (campaign, worker_id) DO UPDATE SET"
                " token = EXCLUDED.token, pid = EXCLUDED.pid, host = EXCLUDED.host,"
                " started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at,"
                " stopped_at = NULL",
                (self.name, self.worker_id, token, os.getpid(), host),
            )
            # Nobody renews the claims of this worker id's last process any more.
            await cur.execute(
                "UPDATE aioretell_leads SET lease_until = clock_timestamp()"
                " WHERE campaign = %s AND owner = %s AND state = %s",
                (self.name, self.worker_id, DISPATCHING),
            )
        self._worker_token = token
        return previous

    @_again_if_session_lost
    async def heartbeat(self) -> None:
        """Renew this worker's row and the leases of the rows it holds dispatching."""
        # Lead rows before the worker row, as every transaction here takes them (mark_created
        # locks its lead, then counts it on the worker row): no deadlock between them.
        async with self._tx() as cur:
            if self._claims:
                await cur.execute(
                    "UPDATE aioretell_leads SET lease_until = clock_timestamp()"
                    " + make_interval(secs => %s) WHERE campaign = %s AND owner = %s"
                    " AND state = %s AND claim_token = ANY(%s)",
                    (
                        self._lease_ttl_s,
                        self.name,
                        self.worker_id,
                        DISPATCHING,
                        sorted(self._claims),
                    ),
                )
            await cur.execute(
                "UPDATE aioretell_workers SET heartbeat_at = clock_timestamp()"
                " WHERE campaign = %s AND worker_id = %s AND token = %s",
                (self.name, self.worker_id, self._worker_token),
            )
            if cur.rowcount != 1:
                raise LeaseLostError(
                    f"{self.where}: another dialer took worker {self.worker_id!r} over (it "
                    "heard nothing from this one for too long); this one stops"
                )

    @_again_if_session_lost
    async def release_lease(self) -> None:
        """Sign this worker off; the rows it still holds dispatching are reconciled at once."""
        token, self._worker_token = self._worker_token, None
        if token is None:
            return
        try:
            async with self._tx() as cur:
                await cur.execute(
                    "UPDATE aioretell_leads SET lease_until = clock_timestamp()"
                    " WHERE campaign = %s AND owner = %s AND state = %s AND claim_token = ANY(%s)",
                    (self.name, self.worker_id, DISPATCHING, sorted(self._claims)),
                )
                await cur.execute(
                    "UPDATE aioretell_workers SET token = NULL, stopped_at = clock_timestamp()"
                    " WHERE campaign = %s AND worker_id = %s AND token = %s",
                    (self.name, self.worker_id, token),
                )
        except JournalUnavailableError:
            pass  # best effort: without a heartbeat the worker and its claims expire anyway

    # -- plumbing ------------------------------------------------------------------------

    async def _lock(self, cur: AsyncCursor[DictRow], what: str, name: str | None = None) -> None:
        """A transaction-scoped advisory lock on ``what`` of this campaign (or of ``name``)."""
        await cur.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended("
            "current_schema() || ':' || %s || ':' || %s, 0))",
            (what, self.name if name is None else name),
        )


class LeadershipLostError(JournalError):
    """This worker's leader session ended (it was frozen past ``idle_s``, or the connection
    dropped): another worker may lead now; this one stops leading."""


class LeaderLock:
    """The campaign's leadership: a session advisory lock on a connection of its own.

    The lock lasts as long as the session: a leader that dies releases it with its connection,
    and one that freezes loses it too, since the session is opened with ``idle_session_timeout``
    of ``idle_s`` (the leader runs :meth:`hold` more often than that while it leads).
    """

    def __init__(self, journal: PostgresJournal, *, idle_s: float) -> None:
        self._journal = journal
        self._idle_ms = max(1000, round(idle_s * 1000))
        self._conn: AsyncConnection[Any] | None = None
        self.held = False

    async def try_acquire(self) -> bool:
        """Lead if nobody does; ``False`` while another worker's session holds the lock."""
        import psycopg

        journal = self._journal
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(
                        journal.dsn,
                        connect_timeout=CONNECT_TIMEOUT_S,
                        autocommit=True,
                        application_name=f"{journal.application_name} leader",
                    )
                cursor = await self._conn.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended("
                    "current_schema() || ':leader:' || %s, 0))",
                    (journal.name,),
                )
                found = await cursor.fetchone()
                self.held = bool(found and found[0])
                if self.held:
                    # From now on a session silent for idle_s (a frozen leader) is ended by
                    # the server, which frees the lock for another worker.
                    await self._conn.execute(
                        "SELECT set_config('idle_session_timeout', %s, false)",
                        (f"{self._idle_ms}ms",),
                    )
                    await self._conn.execute(
                        "UPDATE aioretell_campaigns SET leader = %s,"
                        " leader_since = clock_timestamp() WHERE name = %s",
                        (journal.worker_id, journal.name),
                    )
                return self.held
            except psycopg.Error as exc:
                await self._drop()
                if attempt == 2:  # a fresh connection failed too: the database is down
                    raise JournalUnavailableError(
                        f"PostgreSQL at {redact(journal.dsn)} failed: {_first_line(exc)}"
                    ) from None
        raise AssertionError("unreachable")

    async def hold(self) -> None:
        """Still leading? Raises :class:`LeadershipLostError` when the session is gone."""
        import psycopg

        if self._conn is None or not self.held:
            raise LeadershipLostError(f"{self._journal.where}: not the leader")
        try:
            await self._conn.execute("SELECT 1")
        except psycopg.Error as exc:
            await self._drop()
            raise LeadershipLostError(
                f"{self._journal.where}: the leader's session ended ({_first_line(exc)})"
            ) from None

    async def release(self) -> None:
        """Stop leading (closing the session releases the lock) and clear the campaign's
        leader if it still names this worker."""
        journal = self._journal
        if self._conn is not None and self.held and not self._conn.closed:
            import psycopg

            with contextlib.suppress(psycopg.Error):
                await self._conn.execute(
                    "UPDATE aioretell_campaigns SET leader = NULL WHERE name = %s AND leader = %s",
                    (journal.name, journal.worker_id),
                )
        await self._drop()

    async def _drop(self) -> None:
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


@functools.lru_cache(maxsize=64)
def _move_query(source: str, to: str, names: tuple[str, ...], counted: bool) -> bytes:
    """The statement of :meth:`PostgresJournal._store_move` for one shape of move, composed
    once (composing it costs more than running it)."""
    from psycopg import sql

    assignments: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder()) for name in names
    ]
    if to == CREATED:
        assignments.append(sql.SQL("created_at = clock_timestamp()"))
    fence = "claim_token" if source == DISPATCHING else "call_id"
    query = sql.SQL(
        "UPDATE aioretell_leads SET state = {}, updated_at = clock_timestamp(), {}"
        " WHERE campaign = {} AND ref = {} AND state = {} AND {} IS NOT DISTINCT FROM {}"
        " RETURNING ref"
    ).format(
        sql.Placeholder(),
        sql.SQL(", ").join(assignments),
        sql.Placeholder(),
        sql.Placeholder(),
        sql.Placeholder(),
        sql.Identifier(fence),
        sql.Placeholder(),
    )
    if counted:
        # ``counted`` is read by nobody, so it runs after the main query has read ``moved``:
        # the lead is locked before the worker row, as in heartbeat().
        query = sql.SQL(
            "WITH moved AS ({}), counted AS (UPDATE aioretell_workers"
            " SET placed = placed + 1 WHERE campaign = {} AND worker_id = {}"
            " AND EXISTS (SELECT 1 FROM moved)) SELECT ref FROM moved"
        ).format(query, sql.Placeholder(), sql.Placeholder())
    return query.as_bytes(None)


async def _add_columns(conn: AsyncConnection[Any]) -> None:
    """Add the columns a schema made by older code lacks (:data:`_ADDED_COLUMNS`)."""
    for table, columns in _ADDED_COLUMNS.items():
        cursor = await conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        have = {found[0] for found in await cursor.fetchall()}
        for name, kind in columns:
            if name not in have:
                await conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}".encode())


def _row(found: Mapping[str, Any]) -> Row:
    return stored_row(found, claim=found["claim_token"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
