"""``aioretell llm-test URL``: drive a custom-LLM server the way Retell would, and measure it.

Runs ``--calls`` conversations at once, each a :class:`~aioretell.llm.retell_side.RetellSide`
playing the script (``--script``, JSON or YAML; a built-in one otherwise) against
``URL/{call_id}``, then prints per-turn first-chunk and full-response latency (p50/p90/p99),
ping round trips, stale answers (sent for a ``response_id`` the server knew was superseded),
protocol violations, how the conversations ended, and one transcript.

Exit status: 0 when every conversation ended without a socket error, every turn was answered
and there were no stale answers or violations; 1 otherwise; 2 for bad arguments or script;
130 on Ctrl-C (after printing what was measured so far).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import anyio

from .latency import latency_stats
from .retell_side import (
    ConversationResult,
    RetellSide,
    RetellTimings,
    websocket_url,
)
from .script import DEFAULT_SCRIPT, ConversationScript, ScriptError, load_script

__all__ = ["LLMTestReport", "add_arguments", "main", "run", "run_conversations"]

PROG = "aioretell llm-test"
MAX_CALLS = 10_000
MAX_SECONDS = 3600.0
#: How calls end when nothing went wrong.
NORMAL_ENDS = frozenset({"user_hangup", "agent_hangup", "call_transfer"})
#: Files the process needs besides the conversations' sockets (interpreter, event loop).
_SPARE_FILES = 64


# -- arguments --------------------------------------------------------------------------------


def _calls(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_CALLS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_CALLS}, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_SECONDS:g} seconds, got {text}"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url",
        metavar="URL",
        help="the server's llm_websocket_url (ws:// or wss://); each conversation opens "
        "URL/{call_id}",
    )
    parser.add_argument(
        "--script",
        type=Path,
        default=None,
        metavar="FILE",
        help="the conversation to play, JSON or YAML (YAML needs aioretell[llm-test]); "
        "default: a built-in 4-turn script with a barge-in",
    )
    parser.add_argument(
        "--calls", type=_calls, default=1, metavar="N", help="conversations to run at once"
    )
    parser.add_argument(
        "--ping-interval",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="between pings when the server asks for auto_reconnect (no echo for 2.5 "
        "intervals: connection lost)",
    )
    parser.add_argument(
        "--response-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="wait this long for a complete answer before the turn counts as unanswered",
    )
    parser.add_argument(
        "--open-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="for connecting and the WebSocket handshake",
    )


# -- running ----------------------------------------------------------------------------------


async def run_conversations(
    url: str,
    script: ConversationScript,
    *,
    calls: int = 1,
    timings: RetellTimings | None = None,
    sides: list[RetellSide] | None = None,
) -> list[ConversationResult]:
    """Run ``calls`` conversations at once against ``url``; their results, in order.

    ``sides``, if given, receives the drivers as they are made, so a caller that is
    cancelled can still read what each had measured.
    """
    if calls < 1:
        raise ValueError(f"calls must be at least 1, got {calls}")
    websocket_url(url, "call")  # a bad URL fails here, before any connection
    batch = secrets.token_hex(4)
    made = [] if sides is None else sides
    # No connection limit: each conversation holds one WebSocket for its whole length.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for index in range(calls):
            made.append(
                RetellSide(
                    session, url, f"call_llmtest_{batch}_{index:05d}", script, timings=timings
                )
            )
        async with anyio.create_task_group() as group:
            for side in made:
                group.start_soon(_play, side)
    return [side.result for side in made]


async def _play(side: RetellSide) -> None:
    """One conversation; a failure of our own ends it (``error_retell``) instead of the run."""
    try:
        await side.run()
    except Exception as exc:  # noqa: BLE001 - recorded on the conversation and reported
        cause = _first_leaf(exc)
        side.hang_up("error_retell", f"llm-test failed: {type(cause).__name__}: {cause}")


def _first_leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups; anyio wraps task errors in one."""
    inner = getattr(exc, "exceptions", None)
    while isinstance(inner, tuple) and inner:
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return exc


# -- the report -------------------------------------------------------------------------------


@dataclass
class LLMTestReport:
    """What ``llm-test`` measured over all conversations."""

    results: list[ConversationResult]
    reasons: Counter[str] = field(default_factory=Counter)
    first_chunk_ms: list[float] = field(default_factory=list)
    full_response_ms: list[float] = field(default_factory=list)
    begin_ms: list[float] = field(default_factory=list)
    ping_rtt_ms: list[float] = field(default_factory=list)
    turns_asked: int = 0
    turns_answered: int = 0
    turns_cut_short: int = 0
    stale: int = 0
    late: int = 0
    violations: Counter[str] = field(default_factory=Counter)
    violation_examples: dict[str, str] = field(default_factory=dict)
    error_examples: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Iterable[ConversationResult]) -> LLMTestReport:
        report = cls(list(results))
        for result in report.results:
            report._add(result)
        return report

    def _add(self, result: ConversationResult) -> None:
        reason = result.disconnection_reason or "(still running when stopped)"
        self.reasons[reason] += 1
        if reason not in NORMAL_ENDS and result.detail:
            self.error_examples.setdefault(reason, result.detail)
        for turn in result.turns:
            self.turns_asked += 1
            self.turns_answered += turn.answered
            self.turns_cut_short += turn.interrupted
            if turn.kind == "begin":
                if turn.first_chunk_s is not None:
                    self.begin_ms.append(turn.first_chunk_s * 1000)
                continue
            if turn.first_chunk_s is not None:
                self.first_chunk_ms.append(turn.first_chunk_s * 1000)
            if turn.complete_s is not None:
                self.full_response_ms.append(turn.complete_s * 1000)
        self.ping_rtt_ms.extend(rtt * 1000 for rtt in result.ping_rtts_s)
        self.stale += result.stale_responses
        self.late += result.late_responses
        kept = Counter(v.kind for v in result.violations)
        kept[""] = result.violation_count - len(result.violations)
        for kind, count in kept.items():
            if count > 0:
                self.violations[kind or "(more, not kept)"] += count
        for violation in result.violations:
            self.violation_examples.setdefault(violation.kind, violation.detail)

    @property
    def unanswered(self) -> int:
        return self.turns_asked - self.turns_answered

    @property
    def failed_calls(self) -> Counter[str]:
        """Conversations that did not end the way a call normally does, by reason."""
        return Counter(
            {reason: n for reason, n in self.reasons.items() if reason not in NORMAL_ENDS}
        )

    @property
    def passed(self) -> bool:
        return (
            not self.failed_calls
            and self.unanswered == 0
            and self.stale == 0
            and not self.violations
        )

    def problems(self) -> list[str]:
        found = [
            f"{_count(n, 'conversation')} ended with {reason}"
            for reason, n in self.failed_calls.most_common()
        ]
        if self.unanswered:
            found.append(f"{_count(self.unanswered, 'turn')} unanswered")
        if self.stale:
            found.append(f"{_count(self.stale, 'stale response')}")
        if self.violations:
            found.append(f"{_count(sum(self.violations.values()), 'protocol violation')}")
        return found


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _stats_row(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name:<16} {'-':>9} {'-':>9} {'-':>9} {'-':>9} {0:>7}"
    stats = latency_stats(values)
    numbers = " ".join(f"{stats[name]:9.2f}" for name in ("p50", "p90", "p99", "max"))
    return f"  {name:<16} {numbers} {len(values):>7}"


def print_report(
    report: LLMTestReport, *, url: str, script_name: str, out: TextIO, interrupted: bool = False
) -> None:
    def say(line: str = "") -> None:
        print(line, file=out)

    results = report.results
    say(f"{_count(len(results), 'conversation')} with {url} ({script_name})")
    reasons = ", ".join(f"{count} {reason}" for reason, count in report.reasons.most_common())
    say(f"ended: {reasons}")
    for reason, detail in sorted(report.error_examples.items()):
        say(f"  {reason}, e.g.: {detail}")
    say(
        f"turns: {report.turns_asked} asked, {report.turns_answered} answered "
        f"({report.turns_cut_short} cut short by a barge-in), {report.unanswered} unanswered"
    )
    say(f"latency (ms)       {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9} {'n':>7}")
    say(_stats_row("first chunk", report.first_chunk_ms))
    say(_stats_row("full response", report.full_response_ms))
    say(_stats_row("begin message", report.begin_ms))
    say(_stats_row("ping round trip", report.ping_rtt_ms))
    say(f"stale responses (sent after being superseded): {report.stale}")
    say(f"late chunks of superseded responses (may have crossed on the wire): {report.late}")
    total = sum(report.violations.values())
    say(f"protocol violations: {total}")
    for kind, count in report.violations.most_common():
        example = report.violation_examples.get(kind)
        say(f"  {count} x {kind}" + (f", e.g. {example}" if example else ""))
    shown = next((r for r in results if r.transcript), None)
    if shown is not None:
        say(f"transcript of {shown.call_id}:")
        for item in shown.transcript:
            if item.role in ("agent", "user"):
                if item.content:
                    say(f"  {item.role.capitalize()}: {item.content}")
            else:
                what = item.name or item.content or ""
                say(f"  [{item.role} {item.tool_call_id}] {what}")
    if interrupted:
        say("interrupted: these are the numbers measured until Ctrl-C")
    elif report.passed:
        say("OK: every turn answered, no stale responses, no protocol violations")
    else:
        say("FAILED: " + "; ".join(report.problems()))


def _print_to(out: TextIO, report: LLMTestReport, **options: Any) -> None:
    """:func:`print_report`, quietly stopping if the reader goes away (``| head``)."""
    try:
        print_report(report, out=out, **options)
        out.flush()
    except BrokenPipeError:
        if out is sys.stdout:  # so that the interpreter's final flush does not fail too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _open_files_limit() -> int | None:
    """This process's limit on open files, if it has one (POSIX)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def _script(args: argparse.Namespace) -> tuple[ConversationScript, str]:
    if args.script is None:
        return DEFAULT_SCRIPT, f"built-in script, {_count(DEFAULT_SCRIPT.user_turns, 'user turn')}"
    script = load_script(args.script)
    return script, f"script {args.script}, {_count(script.user_turns, 'user turn')}"


def run(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Carry out ``llm-test`` for parsed ``args``; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        websocket_url(args.url, "call")
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=err)
        return 2
    try:
        script, script_name = _script(args)
    except ScriptError as exc:
        print(f"{PROG}: {exc}", file=err)
        return 2
    limit = _open_files_limit()
    if limit is not None and args.calls + _SPARE_FILES > limit:
        print(
            f"{PROG}: --calls {args.calls} needs a socket each, but this process may open only "
            f"{limit} files (raise the limit with 'ulimit -n')",
            file=err,
        )
        return 2
    timings = RetellTimings(
        ping_interval_s=args.ping_interval,
        ping_timeout_s=2.5 * args.ping_interval,
        open_timeout_s=args.open_timeout,
        response_timeout_s=args.response_timeout,
    )
    sides: list[RetellSide] = []
    try:
        asyncio.run(
            run_conversations(args.url, script, calls=args.calls, timings=timings, sides=sides)
        )
    except KeyboardInterrupt:
        report = LLMTestReport.of(side.result for side in sides)
        if report.results:
            _print_to(out, report, url=args.url, script_name=script_name, interrupted=True)
        print(f"{PROG}: interrupted", file=err)
        return 130
    report = LLMTestReport.of(side.result for side in sides)
    if report.reasons.get("error_llm_websocket_open") == len(report.results):
        detail = report.error_examples.get("error_llm_websocket_open", "")
        print(f"{PROG}: cannot open {args.url}: {detail}", file=err)
        return 1
    _print_to(out, report, url=args.url, script_name=script_name)
    return 0 if report.passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m aioretell.llm.llm_test``: the same as ``aioretell llm-test``."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
