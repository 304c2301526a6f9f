"""The cost of admission: how many creates per second the PostgreSQL journal can admit.

``python -m benchmarks.admission [--workers 8] [--seconds 10] [--leads 60000]``

Every create of a campaign shared by many workers first passes one admission transaction
(:meth:`aioretell.dial.journal_postgres.PostgresJournal.admit`, one call of a database
function: the account's advisory lock, its 429 pause, calls per second by GCRA, live calls
against the limit, then one lead claimed ``FOR UPDATE SKIP LOCKED``). It serialises the whole
account, so its length bounds how fast a fleet can dial. Here worker processes, each with its
own journal and connection, call it back to back for ``--seconds`` on one campaign whose
limits never refuse (calls per second 1,000,000, no concurrency limit), started together, in
two ways:

- **admit only** (the target's measure: the transaction alone): claimed leads stay
  ``dispatching``, so the live-call total every admission weighs grows through the run to
  thousands (more than any account's limit allows);
- **with each call's life**: a worker records each lead it claims created, then ended (two
  more transactions, not timed), as it does over a call's life, so the live calls each
  admission counts stay about as many as the workers, and the admission shares the database
  with the other writes of a running campaign.

With 1 worker (the admission's cost without contention) and with ``--workers``. Reports
claims per second, each admission's latency, and checks through the journal that every claim
took a different lead. Writes the ``admission`` section of docs/benchmarks.md (default sizes
only). Needs PostgreSQL (``$AIORETELL_TEST_POSTGRES``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aioretell.dial.journal import CampaignInfo, Row, Wait
from aioretell.dial.journal_postgres import PostgresJournal
from aioretell.dial.leads import load_leads
from benchmarks import sections
from benchmarks.scale_out import (
    POSTGRES_URL,
    REPO,
    SetupError,
    machine_load,
    own_schema,
    write_leads,
)

CAMPAIGN = "admission-bench"
ACCOUNT = "acct_admission_bench"
#: A rate no admission waits for, so the GCRA update is still made on every claim.
CPS = 1_000_000.0
CAP = 10**9
#: Claims per second the admission must sustain with 8 workers (issue #12).
TARGET = 500


def _leads(count: int) -> list[str]:
    return [f"+1718{i:07d}" for i in range(count)]


async def prepare(dsn: str, leads: int) -> None:
    """The campaign, its account and ``leads`` pending leads."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_leads(Path(folder) / "leads.csv", _leads(leads))
        lead_file = load_leads(path)
    info = CampaignInfo(
        campaign_id="cmp_admission_bench",
        csv_sha256=lead_file.sha256,
        csv_name="leads.csv",
        from_number="+14155550100",
        agent_id="",
        target="http://127.0.0.1:1",
    )
    journal = PostgresJournal(dsn, campaign=CAMPAIGN, account=ACCOUNT, worker_id="bench-setup")
    try:
        await journal.open_campaign(info, lead_file)
    finally:
        await journal.close()


# -- one worker process ---------------------------------------------------------------------


async def worker(dsn: str, index: int, seconds: float, *, lifecycle: bool) -> None:
    """Admit back to back for ``seconds`` once told to go (a line on stdin); print what it
    did as one JSON line. ``lifecycle``: record each claimed lead created, then ended (two
    more transactions, untimed), as a worker does over a call's life, so the live calls every
    admission counts stay as few as the workers."""
    journal = PostgresJournal(
        dsn, campaign=CAMPAIGN, account=ACCOUNT, worker_id=f"bench-{index}", pool_size=1
    )
    loop = asyncio.get_running_loop()
    try:
        await journal.acquire_lease(ttl_s=600.0)
        warm = await journal.admit(time.time(), cps=CPS, cap=CAP, recheck_s=0.1)  # 1 claim
        if lifecycle and isinstance(warm, Row):
            await _live_and_end(journal, warm)
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        claims = waits = 0
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + seconds
        exhausted = False
        while (now := time.perf_counter()) < deadline:
            outcome = await journal.admit(time.time(), cps=CPS, cap=CAP, recheck_s=0.1)
            latencies.append(time.perf_counter() - now)
            if isinstance(outcome, Row):
                claims += 1
                if lifecycle:
                    await _live_and_end(journal, outcome)
            elif isinstance(outcome, Wait):
                waits += 1
            else:
                exhausted = True
                break
        elapsed = time.perf_counter() - started
    finally:
        await journal.close()
    report = {
        "claims": claims,
        "waits": waits,
        "elapsed": elapsed,
        "exhausted": exhausted,
        "latencies_ms": [round(x * 1000, 3) for x in latencies],
    }
    print(json.dumps(report), flush=True)


async def _live_and_end(journal: PostgresJournal, row: Row) -> None:
    await journal.mark_created(row, f"call_{row.ref}", create_ms=1.0)
    await journal.mark_ended(row, call_status="ended", disconnection_reason="user_hangup")


# -- the run --------------------------------------------------------------------------------


async def measure(
    postgres: str, workers: int, seconds: float, leads: int, *, lifecycle: bool
) -> dict[str, float]:
    async with own_schema(postgres) as dsn:
        setup = time.perf_counter()
        await prepare(dsn, leads)
        setup_s = time.perf_counter() - setup
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        argv = ["-m", "benchmarks.admission", "--seconds", str(seconds), "--dsn", dsn]
        if lifecycle:
            argv.append("--lifecycle")
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                "--worker",
                str(i),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            for i in range(workers)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                if line.strip() != b"ready":
                    raise RuntimeError(f"a worker did not start (it said {line!r})")
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            outputs = [await asyncio.wait_for(p.communicate(), seconds + 60) for p in procs]
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        if any(p.returncode for p in procs):
            raise RuntimeError("a worker process failed; see its output above")
        reports = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
        reader = PostgresJournal(dsn, campaign=CAMPAIGN, account=ACCOUNT, worker_id="reader")
        try:
            counts = await reader.counts()
        finally:
            await reader.close()
    claims = sum(r["claims"] for r in reports)
    latencies = sorted(x for r in reports for x in r["latencies_ms"])
    elapsed = max(r["elapsed"] for r in reports)
    return {
        "workers": workers,
        "seconds": seconds,
        "leads": leads,
        "setup_s": setup_s,
        "claims": claims,
        "waits": sum(r["waits"] for r in reports),
        "exhausted": sum(1 for r in reports if r["exhausted"]),
        "claims_per_s": claims / elapsed,
        "min_worker": min(r["claims"] for r in reports),
        "max_worker": max(r["claims"] for r in reports),
        "p50_ms": statistics.median(latencies),
        "p90_ms": latencies[int(len(latencies) * 0.9)],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "max_ms": latencies[-1],
        "lifecycle": lifecycle,
        # the rows the claims moved on (warm-up claims included: one per worker)
        "moved": counts.get("ended" if lifecycle else "dispatching", 0),
        "expected_moved": claims + workers,
    }


def report(runs: list[dict[str, float]], command: str, load: str = "") -> str:
    """``runs``: every measured mode and worker count."""
    seconds, leads = runs[0]["seconds"], int(runs[0]["leads"])
    lines = [
        "## Admission on PostgreSQL",
        "",
        f"`{command}`: worker processes, each with its own `PostgresJournal` (one "
        f"connection), call `admit()` back to back for {seconds:g} s on one campaign of "
        f"{leads:,} leads whose limits never refuse (calls per second 1,000,000, so the GCRA "
        "row is still updated on every claim; no concurrency limit), all started together; a "
        "fresh campaign per row. *With each call's life*: each claimed lead is then recorded "
        "created and ended (untimed), so the live calls each admission counts stay about as "
        "many as the workers, as in a running campaign. *Admit only*: claimed leads stay "
        "`dispatching`, so the live calls counted grow to the row's claims. PostgreSQL on "
        "127.0.0.1 on the same 2-core machine, shared with other work. " + load,
        "",
        "| mode | workers | claims per second, all workers | claims per worker (fewest / "
        "most) | admission latency p50 / p90 / p99 / max | refused | every claim a "
        "different lead |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        mode = "with each call's life" if r["lifecycle"] else "admit only"
        distinct = "yes" if r["moved"] == r["expected_moved"] else "**NO**"
        lines.append(
            f"| {mode} | {int(r['workers'])} | **{r['claims_per_s']:,.0f}** | "
            f"{int(r['min_worker']):,} / {int(r['max_worker']):,} | {r['p50_ms']:.2f} / "
            f"{r['p90_ms']:.2f} / {r['p99_ms']:.2f} / {r['max_ms']:.1f} ms | {int(r['waits'])} "
            f"| {distinct} ({int(r['expected_moved']):,} claims, {int(r['moved']):,} rows "
            f"{'ended' if r['lifecycle'] else 'dispatching'}) |"
        )
    most = max(r["workers"] for r in runs)
    alone = [r for r in runs if not r["lifecycle"] and r["workers"] == most]
    mixed = [r for r in runs if r["lifecycle"] and r["workers"] == most]
    if alone:
        verdict = "met" if alone[0]["claims_per_s"] >= TARGET else "**not met**"
        lines += [
            "",
            f"Target: the admission transaction alone sustains at least {TARGET} claims/s with "
            f"{int(most)} workers: {alone[0]['claims_per_s']:,.0f}, {verdict}."
            + (
                f" Beside the other writes of a running campaign (each claim then recorded "
                f"created and ended), {mixed[0]['claims_per_s']:,.0f} claims/s."
                if mixed
                else ""
            ),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.admission")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--leads", type=int, default=60_000)
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the run with one worker (the admission's cost without contention)",
    )
    parser.add_argument(
        "--no-admit-only",
        dest="admit_only",
        action="store_false",
        help="skip the runs where claimed leads pile up as dispatching",
    )
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--lifecycle", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        asyncio.run(worker(args.dsn, args.worker, args.seconds, lifecycle=args.lifecycle))
        return 0
    if not 1 <= args.workers <= 64 or not 1 <= args.seconds <= 600 or args.leads < 1:
        parser.error("--workers 1 to 64, --seconds 1 to 600, --leads >= 1")
    counts = sorted({1, args.workers}) if args.baseline else [args.workers]
    modes = [False, True] if args.admit_only else [True]
    runs = []
    try:
        for lifecycle in modes:
            for workers in counts:
                m = asyncio.run(
                    measure(args.postgres, workers, args.seconds, args.leads, lifecycle=lifecycle)
                )
                if m["exhausted"]:
                    print(
                        f"the campaign ran out of leads: run again with more than {args.leads} "
                        "--leads",
                        file=sys.stderr,
                    )
                    return 1
                runs.append(m)
                row = [line for line in report(runs[-1:], "").splitlines() if line.startswith("| ")]
                print(row[-1], file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted; nothing written", file=sys.stderr)
        return 130
    except SetupError as exc:
        print(f"benchmarks.admission: {exc}", file=sys.stderr)
        return 1
    text = report(runs, "python -m benchmarks.admission", machine_load())
    print(text)
    defaults = (8, 10.0, 60_000, True, True)
    if (args.workers, args.seconds, args.leads, args.baseline, args.admit_only) == defaults:
        sections.write("admission", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
