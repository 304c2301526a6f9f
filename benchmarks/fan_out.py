"""fan_out over a lazy million: peak memory, live tasks, per-item overhead vs gather.

Each variant runs in a fresh interpreter so its peak RSS is its own:

* ``fan_out``: ``aioretell.fan_out`` over a generator of N items, a trivial async function;
* ``gather``: an ``asyncio.Semaphore(concurrency)`` plus ``asyncio.gather`` over a list of N
  coroutines (the usual habit, which holds every task at once).

Run: ``python -m benchmarks.fan_out [--items N] [--concurrency C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

SAMPLE_EVERY = 10_000


def _rss_mb() -> float:
    from benchmarks.rss import _maxrss_kib  # VmHWM on Linux: not inherited from the parent

    return _maxrss_kib() / 1024.0


async def _trivial(x: int) -> int:
    return x


async def _run_fan_out(items: int, concurrency: int) -> dict[str, float]:
    from aioretell import fan_out

    peak_tasks = 0
    count = 0

    def source() -> Iterator[int]:
        yield from range(items)

    async def work(x: int) -> int:
        nonlocal peak_tasks
        if x % SAMPLE_EVERY == 0:
            peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        return x

    async with fan_out(work, source(), concurrency=concurrency) as outcomes:
        async for _ in outcomes:
            count += 1
    assert count == items
    # all_tasks() counts the workers plus the driver and the consumer's own task
    return {"peak_tasks": peak_tasks - 2}


async def _run_gather(items: int, concurrency: int) -> dict[str, float]:
    semaphore = asyncio.Semaphore(concurrency)
    peak_tasks = 0

    async def guarded(x: int) -> int:
        nonlocal peak_tasks
        async with semaphore:
            if x % SAMPLE_EVERY == 0:
                peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
            return await _trivial(x)

    results = await asyncio.gather(*[guarded(i) for i in range(items)])
    assert len(results) == items
    return {"peak_tasks": peak_tasks - 1}


def _child(variant: str, items: int, concurrency: int) -> None:
    import aioretell  # noqa: F401 - imported before the baseline, like a real program

    base_rss = _rss_mb()
    runner = _run_fan_out if variant == "fan_out" else _run_gather
    wall, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(runner(items, concurrency))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result.update(
        rss_growth_mb=_rss_mb() - base_rss,
        us_per_item_wall=wall / items * 1e6,
        us_per_item_cpu=cpu / items * 1e6,
    )
    print(json.dumps(result))


def measure(variant: str, items: int, concurrency: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.fan_out",
            "--child",
            variant,
            "--items",
            str(items),
            "--concurrency",
            str(concurrency),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(items: int, concurrency: int) -> str:
    rows = {v: measure(v, items, concurrency) for v in ("fan_out", "gather")}
    lines = [
        f"fan_out vs semaphore + gather, {items:,} items, concurrency {concurrency}",
        "",
        "| variant | peak RSS growth (MB) | peak tasks alive | µs/item wall | µs/item CPU |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['rss_growth_mb']:.1f} | {r['peak_tasks']:,.0f} | "
            f"{r['us_per_item_wall']:.2f} | {r['us_per_item_cpu']:.2f} |"
        )
    ratio = rows["fan_out"]["us_per_item_cpu"] / rows["gather"]["us_per_item_cpu"]
    lines.append("")
    lines.append(f"fan_out / gather CPU per item: {ratio:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fan_out", description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--child", choices=("fan_out", "gather"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.items, args.concurrency)
    else:
        print(report(args.items, args.concurrency))


if __name__ == "__main__":
    main()
