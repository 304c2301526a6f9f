"""The chaos run: several ``aioretell dial`` workers on one PostgreSQL campaign, one account,
and the faults of a bad day.

``python -m benchmarks.scale_out [--leads 3000] [--workers 4] [--no-redis] [--keep]``

An emulator runs in this process on a real socket, as one Retell account: ``--concurrency``
live calls (50) and ``--cps`` creates per second (25, a sliding one-second window answering
429), each call lasting a duration drawn from ``--durations`` (1 to 3 s). ``--workers`` worker
processes run ``python -m aioretell dial LEADS.csv --journal postgresql://... --campaign NAME``
against it, in a PostgreSQL schema of the run's own, pacing through a ``redis-server`` of the
run's own (``--redis``) unless ``--no-redis``. While they work:

1. once creates flow, the next create the emulator receives is held by a delay fault, and
   the worker that sent it is ``kill -9``-ed while it waits (the create is still made: the
   call exists, and nobody heard the answer);
2. later, another worker is caught the same way but ``SIGSTOP``-ped, for longer than its
   claims' lease, then ``SIGCONT``-ed (its held create is made while it is stopped: the claim
   must be taken over, the call found, and the worker fenced out when it wakes);
3. later still, the Redis server is killed and started again, empty.

Afterwards, from the emulator's own record: every lead dialled exactly once, never more live
calls than the limit, no one-second window with more creates than the rate, under 1% of creates
answered 429, every lead final in the journal, and the throughput against what the binding
limit allows. Writes the ``scale-out`` section of docs/benchmarks.md (default sizes only).
Needs PostgreSQL (``$AIORETELL_TEST_POSTGRES``) and, for the Redis variant, ``redis-server``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from aioretell.dial.journal import DISPATCHING, TERMINAL
from aioretell.dial.journal_postgres import PostgresJournal, redact
from aioretell.emulator import Emulator, EmulatorConfig
from benchmarks import sections
from benchmarks.chaos import (
    CaughtMidCreate,
    CreateTracker,
    Fleet,
    LoopLag,
    PrivateRedis,
    freeze_mid_create,
    kill_mid_create,
)
from benchmarks.chaos_checks import (
    CallSpan,
    Check,
    Limits,
    SlotTime,
    Stretch,
    answer_gaps,
    slot_time,
    stretch_table,
    stretches,
    table,
    verdict,
)

KEY = "key_scale_out_chaos"
#: The checkout the workers run (``python -m aioretell`` from it, not an installed copy).
REPO = Path(__file__).resolve().parent.parent
FROM = "+14155550100"
POSTGRES_URL = os.environ.get(
    "AIORETELL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


class SetupError(Exception):
    """The run could not be set up (a service missing); the message is one line."""


@dataclass(frozen=True)
class Plan:
    """The size of a chaos run and when its faults happen."""

    leads: int = 3000
    workers: int = 4
    concurrency: int = 50
    cps: int = 25
    durations: tuple[float, float] = (1.0, 3.0)
    #: pace through a redis-server of the run's own, and restart it empty mid-run
    redis: bool = True
    #: seconds a claim lasts without its worker's heartbeat (the workers' ``--lease-ttl``)
    lease_ttl_s: float = 10.0
    #: how long the frozen worker stays stopped, beyond its lease
    freeze_beyond_lease_s: float = 3.0
    #: how long the emulator holds the create of the worker that is killed
    hold_s: float = 2.0
    #: how long Redis stays down
    redis_down_s: float = 1.0
    #: share of the leads created before each fault
    kill_at: float = 0.15
    freeze_at: float = 0.30
    redis_restart_at: float = 0.55
    #: the workers' ``--poll-interval`` and ``--lookup-grace``. With both limits binding, the
    #: leader's reading cadence is what a slot waits after its call ends: 0.25 s gave 87% of
    #: the limit here, 0.1 s 89-90%, 0.05 s 90-92% (the emulator then spends 40% of a core on
    #: the leader's polls). The leader alone makes these requests, 20 a second at 0.1 s.
    poll_interval_s: float = 0.1
    lookup_grace_s: float = 1.0
    seed: int = 12
    #: the longest the whole run may take
    timeout_s: float = 900.0
    #: the throughput check (``None``: not made)
    min_throughput_share: float | None = 0.9


@dataclass
class Result:
    plan: Plan
    checks: list[Check]
    wall_s: float
    #: CPU seconds of this process (the emulator and the harness) over the run
    emulator_cpu_s: float
    #: how late the emulator's event loop woke (median, p99, max seconds)
    loop_lag_s: tuple[float, float, float]
    exit_codes: list[int]
    killed: CaughtMidCreate | None
    #: how many calls the killed worker's held create made for its number (1: found, not redialled)
    killed_number_calls: int
    frozen: CaughtMidCreate | None
    #: seconds the frozen worker stayed stopped
    frozen_s: float
    #: the frozen worker's claim (the lead of its held create) just before it woke:
    #: ``(state, owner)`` in the journal
    frozen_claim: tuple[str, str | None] | None
    frozen_number_calls: int
    redis_restarts: int
    journal_counts: dict[str, int]
    events: list[str] = field(default_factory=list)
    logs: Path | None = None
    #: the run in 10 s stretches, from the emulator's record
    pace: list[Stretch] = field(default_factory=list)
    #: where a lead's slot time went (the journal's rows against the emulator's calls)
    slot: SlotTime | None = None
    #: seconds between the emulator's answers to get-concurrency, and to list-calls
    reading_gaps: list[float] = field(default_factory=list)
    listing_gaps: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks) and self.worker_problems() == []

    def worker_problems(self) -> list[str]:
        """Workers that ended otherwise than expected: the killed one by SIGKILL, every other
        with status 0 (the campaign finished)."""
        problems = []
        for i, code in enumerate(self.exit_codes):
            expected = -9 if self.killed is not None and i == self.killed.index else 0
            if code != expected:
                problems.append(f"worker {i} exited with {code}, expected {expected}")
        return problems


def lead_numbers(count: int) -> list[str]:
    return [f"+1646{i:07d}" for i in range(count)]


def write_leads(path: Path, numbers: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["phone_number,name", *(f"{n},Lead {i}" for i, n in enumerate(numbers))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (the journal creates its tables there)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextlib.asynccontextmanager
async def own_schema(url: str) -> AsyncIterator[str]:
    """A PostgreSQL schema of this run's own, dropped afterwards; yields its URL."""
    import psycopg

    schema = f"chaos_{uuid.uuid4().hex[:12]}"
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SetupError(f"cannot use PostgreSQL at {redact(url)}: {first}") from None
    async with conn:
        await conn.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield with_schema(url, schema)
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


def worker_argv(
    plan: Plan, i: int, leads: Path, dsn: str, campaign: str, base_url: str, redis: str | None
) -> list[str]:
    argv = [
        sys.executable, "-m", "aioretell", "dial", str(leads),
        "--from-number", FROM, "--yes",
        "--journal", dsn, "--campaign", campaign, "--worker-id", f"chaos-{i}",
        "--base-url", base_url,
        "--cps", f"{plan.cps:g}", "--concurrency", str(plan.concurrency),
        "--poll-interval", f"{plan.poll_interval_s:g}",
        "--lookup-grace", f"{plan.lookup_grace_s:g}",
        "--lease-ttl", f"{plan.lease_ttl_s:g}",
    ]  # fmt: skip
    if redis is not None:
        argv += ["--redis", redis]
    return argv


async def _until_created(emulator: Emulator, count: int, fleet: Fleet) -> None:
    """Wait until the account has made ``count`` calls (or every worker has stopped)."""
    while len(emulator.state.dialed_numbers()) < count:
        if not fleet.alive():
            raise RuntimeError("every worker stopped before the faults were played")
        await asyncio.sleep(0.05)


async def run(plan: Plan, postgres_url: str = POSTGRES_URL, keep: Path | None = None) -> Result:
    """One chaos run; returns its checks (nothing asserted here). Its leads and worker logs
    go to ``keep``, else to a temporary folder removed unless the run failed."""
    workdir = Path(tempfile.mkdtemp(prefix="aioretell-chaos-")) if keep is None else keep
    try:
        result = await _run(plan, postgres_url, workdir)
    except BaseException:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    if keep is None and result.ok:
        shutil.rmtree(workdir, ignore_errors=True)
        result.logs = None
    return result


async def _run(plan: Plan, postgres_url: str, workdir: Path) -> Result:
    numbers = lead_numbers(plan.leads)
    leads = write_leads(workdir / "leads.csv", numbers)
    campaign = f"chaos-{uuid.uuid4().hex[:8]}"
    config = EmulatorConfig(
        api_key=KEY,
        concurrency_limit=plan.concurrency,
        create_rate_limit_cps=plan.cps,
        call_duration_range_s=plan.durations,
        ring_duration_s=0.0,
        seed=plan.seed,
    )
    emulator = Emulator(config)
    tracker = CreateTracker()
    tracker.install(emulator)
    events: list[str] = []
    started = time.monotonic()
    started_clock = config.clock()
    cpu_started = time.process_time()

    def note(text: str) -> None:
        events.append(f"{time.monotonic() - started:6.1f} s  {text}")

    env = {k: v for k, v in os.environ.items() if k != "RETELL_BASE_URL"}
    env["RETELL_API_KEY"] = KEY
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    redis = PrivateRedis() if plan.redis else None
    killed: CaughtMidCreate | None = None
    frozen: CaughtMidCreate | None = None
    frozen_claim: tuple[str, str | None] | None = None
    thawed = False
    stopped_for = plan.lease_ttl_s + plan.freeze_beyond_lease_s
    async with contextlib.AsyncExitStack() as stack:
        dsn = await stack.enter_async_context(own_schema(postgres_url))
        if redis is not None:
            await stack.enter_async_context(redis)
        await stack.enter_async_context(emulator)
        fleet = Fleet(
            lambda i: worker_argv(
                plan, i, leads, dsn, campaign, emulator.base_url, redis.url if redis else None
            ),
            plan.workers,
            workdir / "logs",
            env,
        )
        stack.push_async_callback(fleet.aclose)
        await fleet.start()
        note(f"{plan.workers} workers started (pids {fleet.pids})")

        async def faults() -> None:
            nonlocal killed, frozen, frozen_claim, thawed
            await _until_created(emulator, int(plan.leads * plan.kill_at), fleet)
            killed = await kill_mid_create(
                emulator, tracker, fleet, candidates=fleet.alive(), hold_s=plan.hold_s
            )
            note(
                f"worker {killed.index} (pid {killed.pid}) kill -9 while the emulator held "
                "its create"
            )
            await _until_created(emulator, int(plan.leads * plan.freeze_at), fleet)
            others = [i for i in fleet.alive() if i != killed.index]
            frozen = await freeze_mid_create(
                emulator, tracker, fleet, candidates=others, hold_s=plan.hold_s
            )
            note(
                f"worker {frozen.index} (pid {frozen.pid}) SIGSTOP while the emulator held its "
                f"create, for {stopped_for:g} s (lease {plan.lease_ttl_s:g} s)"
            )
            await asyncio.sleep(stopped_for)
            number = frozen.create.answer.get("to_number")
            if number is not None:
                frozen_claim = await _lead_holder(dsn, campaign, number)
            fleet.thaw(frozen.index)
            thawed = True
            note(
                f"worker {frozen.index} SIGCONT; its claim was then "
                + ("unknown" if frozen_claim is None else "{} held by {}".format(*frozen_claim))
            )
            if redis is not None:
                await _until_created(emulator, int(plan.leads * plan.redis_restart_at), fleet)
                note(f"redis-server kill -9 (pid {redis.pid}); down {plan.redis_down_s:g} s")
                await redis.restart(down_s=plan.redis_down_s)
                note(f"redis-server started again, empty (pid {redis.pid})")

        lag = await stack.enter_async_context(LoopLag())
        fault_task = asyncio.create_task(faults())
        codes_task = asyncio.create_task(fleet.wait(plan.timeout_s))
        try:
            await asyncio.wait({fault_task, codes_task}, return_when=asyncio.FIRST_COMPLETED)
            if fault_task.done():
                fault_task.result()  # a fault that could not be played ends the run
            else:
                # Every worker stopped while a fault still waited for creates: the checks
                # (and the list of faults played) say what went wrong.
                note("every worker stopped before all faults were played")
            await codes_task
        finally:
            for task in (fault_task, codes_task):
                task.cancel()
            await asyncio.gather(fault_task, codes_task, return_exceptions=True)
        exit_codes = codes_task.result()
        calls = [c for c in emulator.state.calls.values() if c.dialed]
        if calls:
            first = min(c.created_at for c in calls) - started_clock
            last = max(c.created_at for c in calls) - started_clock
            ended = max(c.end_at for c in calls) - started_clock
            note(
                f"(from the emulator's record: first call created at {first:.1f} s, last "
                f"at {last:.1f} s, last call ended at {ended:.1f} s)"
            )
        note(f"every worker exited: {exit_codes}")
        wall = time.monotonic() - started
        cpu = time.process_time() - cpu_started
        arrived = tracker.arrivals()
        spans = [CallSpan.of(c, arrived.get(c.call_id)) for c in calls]
        requests = tracker.requests()
        timeline = list(emulator.timeline)
        counts = await _journal_counts(dsn, campaign)
        slot = slot_time(spans, await _claimed_and_recorded(dsn, campaign))
    unfinished = sum(n for state, n in counts.items() if state not in TERMINAL)
    checks = verdict(
        leads=numbers,
        spans=spans,
        timeline=timeline,
        unfinished=unfinished,
        limits=Limits(plan.concurrency, plan.cps, min_throughput_share=plan.min_throughput_share),
        requests=requests,
    )
    wanted = ["kill -9 mid-create", "SIGSTOP mid-create past the lease"]
    played = [
        name
        for name, done in zip(
            [*wanted, "Redis restarted empty"],
            [killed is not None, thawed, redis is not None and redis.restarts > 0],
            strict=True,
        )
        if done
    ]
    if redis is not None:
        wanted.append("Redis restarted empty")
    checks.append(
        Check(
            "faults played",
            ", ".join(played) or "none",
            ", ".join(wanted),
            played == wanted,
        )
    )
    if frozen is not None:
        owner = f"chaos-{frozen.index}"
        lost = frozen_claim is not None and frozen_claim != (DISPATCHING, owner)
        checks.append(
            Check(
                "the frozen worker's claim taken over before it woke",
                "unknown"
                if frozen_claim is None
                else f"{frozen_claim[0]}, held by {frozen_claim[1] or 'nobody'}",
                f"not dispatching by {owner}",
                lost,
            )
        )
    held_number = killed.create.answer.get("to_number") if killed is not None else None
    frozen_number = frozen.create.answer.get("to_number") if frozen is not None else None
    return Result(
        plan=plan,
        checks=checks,
        wall_s=wall,
        emulator_cpu_s=cpu,
        loop_lag_s=(lag.quantile(0.5), lag.quantile(0.99), lag.quantile(1.0)),
        exit_codes=exit_codes,
        killed=killed,
        killed_number_calls=sum(1 for c in calls if c.to_number == held_number),
        frozen=frozen,
        frozen_s=stopped_for,
        frozen_claim=frozen_claim,
        frozen_number_calls=sum(1 for c in calls if c.to_number == frozen_number),
        redis_restarts=redis.restarts if redis is not None else 0,
        journal_counts=counts,
        events=events,
        logs=workdir / "logs",
        pace=stretches(spans, timeline),
        slot=slot,
        reading_gaps=answer_gaps(timeline, "getConcurrency"),
        listing_gaps=answer_gaps(timeline, "listCalls"),
    )


async def _lead_holder(dsn: str, campaign: str, number: str) -> tuple[str, str | None] | None:
    """``(state, owner)`` of the lead dialling ``number``: who holds its claim now. Read in
    SQL, since the journal's interface does not show owners."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT state, owner FROM aioretell_leads WHERE campaign = %s AND to_number = %s",
            (campaign, number),
        )
        found = await cursor.fetchone()
    return None if found is None else (str(found[0]), found[1])


async def _claimed_and_recorded(dsn: str, campaign: str) -> dict[str, tuple[float, float]]:
    """``to_number -> (claimed at, end recorded at)`` of the leads that ended, in epoch
    seconds. Read in SQL: the journal's interface does not show these times."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT to_number, dispatched_at, EXTRACT(EPOCH FROM updated_at)::float8"
            " FROM aioretell_leads WHERE campaign = %s AND state = 'ended'"
            " AND dispatched_at IS NOT NULL",
            (campaign,),
        )
        return {str(n): (float(a), float(b)) for n, a, b in await cursor.fetchall()}


async def _journal_counts(dsn: str, campaign: str) -> dict[str, int]:
    """Leads per state, read through the journal (a reader of the campaign, not a worker)."""
    journal = PostgresJournal(dsn, campaign=campaign, worker_id="chaos-reader")
    try:
        return dict(await journal.counts())
    finally:
        await journal.close()


# -- the report ----------------------------------------------------------------------------


def render_run(result: Result) -> str:
    plan = result.plan
    title = "pacing through Redis" if plan.redis else "pacing through PostgreSQL only"
    lines = [
        f"### {plan.workers} workers, {title}",
        "",
        "What happened (seconds from the start):",
        "",
        *(f"- {e}" for e in result.events),
        "",
        table(result.checks),
        "",
        "The run in 10 s stretches, from the emulator's record:",
        "",
        stretch_table(result.pace),
        "",
    ]
    if result.killed is not None:
        answer = result.killed.create.answer
        lines.append(
            f"The create held when worker {result.killed.index} was killed was made for "
            f"{answer.get('to_number', '?')} after its sender died (status "
            f"{result.killed.create.status}); that number was dialled "
            f"{result.killed_number_calls} time(s) in all."
        )
    median, p99, worst = result.loop_lag_s
    if result.frozen is not None:
        answer = result.frozen.create.answer
        lines.append(
            f"The create held when worker {result.frozen.index} was stopped was made for "
            f"{answer.get('to_number', '?')} while it was stopped (status "
            f"{result.frozen.create.status}); that number was dialled "
            f"{result.frozen_number_calls} time(s) in all."
        )
    if result.slot is not None:
        slot = result.slot
        lines.append(
            f"Where a slot's time went (the fleet counts a lead live from its claim until the "
            f"journal records its end; means over {slot.leads:,} leads, from the journal's "
            f"rows and the emulator's calls): {slot.to_account * 1000:.0f} ms from the claim "
            f"until the create reached the account, {slot.on_line:.2f} s on the line, "
            f"{slot.to_journal * 1000:.0f} ms (p90 {slot.to_journal_p90 * 1000:.0f} ms) from "
            f"the call's end until the journal recorded it: {slot.held:.2f} s in all, so "
            f"{plan.concurrency} slots allow {plan.concurrency / slot.held:.1f}/s."
        )
    lines.append(
        f"The emulator answered get-concurrency every {_gaps(result.reading_gaps)} and "
        f"list-calls (the leader's polls for ends, and lookups) every "
        f"{_gaps(result.listing_gaps)}."
    )
    lines.append(
        f"Wall time {result.wall_s:.1f} s; the emulator's process used {result.emulator_cpu_s:.1f} "
        f"s of CPU ({result.emulator_cpu_s / result.wall_s:.0%} of one core) and its event loop "
        f"woke late by {median * 1000:.0f} / {p99 * 1000:.0f} / {worst * 1000:.0f} ms (median / "
        f"p99 / max); worker exit statuses {result.exit_codes}; journal: "
        + ", ".join(f"{n} {s}" for s, n in sorted(result.journal_counts.items()))
        + "."
    )
    problems = result.worker_problems()
    if problems:
        lines.append("Workers: " + "; ".join(problems) + ".")
    return "\n".join(lines)


def _gaps(gaps: Sequence[float]) -> str:
    if not gaps:
        return "(never)"
    return f"{statistics.fmean(gaps) * 1000:.0f} ms on average (longest {max(gaps) * 1000:.0f} ms)"


def render(results: Sequence[Result], command: str, load: str) -> str:
    plan = results[0].plan
    low, high = plan.durations
    lines = [
        "## Scale-out: a chaos run",
        "",
        f"`{command}`: {plan.workers} worker processes (`python -m aioretell dial LEADS.csv "
        f"--journal postgresql://... --campaign NAME --cps {plan.cps} --concurrency "
        f"{plan.concurrency} --lease-ttl {plan.lease_ttl_s:g} --poll-interval "
        f"{plan.poll_interval_s:g} --lookup-grace {plan.lookup_grace_s:g}`, plus `--redis URL` "
        f"in the Redis variant), one campaign of {plan.leads:,} leads in a PostgreSQL schema of "
        f"the run's own; one emulator in the harness process (real sockets) allowing "
        f"{plan.concurrency} live calls and {plan.cps} creates/s (a sliding 1 s window "
        f"answering 429), calls lasting {low:g} to {high:g} s (uniform, seeded, no ringing). "
        "Faults: once creates flow, the emulator holds the next create "
        f"{plan.hold_s:g} s (a delay fault) and the worker that sent it is `kill -9`-ed while "
        "it waits (the create is still made); later another worker is caught the same way "
        f"but `SIGSTOP`-ped, until {plan.freeze_beyond_lease_s:g} s past its lease, then "
        "`SIGCONT`-ed; in the Redis "
        f"variant the `redis-server` is killed and started again empty ({plan.redis_down_s:g} s "
        "down). Every check is computed from the emulator's own record (its calls and its "
        "answers), the last from the journal. " + load,
        "",
    ]
    for result in results:
        lines += [render_run(result), ""]
    return "\n".join(lines)


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return (
        f"Machine: {os.cpu_count()} cores shared with other work (load average {one:.1f} at the "
        f"end, {five:.1f} over 5 minutes)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_out")
    parser.add_argument("--leads", type=int, default=Plan.leads)
    parser.add_argument("--workers", type=int, default=Plan.workers)
    parser.add_argument(
        "--variant",
        choices=("both", "postgres", "redis"),
        default="both",
        help="pace through PostgreSQL only, through Redis too, or run both (default)",
    )
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=Plan.poll_interval_s,
        help="the workers' --poll-interval: how often the leader reads get-concurrency and "
        f"polls list-calls (default {Plan.poll_interval_s:g} s)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the leads and worker logs in this folder"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.leads <= 1_000_000 or not 2 <= args.workers <= 64:
        parser.error("--leads must be 1 to 1,000,000 and --workers 2 to 64")
    if not 0.05 <= args.poll_interval <= 10:  # NaN fails this too
        parser.error("--poll-interval must be 0.05 to 10 seconds")
    if args.variant != "postgres" and shutil.which("redis-server") is None:
        parser.error("redis-server is not installed: install it or pass --variant postgres")
    base = replace(
        Plan(), leads=args.leads, workers=args.workers, poll_interval_s=args.poll_interval
    )
    plans = [replace(base, redis=False), replace(base, redis=True)]
    if args.variant != "both":
        plans = [p for p in plans if p.redis == (args.variant == "redis")]
    results = []
    try:
        for plan in plans:
            keep = None if args.keep is None else args.keep / ("redis" if plan.redis else "pg")
            result = asyncio.run(run(plan, args.postgres, keep))
            print(render_run(result), flush=True)
            if result.logs is not None:
                print(f"worker logs: {result.logs}", file=sys.stderr)
            results.append(result)
    except KeyboardInterrupt:
        print("interrupted; nothing written", file=sys.stderr)
        return 130
    except SetupError as exc:
        print(f"benchmarks.scale_out: {exc}", file=sys.stderr)
        return 1
    command = "python -m benchmarks.scale_out" + (
        f" --variant {args.variant}" if args.variant != "both" else ""
    )
    if (args.leads, args.workers, args.variant, args.poll_interval) == (
        Plan.leads,
        Plan.workers,
        "both",
        Plan.poll_interval_s,
    ):
        sections.write("scale-out", render(results, command, machine_load()))
        print("wrote the scale-out section of docs/benchmarks.md", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
