"""What the dialer shows: a live progress view on stderr, the final summary, the NDJSON results.

On a terminal the live view is a rich progress bar; otherwise (CI, a pipe, tests) it is a plain
line every ``plain_every`` seconds, so logs stay readable.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from .journal import Row
from .leads import Rejected


@dataclass(frozen=True, slots=True)
class Snapshot:
    total: int
    placed: int
    ongoing: int
    ended: int
    failed: int
    elapsed_s: float
    placed_this_run: int
    #: creates given back to be sent again, failed requests, the latest failure and when
    #: (``time.monotonic()``)
    retries: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    #: creates that may have placed a call, being looked up by list-calls
    looking_up: int = 0

    @property
    def done(self) -> int:
        return self.ended + self.failed

    @property
    def rate(self) -> float:
        return self.placed_this_run / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def trouble(self, now: float | None = None) -> str:
        """Lookups, retries and the latest error, or ``""`` while there are none."""
        parts = []
        if self.looking_up:
            parts.append(f"looking up {self.looking_up} uncertain creates")
        if self.errors or self.retries:
            text = f"retries {self.retries}, errors {self.errors}"
            if self.last_error is not None and self.last_error_at is not None:
                ago = (time.monotonic() if now is None else now) - self.last_error_at
                text += f", last {ago:.0f} s ago: {self.last_error[:120]}"
            parts.append(text)
        return ", ".join(parts)

    def line(self, now: float | None = None) -> str:
        text = (
            f"dial: {self.done}/{self.total} done, placed {self.placed}, ongoing {self.ongoing}, "
            f"ended {self.ended}, failed {self.failed}, {self.rate:.1f} calls/s"
        )
        trouble = self.trouble(now)
        return f"{text}; {trouble}" if trouble else text


class LiveView:
    """Refreshes from ``snapshot()`` until cancelled; :meth:`close` draws the final state."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        stream: TextIO | None = None,
        refresh_s: float = 0.25,
        plain_every_s: float = 5.0,
    ) -> None:
        self._snapshot = snapshot
        self._stream = stream if stream is not None else sys.stderr
        self._refresh_s = refresh_s
        self._plain_every_s = plain_every_s
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._closed = False
        if self._stream.isatty():
            console = Console(file=self._stream)
            self._progress = Progress(
                TextColumn("[bold]dial"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
                auto_refresh=False,
            )

    async def run(self) -> None:
        if self._progress is None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(self._plain_every_s)
                now = time.monotonic()
                if now - last >= self._plain_every_s:
                    print(self._snapshot().line(), file=self._stream, flush=True)
                    last = now
        self._progress.start()
        while True:
            self._draw()
            await asyncio.sleep(self._refresh_s)

    def _draw(self) -> None:
        assert self._progress is not None
        snap = self._snapshot()
        detail = (
            f"placed {snap.placed} · ongoing {snap.ongoing} · ended {snap.ended} · "
            f"failed {snap.failed} · {snap.rate:.1f} calls/s"
        )
        trouble = snap.trouble()
        if trouble:
            detail += f"\n[yellow]{trouble}[/]"
        if self._task is None:
            self._task = self._progress.add_task("dial", total=snap.total, detail=detail)
        self._progress.update(self._task, completed=snap.done, total=snap.total, detail=detail)
        self._progress.refresh()

    def close(self) -> None:
        """Draw the final state and stop; only the first call does anything."""
        if self._closed:
            return
        self._closed = True
        if self._progress is not None:
            if self._progress.live.is_started:
                self._draw()
            self._progress.stop()


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def print_rejected(rejected: list[Rejected], stream: TextIO, *, shown: int = 10) -> None:
    if not rejected:
        return
    print(f"Skipped {len(rejected)} rows of the CSV:", file=stream)
    for item in rejected[:shown]:
        print(f"  line {item.line}: {item.reason}", file=stream)
    if len(rejected) > shown:
        print(f"  ... and {len(rejected) - shown} more (all listed in --out)", file=stream)


def summary_table(rows: Iterable[Row]) -> Table:
    counts: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        if row.state == "rejected":
            detail = "invalid CSV row"
        elif row.state == "failed":
            detail = (row.reason or "")[:60]
        else:
            detail = row.disconnection_reason or ""
        counts[(row.state, row.call_status or "", detail)] += 1
    table = Table(title="Outcome by lead")
    table.add_column("state")
    table.add_column("call_status")
    table.add_column("disconnection_reason / reason")
    table.add_column("leads", justify="right")
    for (state, status, detail), count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(state, status, detail, str(count))
    return table


def print_summary(
    rows: list[Row],
    *,
    create_ms: list[float],
    elapsed_s: float,
    placed: int,
    stream: TextIO | None = None,
) -> None:
    out = stream if stream is not None else sys.stdout
    console = Console(file=out, highlight=False, width=None if out.isatty() else 100)
    console.print(summary_table(rows))
    p50, p99 = percentile(create_ms, 0.50), percentile(create_ms, 0.99)
    if p50 is not None and p99 is not None:
        console.print(
            f"create latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(create_ms)} creates"
            " (time in the client, so any wait for the --cps pace counts)"
        )
    rate = placed / elapsed_s if elapsed_s > 0 else 0.0
    console.print(f"{placed} calls placed in {elapsed_s:.1f} s ({rate:.1f} calls/s)")


def write_ndjson(path: Path, rows: Iterable[Row]) -> None:
    """One line per lead with its final state, written whole then renamed into place."""
    encoder = msgspec.json.Encoder()
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as file:
        for row in rows:
            record = {
                "line": row.line,
                "ref": row.ref,
                "to_number": row.to_number,
                "state": row.state,
                "call_id": row.call_id,
                "call_status": row.call_status,
                "disconnection_reason": row.disconnection_reason,
                "attempts": row.attempt if row.state != "rejected" else 0,
                "requeues": row.requeues,
                "redials": row.redials,
                "retries": row.retries,
                "reason": row.reason,
                "create_ms": None if row.create_ms is None else round(row.create_ms, 2),
                "variables": row.variables,
            }
            file.write(encoder.encode(record) + b"\n")
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
