"""The Retell emulator ``aioretell dial`` runs in-process without an API key, and its record.

The emulator keeps its account in memory, which a rerun of the dialer would not find. So its
calls (their ids, metadata, idempotency keys, timings) are written to a file beside the journal
(``leads.journal.db`` -> ``leads.journal.emulator.ndjson``) as each is made, before the
create is answered, and the next run's emulator starts with them. A rerun after Ctrl-C or a
crash therefore resumes exactly as it would against Retell: calls are looked up by metadata,
followed to their end, and a create sent again with the same idempotency key gets the call it
made. A create the record does not have was never answered, and its emulator is gone: it
cannot land later, so the dialer's grace period for list-calls is zero here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
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
    return journal.with_name(f"{journal.stem}.emulator.ndjson")


class CallRecordFile:
    """An emulator's calls in an append-only file of JSON lines, one per call made or stopped
    (the last line about a call wins): loaded into a fresh state, then kept current.

    Each line is written with one ``write`` before the create is answered: it survives the
    process being killed (not a power loss; nothing real is at stake).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(CallRecord)
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"{path}: cannot open the emulator's record ({exc})") from None

    def load_into(self, state: EmulatorState) -> int:
        """Restore every recorded call into ``state``; returns how many."""
        calls: dict[str, CallRecord] = {}
        try:
            lines = self.path.read_bytes().splitlines()
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot read the emulator's record ({exc})") from None
        for number, line in enumerate(lines, 1):
            try:
                call = self._decoder.decode(line)
            except msgspec.DecodeError as exc:
                if number == len(lines):
                    break  # a line cut short by a kill: its create was never answered
                raise JournalError(
                    f"{self.path}: line {number} of the emulator's record is damaged ({exc})"
                ) from None
            calls[call.call_id] = call
        for call in calls.values():
            state.restore_call(call)
        return len(calls)

    def record(self, state: EmulatorState) -> None:
        """Write each call ``state`` makes or stops from now on, as it happens."""
        state.lifecycle_listeners.append(self._changed)

    def _changed(self, change: str, record: CallRecord | ChatRecord) -> None:
        if isinstance(record, CallRecord):
            os.write(self._fd, self._encoder.encode(record) + b"\n")

    def close(self) -> None:
        os.close(self._fd)


def forget_record(path: Path) -> None:
    """Remove a record (a new campaign's emulator starts empty)."""
    path.unlink(missing_ok=True)


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
