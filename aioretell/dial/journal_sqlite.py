"""The campaign journal in one SQLite file (WAL): the single-process default.

Durability: a ``claim`` (pending -> dispatching) is committed with ``synchronous=FULL``, an
fsync of the WAL (about 0.3 ms here), so once a create may have been sent, its row says so
even after a power loss; it also makes every earlier commit durable. The other commits use
``synchronous=NORMAL``, no fsync: a process crash (``kill -9``) loses none of them, and what a
power loss can lose is recovered: a lost ``created`` leaves the row ``dispatching`` (looked up
by metadata), a lost end leaves it ``created`` (its end is read again), a lost release leaves
it ``dispatching`` (looked up, not found, released again).

The journal runs on the event loop thread: a commit costs tens of microseconds.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from .journal import (
    CREATED,
    DISPATCHING,
    ENDED,
    PENDING,
    REJECTED,
    CampaignInfo,
    CampaignStatus,
    Journal,
    JournalError,
    LeadChanges,
    LeaseHeldError,
    LeaseHolder,
    LeaseLostError,
    NewRefs,
    Row,
    TransitionError,
    WorkerInfo,
    apply_move,
    lead_changes,
    process_alive,
    stored_row,
)
from .leads import LeadFile

SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leads (
    ref TEXT PRIMARY KEY,
    line INTEGER NOT NULL,
    to_number TEXT,
    variables TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    requeues INTEGER NOT NULL DEFAULT 0,
    redials INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    dispatched_at REAL,
    placed INTEGER NOT NULL DEFAULT 0,
    call_id TEXT,
    call_status TEXT,
    disconnection_reason TEXT,
    reason TEXT,
    create_ms REAL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
"""

#: Columns schema 1 did not have; added in place when such a journal is opened.
_ADDED_IN_2 = (
    ("requeues", "INTEGER NOT NULL DEFAULT 0"),
    ("retries", "INTEGER NOT NULL DEFAULT 0"),
    ("dispatched_at", "REAL"),
    ("placed", "INTEGER NOT NULL DEFAULT 0"),
)

_INDEXES = """
CREATE INDEX IF NOT EXISTS leads_due ON leads (state, not_before, line);
CREATE UNIQUE INDEX IF NOT EXISTS leads_number ON leads (to_number) WHERE state != 'rejected';
"""


class SQLiteJournal(Journal):
    """A journal file. Use it from the event loop thread only."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.where = str(path)
        self._clock = clock
        self._token: str | None = None
        try:
            # A second dialer's lease check may wait briefly for the holder's write lock.
            self._db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open the journal ({exc})") from None
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._db.executescript(_INDEXES)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{path}: not a journal this command can use ({exc})") from None

    def _migrate(self) -> None:
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(leads)")}
        missing = [(name, kind) for name, kind in _ADDED_IN_2 if name not in columns]
        if not missing:
            return
        with self._write(fenced=False):
            for name, kind in missing:
                self._db.execute(f"ALTER TABLE leads ADD COLUMN {name} {kind}")
            # Schema 1 counted requeues and redials together in ``attempt``.
            self._db.execute("UPDATE leads SET requeues = MAX(0, attempt - 1 - redials)")
            self._db.execute(
                "UPDATE campaign SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION,)
            )

    async def close(self) -> None:
        self._db.close()

    # -- the campaign ------------------------------------------------------------------

    async def campaign(self) -> CampaignInfo | None:
        values = dict(self._db.execute("SELECT key, value FROM campaign").fetchall())
        if not values:
            return None
        if values.get("schema") != SCHEMA_VERSION:
            raise JournalError(f"{self.path}: journal schema {values.get('schema')!r} is unknown")
        return CampaignInfo(
            campaign_id=values["campaign_id"],
            csv_sha256=values["csv_sha256"],
            csv_name=values["csv_name"],
            from_number=values["from_number"],
            agent_id=values["agent_id"],
            target=values["target"],
        )

    async def start(self, info: CampaignInfo, leads: LeadFile) -> None:
        now = self._clock()
        with self._write():
            self._db.executemany(
                "INSERT INTO campaign (key, value) VALUES (?, ?)",
                [
                    ("schema", SCHEMA_VERSION),
                    ("campaign_id", info.campaign_id),
                    ("csv_sha256", info.csv_sha256),
                    ("csv_name", info.csv_name),
                    ("from_number", info.from_number),
                    ("agent_id", info.agent_id),
                    ("target", info.target),
                    ("started_at", repr(now)),
                ],
            )
            self._insert_leads(leads, set(), now)

    async def add_leads(self, leads: LeadFile) -> LeadChanges:
        now = self._clock()
        with self._write():
            known = {
                number
                for (number,) in self._db.execute(
                    "SELECT to_number FROM leads WHERE state != ?", (REJECTED,)
                )
            }
            self._db.execute("DELETE FROM leads WHERE state = ?", (REJECTED,))
            taken = {ref for (ref,) in self._db.execute("SELECT ref FROM leads")}
            renamed = self._insert_leads(leads, known, now, taken)
            self._db.executemany(
                "UPDATE campaign SET value = ? WHERE key = ?",
                [(leads.sha256, "csv_sha256"), (leads.path.name, "csv_name")],
            )
        return lead_changes(leads, known, renamed)

    def _insert_leads(
        self, leads: LeadFile, known: set[str | None], now: float, taken: set[str] | None = None
    ) -> dict[str, str]:
        """Insert the file's new leads and its rejected lines; returns refs given anew."""
        refs = NewRefs(set() if taken is None else taken)
        new = [lead for lead in leads.leads if lead.to_number not in known]
        self._db.executemany(
            "INSERT INTO leads (ref, line, to_number, variables, state, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    refs.free(lead.ref),
                    lead.line,
                    lead.to_number,
                    msgspec.json.encode(lead.variables).decode(),
                    PENDING,
                    now,
                )
                for lead in new
            ],
        )
        self._db.executemany(
            "INSERT INTO leads (ref, line, to_number, state, reason, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (refs.free(r.ref, note=False), r.line, r.raw_number, REJECTED, r.reason, now)
                for r in leads.rejected
            ],
        )
        return refs.renamed

    # -- reading -----------------------------------------------------------------------

    async def rows(self) -> list[Row]:
        return [self._row(r) for r in self._db.execute("SELECT * FROM leads ORDER BY line, ref")]

    async def get(self, ref: str) -> Row:
        found = self._db.execute("SELECT * FROM leads WHERE ref = ?", (ref,)).fetchone()
        if found is None:
            raise KeyError(ref)
        return self._row(found)

    async def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, COUNT(*) FROM leads GROUP BY state").fetchall())

    async def count_called(self) -> int:
        (called,) = self._db.execute(
            "SELECT COUNT(*) FROM leads"
            " WHERE dispatched_at IS NOT NULL OR attempt > 1 OR state IN (?, ?, ?)",
            (DISPATCHING, CREATED, ENDED),
        ).fetchone()
        return int(called)

    async def next_due(self) -> float | None:
        (due,) = self._db.execute(
            "SELECT MIN(not_before) FROM leads WHERE state = ?", (PENDING,)
        ).fetchone()
        return None if due is None else float(due)

    async def status(self, *, window_s: float = 60.0) -> CampaignStatus | None:
        info = await self.campaign()
        if info is None:
            return None
        now = self._clock()
        states = await self.counts()
        outcomes = dict(
            self._db.execute(
                "SELECT COALESCE(disconnection_reason, call_status, '(none)'), COUNT(*)"
                " FROM leads WHERE state = ? GROUP BY 1",
                (ENDED,),
            ).fetchall()
        )
        (recent,) = self._db.execute(
            "SELECT COUNT(*) FROM leads WHERE call_id IS NOT NULL AND dispatched_at >= ?",
            (now - window_s,),
        ).fetchone()
        (placed,) = self._db.execute(
            "SELECT COUNT(*) FROM leads WHERE call_id IS NOT NULL"
        ).fetchone()
        holder = self._db.execute("SELECT * FROM lease WHERE id = 1").fetchone()
        workers = []
        if holder is not None:
            running = holder["token"] is not None
            workers.append(
                WorkerInfo(
                    worker_id=f"{holder['host']}-{holder['pid']}",
                    pid=holder["pid"],
                    host=holder["host"],
                    started_at=holder["started_at"],
                    heartbeat_at=holder["heartbeat_at"],
                    stopped_at=None if running else holder["heartbeat_at"],
                    placed=int(placed),
                    leader=running,
                )
            )
        return CampaignStatus(
            info=info,
            where=self.where,
            states=states,
            outcomes=outcomes,
            recent_creates=int(recent),
            window_s=window_s,
            workers=workers,
            now=now,
        )

    # -- transitions -------------------------------------------------------------------

    async def claim(self, now: float) -> Row | None:
        # FULL for this commit only: the WAL is fsynced before the create can be sent.
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            with self._write():
                found = self._db.execute(
                    "SELECT * FROM leads WHERE state = ? AND not_before <= ?"
                    " ORDER BY not_before, line LIMIT 1",
                    (PENDING, now),
                ).fetchone()
                if found is None:
                    return None
                row = self._row(found)
                claimed = {"dispatched_at": now}
                self._store(row, DISPATCHING, claimed)
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")
        apply_move(row, DISPATCHING, claimed)
        return row

    async def _store_move(self, row: Row, to: str, fields: dict[str, Any]) -> None:
        with self._write():
            self._store(row, to, fields)

    def _store(self, row: Row, to: str, fields: dict[str, Any]) -> None:
        """Inside a write: store the move of ``row`` (still in ``row.state``) to ``to``."""
        columns = "".join(f", {name} = ?" for name in fields)
        cursor = self._db.execute(
            f"UPDATE leads SET state = ?, updated_at = ?{columns} WHERE ref = ? AND state = ?",
            (to, self._clock(), *fields.values(), row.ref, row.state),
        )
        if cursor.rowcount != 1:
            raise TransitionError(f"{row.ref}: the journal does not hold it as {row.state}")

    # -- the lease ---------------------------------------------------------------------

    async def acquire_lease(self, *, ttl_s: float) -> LeaseHolder | None:
        now = self._clock()
        host = socket.gethostname()
        token = os.urandom(16).hex()
        with self._write(fenced=False):
            found = self._db.execute("SELECT * FROM lease WHERE id = 1").fetchone()
            previous: LeaseHolder | None = None
            if found is not None and found["token"] is not None:
                previous = LeaseHolder(
                    found["pid"], found["host"], found["started_at"], found["heartbeat_at"]
                )
                fresh = now - previous.heartbeat_at < ttl_s
                alive = previous.host != host or process_alive(previous.pid)
                if fresh and alive:
                    raise LeaseHeldError(
                        f"{self.path} is in use by another dialer (pid {previous.pid} on "
                        f"{previous.host}, running for {now - previous.started_at:.0f} s, "
                        f"last heartbeat {max(0.0, now - previous.heartbeat_at):.0f} s ago). "
                        "Wait for it to finish or stop it; a dialer that died is taken over "
                        "at once on this host, within "
                        f"{ttl_s:g} s of its last heartbeat from another."
                    )
            self._db.execute(
                "INSERT OR REPLACE INTO lease (id, token, pid, host, started_at, heartbeat_at)"
                " VALUES (1, ?, ?, ?, ?, ?)",
                (token, os.getpid(), host, now, now),
            )
        self._token = token
        return previous

    async def heartbeat(self) -> None:
        with self._write():
            self._db.execute(
                "UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND token = ?",
                (self._clock(), self._token),
            )

    async def release_lease(self) -> None:
        if self._token is None:
            return
        with self._write(fenced=False):
            self._db.execute(
                "UPDATE lease SET token = NULL WHERE id = 1 AND token = ?", (self._token,)
            )
        self._token = None

    # -- plumbing ----------------------------------------------------------------------

    @contextmanager
    def _write(self, *, fenced: bool = True) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception; when this
        journal holds a lease, the write is refused unless the lease is still ours."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if fenced and self._token is not None:
                found = self._db.execute("SELECT token, pid, host FROM lease WHERE id = 1")
                holder = found.fetchone()
                if holder is None or holder["token"] != self._token:
                    raise LeaseLostError(
                        f"{self.path}: another dialer took this journal over"
                        + (f" (pid {holder['pid']} on {holder['host']})" if holder else "")
                        + "; this one stops"
                    )
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @staticmethod
    def _row(record: sqlite3.Row) -> Row:
        return stored_row(record)
