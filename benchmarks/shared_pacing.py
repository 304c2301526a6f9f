"""Shared pacing through Redis: accuracy across processes, a shared 429, and its CPU cost.

``python -m benchmarks.shared_pacing [--processes 8] [--rate 20] [--seconds 30] [--quick]``

1. **Accuracy.** An emulator runs in this process; ``--processes`` worker processes each send
   ``create_phone_call`` from 16 tasks for ``--seconds``, every one through its own
   ``AsyncRetell(pacer=RedisPacer(..., create_rate_limit=RATE))`` on one namespace. The
   emulator's own timeline gives the creates per second over the run and the most creates in
   any one-second window. Halfway, the emulator answers one create with 429 and
   ``Retry-After: 2``: the creates accepted in the two seconds after it show whether every
   process held off, not only the one that saw it.
2. **Cost.** In one process, against the canned server in another, two clients take turns in
   short batches: one with the in-process pacer, one with a ``RedisPacer`` (no rates set, so
   each request still asks Redis for its turn). The median per-round difference of CPU time per
   request is what the Redis pacer adds.

Writes the ``shared-pacing`` section of docs/benchmarks.md. Needs Redis
(``$AIORETELL_TEST_REDIS``, default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence

from aioretell import AsyncRetell, RateLimitError
from aioretell._operation import Operation
from aioretell.emulator import Emulator, EmulatorConfig
from aioretell.emulator.faults import Fault
from aioretell.redis_pacer import PacerUnavailableError, RedisPacer, RedisTurn
from benchmarks import sections
from benchmarks.canned_server import CannedServer

KEY = "key_shared_pacing_bench"
FROM = "+14155550100"
TASKS_PER_WORKER = 16
PAUSE_S = 2


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most events in any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- a worker process -----------------------------------------------------------------------


class _RecordingPacer(RedisPacer):
    """Notes the Redis server time of every create turn it is granted."""

    granted: list[float]

    async def reserve(self, op: Operation) -> RedisTurn:
        turn = await super().reserve(op)
        if op.starts_conversation:
            self.granted.append(turn.granted_ms / 1000)
        return turn


async def worker(base_url: str, redis: str, namespace: str, rate: float, seconds: float) -> None:
    created = rate_limited = 0
    async with (
        _RecordingPacer(redis, namespace=namespace, create_rate_limit=rate) as pacer,
        AsyncRetell(api_key=KEY, base_url=base_url, pacer=pacer, max_retries=0) as client,
    ):
        # Ready (imported, the calls' resource too, and each task's connection open:
        # get-concurrency is not a create), then all processes start together when told.
        # Otherwise the first processes pace while the later ones are still starting up on
        # the same two cores, a request granted its turn leaves late when it is the first of
        # its process, and the first second's creates reach the server bunched together (up
        # to 28 in a second here, where Redis granted 21).
        await asyncio.gather(*(client.concurrency.retrieve() for _ in range(TASKS_PER_WORKER)))
        _ = client.call  # imports the calls' resource (lazy: 25 ms the first time)
        print("ready", flush=True)
        if not await asyncio.to_thread(sys.stdin.readline):
            return  # the harness is gone (end of input): nothing to measure for
        deadline = time.monotonic() + seconds
        pacer.granted = []

        async def loop(task: int) -> None:
            nonlocal created, rate_limited
            n = 0
            while time.monotonic() < deadline:
                n += 1
                number = f"+1{os.getpid() % 1000:03d}{task:03d}{n:04d}"
                try:
                    await client.call.create_phone_call(from_number=FROM, to_number=number)
                    created += 1
                except RateLimitError:
                    rate_limited += 1

        await asyncio.gather(*(loop(i) for i in range(TASKS_PER_WORKER)))
    report = {"created": created, "rate_limited": rate_limited, "granted": pacer.granted}
    print(json.dumps(report), flush=True)


# -- accuracy -------------------------------------------------------------------------------


async def accuracy(processes: int, rate: float, seconds: float, redis: str) -> dict[str, float]:
    namespace = f"bench-{uuid.uuid4().hex[:12]}"
    config = EmulatorConfig(
        api_key=KEY, call_duration_s=0.2, ring_duration_s=0.0, concurrency_limit=1_000_000
    )
    async with Emulator(config) as emu:
        argv = [
            "-m", "benchmarks.shared_pacing", "--worker", emu.base_url, "--redis", redis,
            "--namespace", namespace, "--rate", str(rate), "--seconds", str(seconds),
        ]  # fmt: skip
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
            for _ in range(processes)
        ]
        try:
            for p in procs:  # every process ready, then all go at once
                assert p.stdout is not None and p.stdin is not None
                if (await p.stdout.readline()).strip() != b"ready":
                    raise RuntimeError("a worker process failed to start; see its output above")
            for p in procs:
                assert p.stdin is not None
                p.stdin.write(b"go\n")
                await p.stdin.drain()
            await asyncio.sleep(seconds / 2)
            emu.faults.script("createPhoneCall", [Fault.status(429, retry_after=PAUSE_S)])
            outputs = [await p.communicate() for p in procs]
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        if any(p.returncode for p in procs):
            raise RuntimeError("a worker process failed; see its output above")
        reports = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
        timeline = list(emu.timeline)
    creates = [t for t, op, status in timeline if op == "createPhoneCall" and status < 300]
    refused = [t for t, op, status in timeline if op == "createPhoneCall" and status == 429]
    scripted = refused[0] if refused else math.nan
    # In flight when the 429 was answered: requests a process had sent before it heard.
    held = [t for t in creates if scripted + 0.2 < t < scripted + PAUSE_S]
    span = max(creates) - min(creates)
    granted = [t for r in reports for t in r["granted"]]
    return {
        "processes": processes,
        "rate": rate,
        "created": len(creates),
        "observed_rate": len(creates) / (span - PAUSE_S),
        "max_window": max_in_window(creates),
        "max_window_granted": max_in_window(granted),
        "refused": len(refused),
        "held_creates": len(held),
        "reported": sum(r["created"] for r in reports),
    }


# -- cost -----------------------------------------------------------------------------------


async def cost(redis: str, rounds: int, batch: int, concurrency: int) -> dict[str, float]:
    namespace = f"bench-{uuid.uuid4().hex[:12]}"
    with CannedServer() as server:
        base_url = server.base_url
        async with (
            RedisPacer(redis, namespace=namespace) as pacer,
            AsyncRetell(api_key=KEY, base_url=base_url) as local,
            AsyncRetell(api_key=KEY, base_url=base_url, pacer=pacer) as shared,
        ):

            async def timed(client: AsyncRetell) -> float:
                queue = iter(range(batch))

                async def one() -> None:
                    for _ in queue:
                        await client.chat.retrieve("chat_1")

                started = time.process_time()
                await asyncio.gather(*(one() for _ in range(concurrency)))
                return (time.process_time() - started) / batch * 1e6

            await timed(local)
            await timed(shared)  # warm both pools
            pairs = []
            for i in range(rounds):
                # Alternate the order so neither always runs after the other.
                if i % 2:
                    b, a = await timed(shared), await timed(local)
                else:
                    a, b = await timed(local), await timed(shared)
                pairs.append((a, b))
    return {
        "local_us": statistics.median(a for a, _ in pairs),
        "redis_us": statistics.median(b for _, b in pairs),
        "added_us": statistics.median(b - a for a, b in pairs),
        "rounds": rounds,
        "concurrency": concurrency,
    }


def report(acc: dict[str, float], cpu: dict[str, float], command: str) -> str:
    rate = acc["rate"]
    return "\n".join(
        [
            "## Shared pacing through Redis",
            "",
            f"`{command}`, on a machine shared with other work. Accuracy: "
            f"{int(acc['processes'])} processes, {TASKS_PER_WORKER} tasks each, one "
            f"`RedisPacer(create_rate_limit={rate:g})` namespace; counted from the emulator's "
            f"record of accepted creates. Halfway, one create was answered 429 with "
            f"`Retry-After: {PAUSE_S}`.",
            "",
            "| measure | value | target |",
            "| --- | --- | --- |",
            f"| creates per second, all processes (2 s pause excluded) | "
            f"{acc['observed_rate']:.2f} | {rate:g} ± 3% |",
            f"| most creates in any 1 s window, as Redis granted them | "
            f"{int(acc['max_window_granted'])} | ≤ {rate + 1:g} |",
            f"| most creates in any 1 s window, as they reached the emulator | "
            f"{int(acc['max_window'])} | ≤ {rate + 1:g} |",
            f"| creates accepted 0.2-{PAUSE_S} s after the 429 (every process held) | "
            f"{int(acc['held_creates'])} | 0 |",
            f"| creates accepted / refused 429 | {int(acc['created'])} / {int(acc['refused'])} | |",
            "",
            f"Cost: CPU per `chat.retrieve` at c={int(cpu['concurrency'])} against the canned "
            f"server, median of {int(cpu['rounds'])} alternating rounds: in-process pacer "
            f"{cpu['local_us']:.0f} µs, `RedisPacer` {cpu['redis_us']:.0f} µs; **the Redis "
            f"pacer adds {cpu['added_us']:.0f} µs per request** (target < 150 µs). Redis's "
            "own CPU is in its server process and not counted.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shared_pacing")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="3 processes for 8 s; no doc")
    parser.add_argument(
        "--redis", default=os.environ.get("AIORETELL_TEST_REDIS", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--worker", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        try:
            asyncio.run(worker(args.worker, args.redis, args.namespace, args.rate, args.seconds))
        except PacerUnavailableError as exc:
            print(f"benchmarks.shared_pacing worker: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130  # Ctrl-C reaches the whole process group: the harness says it
        return 0
    if args.processes < 1 or not 0 < args.rate < math.inf or not 4 < args.seconds < math.inf:
        parser.error("--processes >= 1, --rate > 0 and --seconds > 4 (all finite)")
    if args.quick:
        args.processes, args.seconds = 3, 8.0
    try:
        acc = asyncio.run(accuracy(args.processes, args.rate, args.seconds, args.redis))
        cpu = asyncio.run(cost(args.redis, rounds=5 if args.quick else 21, batch=400,
                               concurrency=16))  # fmt: skip
    except KeyboardInterrupt:
        print("interrupted; nothing written", file=sys.stderr)
        return 130
    except (RuntimeError, PacerUnavailableError) as exc:
        print(f"benchmarks.shared_pacing: {exc}; nothing written", file=sys.stderr)
        return 1
    command = "python -m benchmarks.shared_pacing" + (" --quick" if args.quick else "")
    text = report(acc, cpu, command)
    print(text)
    if not args.quick:
        sections.write("shared-pacing", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
