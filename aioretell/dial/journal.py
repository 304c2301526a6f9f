"""The campaign journal: one SQLite row per lead, moved through a checked state machine.

::

    pending ──> dispatching ──> created(call_id) ──> ended(outcome)
       ^             │  │              │
       └─────────────┘  └──> failed    └──> pending   (requeue or redial: attempt + 1)

``dispatching`` is committed before the create is sent and ``created`` right after it returns,
so after a crash a ``dispatching`` row is the only kind whose outcome is unknown; the runner
looks it up by its metadata before dialling it again. ``rejected`` rows (bad CSV lines) are
terminal from the start.

Durability: WAL with ``synchronous=NORMAL``. A commit then costs no fsync (tens of
microseconds, so the journal runs on the event loop thread) and survives the process being
killed at any point; only a power loss or OS crash can lose the last commits. That window is
covered by the idempotency key every create carries (``campaign-ref-attempt``): a row that
fell back to ``pending`` is sent again with the same key, and Retell answers with the call it
already made instead of dialling twice.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from .leads import LeadFile

SCHEMA_VERSION = "1"

PENDING = "pending"
DISPATCHING = "dispatching"
CREATED = "created"
ENDED = "ended"
FAILED = "failed"
REJECTED = "rejected"
TERMINAL = frozenset({ENDED, FAILED, REJECTED})

#: Which state may follow which. Anything else is a bug and raises.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    PENDING: frozenset({DISPATCHING}),
    DISPATCHING: frozenset({CREATED, PENDING, FAILED, ENDED}),
    CREATED: frozenset({ENDED, PENDING}),
    ENDED: frozenset(),
    FAILED: frozenset(),
    REJECTED: frozenset(),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leads (
    ref TEXT PRIMARY KEY,
    line INTEGER NOT NULL,
    to_number TEXT,
    variables TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    redials INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    call_id TEXT,
    call_status TEXT,
    disconnection_reason TEXT,
    reason TEXT,
    create_ms REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leads_state ON leads (state);
"""

_FIELDS = (
    "ref",
    "line",
    "to_number",
    "variables",
    "state",
    "attempt",
    "redials",
    "not_before",
    "call_id",
    "call_status",
    "disconnection_reason",
    "reason",
    "create_ms",
)
_UPDATABLE = frozenset(_FIELDS) - {"ref", "line", "to_number", "variables", "state"}


class JournalError(Exception):
    """The journal cannot be used for this run; the message says why."""


class TransitionError(RuntimeError):
    """A state change the state machine does not allow, or a row not in the expected state."""


@dataclass(slots=True)
class Row:
    ref: str
    line: int
    to_number: str | None
    variables: dict[str, str]
    state: str
    attempt: int = 1
    redials: int = 0
    not_before: float = 0.0
    call_id: str | None = None
    call_status: str | None = None
    disconnection_reason: str | None = None
    reason: str | None = None
    create_ms: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    """What a journal belongs to. A run whose values differ is refused."""

    campaign_id: str
    csv_sha256: str
    csv_name: str
    from_number: str
    agent_id: str
    target: str


class Journal:
    """One campaign's journal file. Not thread-safe: use it from the event loop thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open the journal ({exc})") from None
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{path}: not a journal this command can use ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the campaign ------------------------------------------------------------------

    def campaign(self) -> CampaignInfo | None:
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

    def start(self, info: CampaignInfo, leads: LeadFile) -> None:
        """Record a new campaign and all its rows in one transaction."""
        now = time.time()
        with self._transaction():
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
            self._db.executemany(
                "INSERT INTO leads (ref, line, to_number, variables, state, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        lead.ref,
                        lead.line,
                        lead.to_number,
                        msgspec.json.encode(lead.variables).decode(),
                        PENDING,
                        now,
                    )
                    for lead in leads.leads
                ],
            )
            self._db.executemany(
                "INSERT INTO leads (ref, line, to_number, state, reason, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(r.ref, r.line, r.raw_number, REJECTED, r.reason, now) for r in leads.rejected],
            )

    # -- rows --------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        """Every row, in file order."""
        return [self._row(r) for r in self._db.execute("SELECT * FROM leads ORDER BY line")]

    def get(self, ref: str) -> Row:
        found = self._db.execute("SELECT * FROM leads WHERE ref = ?", (ref,)).fetchone()
        if found is None:
            raise KeyError(ref)
        return self._row(found)

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, COUNT(*) FROM leads GROUP BY state").fetchall())

    def transition(self, row: Row, to: str, **fields: Any) -> None:
        """Move ``row`` to ``to`` and commit, updating ``fields``; ``row`` is updated in place.

        Raises :class:`TransitionError` when the state machine forbids it or the stored row is
        no longer in ``row.state`` (someone else moved it).
        """
        if to not in TRANSITIONS.get(row.state, frozenset()):
            raise TransitionError(f"{row.ref}: {row.state} -> {to} is not allowed")
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise TypeError(f"not journal fields: {sorted(unknown)}")
        columns = ", ".join(f"{name} = ?" for name in fields)
        sql = f"UPDATE leads SET state = ?, updated_at = ?{', ' if columns else ''}{columns}"
        sql += " WHERE ref = ? AND state = ?"
        with self._transaction():
            cursor = self._db.execute(sql, (to, time.time(), *fields.values(), row.ref, row.state))
            if cursor.rowcount != 1:
                raise TransitionError(f"{row.ref}: the journal does not hold it as {row.state}")
        row.state = to
        for name, value in fields.items():
            setattr(row, name, value)

    def check_campaign(self, expected: CampaignInfo) -> CampaignInfo:
        """The journal's campaign, refusing one made for another file, number, agent or server.

        A new journal records ``expected`` (its ``campaign_id`` included) and returns it.
        """
        found = self.campaign()
        if found is None:
            return expected
        problems = []
        if found.csv_sha256 != expected.csv_sha256:
            problems.append(
                f"it was written for another CSV ({found.csv_name}, sha256 "
                f"{found.csv_sha256[:12]}...; this one is {expected.csv_sha256[:12]}...)"
            )
        for name, label in (
            ("from_number", "--from-number"),
            ("agent_id", "--agent-id"),
            ("target", "server"),
        ):
            old, new = getattr(found, name), getattr(expected, name)
            if old != new:
                problems.append(f"its {label} was {old or '(none)'!r}, now {new or '(none)'!r}")
        if problems:
            raise JournalError(
                f"{self.path} belongs to campaign {found.campaign_id}, which this run is not: "
                + "; ".join(problems)
                + ". Run with the same file and options to resume it, or pass a new --journal."
            )
        return found

    def _transaction(self) -> _Tx:
        return _Tx(self._db)

    @staticmethod
    def _row(record: sqlite3.Row) -> Row:
        values = {name: record[name] for name in _FIELDS}
        values["variables"] = msgspec.json.decode(values["variables"] or "{}")
        return Row(**values)


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
