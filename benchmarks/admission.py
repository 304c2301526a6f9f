"""The cost of admission: how many creates per second the PostgreSQL journal can admit.

``python -m benchmarks.admission [--workers 8] [--seconds 10] [--leads 60000]``

Every create of a campaign shared by many workers first passes one admission transaction
(:meth:`aioretell.dial.journal_postgres.PostgresJournal.admit`: the account's advisory lock,
its 429 pause, calls per second by GCRA, live calls against the limit, then one lead claimed
``FOR UPDATE SKIP LOCKED``). It serialises the whole account, so its length bounds how fast a
fleet can dial. Here ``--workers`` processes, each with its own journal and connections, call
it back to back for ``--seconds`` on one campaign whose limits never refuse (calls per second
1,000,000, no concurrency limit), started together. Nothing else runs: each claimed lead stays
``dispatching``, so the live-call count every admission makes grows through the run (a
harder case than a real campaign, whose live calls stay under the account's limit).

Reports claims per second (all workers), each admission's latency, and checks through the
journal that every claim took a different lead. Writes the ``admission`` section of
docs/benchmarks.md (default sizes only). Needs PostgreSQL (``$AIORETELL_TEST_POSTGRES``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
from benchmarks.scale_out import POSTGRES_URL, REPO, own_schema, write_leads

CAMPAIGN = "admission-bench"
ACCOUNT = "acct_admission_bench"
#: A rate no admission waits for, so the GCRA update is still made on every claim.
CPS = 1_000_000.0
CAP = 10**9


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


async def worker(dsn: str, index: int, seconds: float) -> None:
    """Admit back to back for ``seconds`` once told to go (a line on stdin); print what it
    did as one JSON line."""
    journal = PostgresJournal(
        dsn, campaign=CAMPAIGN, account=ACCOUNT, worker_id=f"bench-{index}", pool_size=1
    )
    loop = asyncio.get_running_loop()
    try:
        await journal.acquire_lease(ttl_s=600.0)
        await journal.admit(time.time(), cps=CPS, cap=CAP, recheck_s=0.1)  # warm up: 1 claim
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


# -- the run --------------------------------------------------------------------------------


async def measure(postgres: str, workers: int, seconds: float, leads: int) -> dict[str, float]:
    async with own_schema(postgres) as dsn:
        setup = time.perf_counter()
        await prepare(dsn, leads)
        setup_s = time.perf_counter() - setup
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        argv = ["-m", "benchmarks.admission", "--seconds", str(seconds), "--dsn", dsn]
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
        # warm-up claims included: one per worker
        "dispatching": counts.get("dispatching", 0),
        "expected_dispatching": claims + workers,
    }


def report(m: dict[str, float], command: str) -> str:
    distinct = m["dispatching"] == m["expected_dispatching"]
    rate = m["claims_per_s"]
    return "\n".join(
        [
            "## Admission on PostgreSQL",
            "",
            f"`{command}`: {int(m['workers'])} processes, each with its own `PostgresJournal` "
            f"(one connection), call `admit()` back to back for {m['seconds']:g} s on one "
            f"campaign of {int(m['leads']):,} leads whose limits never refuse (calls per "
            "second 1,000,000, so the GCRA row is still updated on every claim; no "
            "concurrency limit). PostgreSQL 127.0.0.1 on the same 2-core machine, shared with "
            "other work. Claimed leads stay `dispatching`, so every admission counts a "
            f"growing number of live calls (up to {int(m['dispatching']):,}).",
            "",
            "| measure | value | target |",
            "| --- | --- | --- |",
            f"| claims per second, all workers | **{rate:,.0f}** | ≥ 500 |",
            f"| claims per worker (fewest / most) | {int(m['min_worker']):,} / "
            f"{int(m['max_worker']):,} | |",
            f"| admission latency p50 / p90 / p99 / max | {m['p50_ms']:.2f} / "
            f"{m['p90_ms']:.2f} / {m['p99_ms']:.2f} / {m['max_ms']:.1f} ms | |",
            f"| admissions refused (waits) | {int(m['waits'])} | 0 |",
            f"| leads claimed twice (claims vs rows dispatching) | "
            f"{'none' if distinct else 'MISMATCH'} ({int(m['expected_dispatching']):,} claims, "
            f"{int(m['dispatching']):,} rows) | none |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.admission")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--leads", type=int, default=60_000)
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        asyncio.run(worker(args.dsn, args.worker, args.seconds))
        return 0
    if not 1 <= args.workers <= 64 or not 1 <= args.seconds <= 600 or args.leads < 1:
        parser.error("--workers 1 to 64, --seconds 1 to 600, --leads >= 1")
    if math.isnan(args.seconds):
        parser.error("--seconds must be a number")
    try:
        m = asyncio.run(measure(args.postgres, args.workers, args.seconds, args.leads))
    except KeyboardInterrupt:
        print("interrupted; nothing written", file=sys.stderr)
        return 130
    if m["exhausted"]:
        print(
            f"the campaign ran out of leads: run again with more than {args.leads} --leads",
            file=sys.stderr,
        )
        return 1
    text = report(m, "python -m benchmarks.admission")
    print(text)
    if (args.workers, args.seconds, args.leads) == (8, 10.0, 60_000):
        sections.write("admission", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
