"""What a chaos run must show, computed from the emulator's own record (pure functions).

The record is what Retell would know: every call created (its number, when it was created,
when it ended, whether it got a line) and every answer to a create (its time and status). None
of it comes from the dialers, so a dialer that miscounts cannot hide a double dial or a burst.
"""

from __future__ import annotations

import heapq
import itertools
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aioretell.emulator.state import CallRecord
from benchmarks.shared_pacing import max_in_window

CREATE = "createPhoneCall"
#: Why a create got no line because the account was full: the fleet asked for one call more
#: than the limit allows.
OVER_LIMIT = "concurrency_limit_reached"


@dataclass(frozen=True, slots=True)
class CallSpan:
    """One call the account made: it holds a slot from ``start`` to ``end`` unless it was
    refused one (``admitted`` false: the account was full). ``counted_at``: when its create
    arrived and the calls-per-second window counted it (``start`` unless the create was held
    before being handled)."""

    to_number: str
    start: float
    end: float
    admitted: bool = True
    counted_at: float | None = None

    @classmethod
    def of(cls, call: CallRecord, arrived: float | None = None) -> CallSpan:
        return cls(
            to_number=call.to_number or "",
            start=call.created_at,
            end=call.end_at if call.rejected_reason is None else call.created_at,
            admitted=call.rejected_reason != OVER_LIMIT,
            counted_at=arrived,
        )

    @property
    def counted(self) -> float:
        return self.start if self.counted_at is None else self.counted_at


@dataclass(frozen=True, slots=True)
class Dialing:
    """How often each lead was dialled."""

    leads: int
    dialed_once: int
    #: leads never dialled
    missing: tuple[str, ...]
    #: number -> times dialled, for leads dialled more than once
    repeated: dict[str, int]
    #: numbers dialled that are not leads
    strangers: tuple[str, ...]

    @property
    def exactly_once(self) -> bool:
        return self.dialed_once == self.leads and not self.repeated and not self.strangers


def dialing(leads: Iterable[str], dialed: Iterable[str]) -> Dialing:
    """Compare the lead numbers with every number the account dialled (repeats included)."""
    wanted = set(leads)
    times = Counter(dialed)
    return Dialing(
        leads=len(wanted),
        dialed_once=sum(1 for n in wanted if times[n] == 1),
        missing=tuple(sorted(n for n in wanted if times[n] == 0)),
        repeated={n: c for n, c in sorted(times.items()) if c > 1 and n in wanted},
        strangers=tuple(sorted(n for n in times if n not in wanted)),
    )


def peak_live_calls(spans: Iterable[CallSpan]) -> int:
    """The most calls the fleet had live at once, counting a create refused a line as one
    more than were live when it arrived (it asked for a slot the account did not have).

    A call holds its slot over ``[start, end)``: one ending at the instant another starts has
    freed it, as the emulator counts.
    """
    ends: list[float] = []
    peak = 0
    for span in sorted(spans, key=lambda s: s.start):
        while ends and ends[0] <= span.start:
            heapq.heappop(ends)
        peak = max(peak, len(ends) + 1)
        if span.admitted and span.end > span.start:
            heapq.heappush(ends, span.end)
    return peak


def refused_a_line(spans: Iterable[CallSpan]) -> int:
    """Creates that got no line because the account was already full."""
    return sum(1 for span in spans if not span.admitted)


def busiest_second(starts: Sequence[float]) -> int:
    """The most creates in any one-second window."""
    return max_in_window(starts, 1.0) if starts else 0


@dataclass(frozen=True, slots=True)
class CreateAnswers:
    """The account's answers to create requests: accepted (2xx) and refused for the rate."""

    accepted: int
    rate_limited: int
    other: int

    @property
    def rate_limited_share(self) -> float:
        total = self.accepted + self.rate_limited + self.other
        return self.rate_limited / total if total else 0.0


def create_answers(timeline: Iterable[tuple[float, str, int]]) -> CreateAnswers:
    """Count the answers to creates in the emulator's timeline ``(time, operation, status)``."""
    statuses = Counter(status for _, op, status in timeline if op == CREATE)
    accepted = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return CreateAnswers(accepted, statuses[429], sum(statuses.values()) - accepted - statuses[429])


def mean_hold(spans: Iterable[CallSpan]) -> float:
    """Mean seconds a call holds a slot (creation to end, ringing included)."""
    held = [s.end - s.start for s in spans if s.admitted and s.end > s.start]
    return statistics.fmean(held) if held else math.nan


def binding_rate(cps: float, concurrency: int, hold_s: float) -> float:
    """Creates per second the account allows at best: the rate cap, or the slots turned over
    as fast as calls end, whichever is lower."""
    return min(cps, concurrency / hold_s)


def throughput(starts: Sequence[float]) -> float:
    """Creates per second from the first create to the last."""
    if len(starts) < 2:
        return math.nan
    span = max(starts) - min(starts)
    return (len(starts) - 1) / span if span > 0 else math.inf


@dataclass(frozen=True, slots=True)
class Stretch:
    """What the account saw over one stretch of the run."""

    start: float
    created: int
    rate_limited: int
    #: live calls, averaged over the stretch
    mean_live: float


def stretches(
    spans: Sequence[CallSpan],
    timeline: Sequence[tuple[float, str, int]],
    *,
    every: float = 10.0,
) -> list[Stretch]:
    """The run cut into stretches of ``every`` seconds from its first create: calls created,
    creates answered 429, and the live calls averaged over the stretch."""
    if not spans:
        return []
    origin = min(s.start for s in spans)
    last = max(max(s.end for s in spans), max((t for t, *_ in timeline), default=origin))
    count = max(1, math.ceil((last - origin) / every))
    created = [0] * count
    limited = [0] * count
    live = [0.0] * count

    def index(t: float) -> int:
        return min(count - 1, max(0, int((t - origin) // every)))

    for span in spans:
        created[index(span.start)] += 1
    for t, op, status in timeline:
        if op == CREATE and status == 429 and t >= origin:
            limited[index(t)] += 1
    for span in spans:
        if not span.admitted or span.end <= span.start:
            continue
        for i in range(index(span.start), index(span.end) + 1):
            low = origin + i * every
            overlap = min(span.end, low + every) - max(span.start, low)
            if overlap > 0:
                live[i] += overlap / every
    return [Stretch(i * every, created[i], limited[i], live[i]) for i in range(count)]


def stretch_table(rows: Sequence[Stretch], every: float = 10.0) -> str:
    lines = [
        "| seconds from the first create | calls created | per second | creates answered 429 "
        "| live calls (mean) |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.start:.0f}-{r.start + every:.0f} | {r.created} | {r.created / every:.1f} | "
        f"{r.rate_limited} | {r.mean_live:.1f} |"
        for r in rows
    ]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class SlotTime:
    """Where the time a lead holds one of the fleet's slots goes, in mean seconds per lead:
    the admission counts a lead live from its claim until the journal records its end."""

    leads: int
    #: from its claim until its create reached the account
    to_account: float
    #: from its create until its call ended (the account's own slot)
    on_line: float
    #: from its call's end until the journal recorded it
    to_journal: float
    #: ``to_journal``'s 90th percentile
    to_journal_p90: float

    @property
    def held(self) -> float:
        return self.to_account + self.on_line + self.to_journal


def slot_time(
    spans: Iterable[CallSpan], journal: Mapping[str, tuple[float, float]]
) -> SlotTime | None:
    """:class:`SlotTime` of the calls in ``spans`` that got a line, matched by number to
    ``journal``: ``to_number -> (claimed at, end recorded at)`` (epoch seconds)."""
    rows = [(journal[s.to_number], s) for s in spans if s.admitted and s.to_number in journal]
    if not rows:
        return None
    lags = sorted(recorded - span.end for (_, recorded), span in rows)
    return SlotTime(
        leads=len(rows),
        to_account=statistics.fmean(span.start - claimed for (claimed, _), span in rows),
        on_line=statistics.fmean(span.end - span.start for _, span in rows),
        to_journal=statistics.fmean(lags),
        to_journal_p90=lags[min(len(lags) - 1, int(len(lags) * 0.9))],
    )


def answer_gaps(timeline: Iterable[tuple[float, str, int]], operation: str) -> list[float]:
    """Seconds between consecutive answers to ``operation`` in the emulator's timeline."""
    times = sorted(t for t, op, _ in timeline if op == operation)
    return [b - a for a, b in itertools.pairwise(times)]


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the verdict: what was measured, what it must be, and whether it is."""

    name: str
    value: str
    target: str
    #: ``None``: shown for information, nothing to pass
    ok: bool | None


@dataclass(frozen=True, slots=True)
class Limits:
    concurrency: int
    cps: int
    #: the most creates answered 429, as a share of all create answers
    max_rate_limited_share: float = 0.01
    #: the least throughput, as a share of the binding limit; ``None``: not checked
    min_throughput_share: float | None = 0.9


def verdict(
    *,
    leads: Sequence[str],
    spans: Sequence[CallSpan],
    timeline: Sequence[tuple[float, str, int]],
    unfinished: int,
    limits: Limits,
    requests: Sequence[float] = (),
) -> list[Check]:
    """Every check of a chaos run, from the emulator's record and the journal's count of
    leads not in a final state. ``requests``: when each create request arrived, accepted or
    not (shown, not checked: the 429 share is what says whether the fleet kept its pace)."""
    dial = dialing(leads, (s.to_number for s in spans))
    peak = peak_live_calls(spans)
    starts = [s.start for s in spans]
    burst = busiest_second([s.counted for s in spans])
    answers = create_answers(timeline)
    checks = [
        Check(
            "leads dialled exactly once",
            f"{dial.dialed_once:,} of {dial.leads:,}"
            + (f"; twice or more: {len(dial.repeated)}" if dial.repeated else "")
            + (f"; never: {len(dial.missing)}" if dial.missing else "")
            + (f"; not leads: {len(dial.strangers)}" if dial.strangers else ""),
            f"{dial.leads:,} of {dial.leads:,}",
            dial.exactly_once,
        ),
        Check(
            "most live calls at once (creates refused a line count as one more)",
            f"{peak} ({refused_a_line(spans)} refused a line)",
            f"≤ {limits.concurrency}",
            peak <= limits.concurrency,
        ),
        Check(
            "most calls created in any 1 s window (by when their create arrived)",
            str(burst),
            f"≤ {limits.cps}",
            burst <= limits.cps,
        ),
        Check(
            "creates answered 429",
            f"{answers.rate_limited} of {answers.accepted + answers.rate_limited + answers.other}"
            f" ({answers.rate_limited_share:.2%})",
            f"< {limits.max_rate_limited_share:.0%}",
            answers.rate_limited_share < limits.max_rate_limited_share,
        ),
        Check(
            "leads not in a final state (journal)",
            str(unfinished),
            "0",
            unfinished == 0,
        ),
    ]
    if requests:
        checks.append(
            Check(
                "most create requests in any 1 s window, accepted or refused",
                str(busiest_second(requests)),
                "",
                None,
            )
        )
    if limits.min_throughput_share is not None:
        hold = mean_hold(spans)
        best = binding_rate(limits.cps, limits.concurrency, hold)
        rate = throughput(starts)
        share = rate / best
        checks.append(
            Check(
                "throughput, first create to last",
                f"{rate:.1f}/s = {share:.0%} of {best:.1f}/s "
                f"(min({limits.cps}/s, {limits.concurrency} / {hold:.2f} s mean hold))",
                f"≥ {limits.min_throughput_share:.0%}",
                share >= limits.min_throughput_share,
            )
        )
    return checks


def table(checks: Sequence[Check]) -> str:
    """The checks as a markdown table."""
    lines = ["| check | measured | target | |", "| --- | --- | --- | --- |"]
    marks = {True: "ok", False: "FAILED", None: ""}
    lines += [f"| {c.name} | {c.value} | {c.target} | {marks[c.ok]} |" for c in checks]
    return "\n".join(lines)
