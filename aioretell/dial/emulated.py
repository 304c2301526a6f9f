"""The Retell emulator ``aioretell dial`` runs in-process without an API key, and its record.

The emulator keeps its account in memory, which a rerun of the dialer would not find. So its
calls (their ids, metadata, idempotency keys, timings) are written to a SQLite file beside the
journal (``leads.journal.db`` -> ``leads.journal.emulator.db``) as each is made, before the
create is answered, and the next run's emulator starts with them. A rerun after Ctrl-C or a
crash therefore resumes exactly as it would against Retell: calls are looked up by metadata,
followed to their end, and a create sent again with the same idempotency key gets the call it
made. A create the record does not have was never answered, and its emulator is gone: it
cannot land later, so the dialer's grace period for list-calls is zero here.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from ..emulator import Emulator, EmulatorConfig
from ..emulator.state import CallRecord, ChatRecord, EmulatorState
from .journal import JournalError

EMULATOR_KEY = "key_dial_emulator"
IN_PROCESS = "in-process emulator"
#: Short calls, room for a few hundred at once, and a few numbers with a fixed outcome so the
#: summary shows more than hang-ups.
EMULATOR_CALL_S = 2.0
EMULATOR_CONCURRENCY = 300
EMULATOR_OUTCOMES = (("13", "dial_busy"), ("37", "dial_no_answer"), ("99", "invalid_destination"))


def record_path(journal: Path) -> Path:
    """Where the in-process emulator of the campaign in ``journal`` keeps its calls."""
    return journal.with_name(f"{journal.stem}.emulator.db")


class CallRecordFile:
    """An emulator's calls in a SQLite file: loaded into a fresh state, then kept current."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._encoder = msgspec.json.Encoder()
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open the emulator's record ({exc})") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # survives the process being killed
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS calls (call_id TEXT PRIMARY KEY, call TEXT NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{path}: not an emulator record ({exc})") from None

    def load_into(self, state: EmulatorState) -> int:
        """Restore every recorded call into ``state``; returns how many."""
        count = 0
        try:
            for (text,) in self._db.execute("SELECT call FROM calls ORDER BY rowid"):
                state.restore_call(msgspec.json.decode(text, type=CallRecord))
                count += 1
        except (sqlite3.DatabaseError, msgspec.DecodeError) as exc:
            raise JournalError(f"{self.path}: the emulator's record is damaged ({exc})") from None
        return count

    def record(self, state: EmulatorState) -> None:
        """Write each call ``state`` makes or stops from now on, as it happens."""
        state.lifecycle_listeners.append(self._changed)

    def _changed(self, change: str, record: CallRecord | ChatRecord) -> None:
        if isinstance(record, CallRecord):
            self._db.execute(
                "INSERT OR REPLACE INTO calls (call_id, call) VALUES (?, ?)",
                (record.call_id, self._encoder.encode(record).decode()),
            )

    def close(self) -> None:
        self._db.close()


def forget_record(path: Path) -> None:
    """Remove a record (a new campaign's emulator starts empty)."""
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        path.with_name(name).unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def in_process_emulator(
    record: Path, *, webhook_url: str | None = None, fresh: bool = False
) -> AsyncIterator[Emulator]:
    """A running emulator whose calls live in ``record`` (emptied first when ``fresh``)."""
    if fresh:
        forget_record(record)
    config = EmulatorConfig(
        api_key=EMULATOR_KEY,
        call_duration_s=EMULATOR_CALL_S,
        concurrency_limit=EMULATOR_CONCURRENCY,
        outcomes_by_suffix=EMULATOR_OUTCOMES,
        webhook_url=webhook_url,
        # Fresh ids each run, so they never collide with the restored ones.
        seed=secrets.randbits(63),
    )
    emulator = Emulator(config)
    calls = CallRecordFile(record)
    try:
        calls.load_into(emulator.state)
        calls.record(emulator.state)
        async with emulator:
            yield emulator
    finally:
        calls.close()
