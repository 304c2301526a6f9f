"""Run every benchmark once and print the measurements as markdown.

``python -m benchmarks`` (or ``python benchmarks/run.py``) from the repository root. The ratios
are of numbers measured in this one run on this one machine; nothing is compared with stored
numbers and nothing is asserted. ``--quick`` for a short smoke run, ``--json PATH`` to also write
every raw sample.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bodies, client_cpu, decode, import_time, stats
from benchmarks.canned_server import CannedServer

SECTIONS = ("client", "decode", "import")
LIBRARIES = ("retell-sdk", "aiohttp", "msgspec", "tenacity", "httpx", "pydantic")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(argv: Sequence[str]) -> dict[str, str]:
    import aioretell

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()} logical cores" + (f", {usable} usable" if usable else "")
    versions = [f"aioretell {aioretell.__version__}"]
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return {
        "machine": f"{cpu_model()}, {cores}, {platform.system()} {platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "libraries": ", ".join(versions),
        "response bodies": bodies.phone_call().source,
        "command": shlex.join(["python", "-m", "benchmarks", *argv]),
    }


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _n(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def _x(value: float) -> str:
    return f"{value:.2f}x"


class Report:
    def __init__(self) -> None:
        self.rows: list[str] = []
        self.ratios: list[str] = []
        self.raw: dict[str, Any] = {}

    def measure(self, what: str, subject: str, values: Sequence[float], unit: str) -> None:
        med, lo, hi = stats.summary(values)
        self.rows.append(_row(what, subject, _n(med), _n(lo), _n(hi), unit))

    def ratio(self, what: str, values: Sequence[float], note: str) -> None:
        med, lo, hi = stats.summary(values)
        self.ratios.append(_row(what, _x(med), _x(lo), _x(hi), note))

    def render(self, env: dict[str, str]) -> str:
        lines = ["## aioretell benchmarks", "", _row("", ""), _row("---", "---")]
        lines += [_row(key, value) for key, value in env.items()]
        lines += ["", _row("benchmark", "subject", "median", "min", "max", "unit")]
        lines += [_row(*["---"] * 6), *self.rows]
        lines += ["", _row("ratio", "median", "min", "max", "how")]
        lines += [_row(*["---"] * 5), *self.ratios]
        return "\n".join(lines)


def client_section(report: Report, args: argparse.Namespace) -> None:
    comparisons: list[client_cpu.Comparison] = []
    with CannedServer(page_size=args.page_size) as server:
        for concurrency in args.concurrency:
            comparison = asyncio.run(
                client_cpu.compare(
                    server.base_url,
                    operation=args.operation,
                    concurrency=concurrency,
                    rounds=args.rounds,
                    requests=args.requests,
                )
            )
            comparisons.append(comparison)
    for c in comparisons:
        what = f"{c.operation}, c={c.concurrency}, {len(c.cpu_us('floor'))} x {c.requests} req"
        for name in client_cpu.CLIENTS:
            report.measure(f"client CPU: {what}", name, c.cpu_us(name), "µs CPU / request")
        for name in client_cpu.CLIENTS:
            report.measure(f"throughput: {what}", name, c.rps(name), "requests / s")
        how = "client CPU per request, per-round pairs"
        report.ratio(
            f"aioretell / floor, c={c.concurrency}", c.paired_ratios("aioretell", "floor"), how
        )
        report.ratio(
            f"retell-sdk / aioretell, c={c.concurrency}",
            c.paired_ratios("retell-sdk", "aioretell"),
            how,
        )
    report.raw["client_cpu"] = [c.to_json() for c in comparisons]


def decode_section(report: Report, args: argparse.Namespace) -> None:
    timings, sample = decode.run(repeat=args.decode_repeat, min_time=args.decode_time)
    by_name = {t.name: t for t in timings}
    what = f"decode create-phone-call body ({len(sample.body):,} B)"
    for t in timings:
        report.measure(what, t.name, t.us, "µs / decode")
    typed, loads = by_name["msgspec typed"], by_name["json.loads"]
    sdk = by_name["retell-sdk"]
    report.ratio(
        "msgspec typed / json.loads",
        stats.ratios(typed.us, loads.us),
        "decode time, per-repeat pairs",
    )
    report.ratio(
        "retell-sdk / msgspec typed",
        stats.ratios(sdk.us, typed.us),
        "decode time, per-repeat pairs",
    )
    report.raw["decode"] = {t.name: t.us for t in timings}


def import_section(report: Report, args: argparse.Namespace) -> None:
    timings = import_time.run(runs=args.import_runs)
    for t in timings:
        report.measure(f"cold import, {len(t.ms)} fresh interpreters", t.name, t.ms, "ms")
    by_name = {t.name: t for t in timings}
    pairs = [
        ("import retell", "import aioretell"),
        ("retell + call resource", "aioretell + call resource"),
    ]
    for sdk, ours in pairs:
        report.ratio(
            f"{sdk} / {ours}",
            stats.ratios(by_name[sdk].ms, by_name[ours].ms),
            "import time, per-run pairs",
        )
    report.raw["import_ms"] = {t.name: t.ms for t in timings}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few, short rounds (a smoke run)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write raw numbers here")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}"
    )
    parser.add_argument("--operation", choices=client_cpu.OPERATIONS, default="create_phone_call")
    parser.add_argument(
        "--concurrency",
        default="64",
        type=lambda s: [int(x) for x in s.split(",")],
        help="comma-separated, e.g. 1,16,64,256",
    )
    parser.add_argument("--rounds", type=int, help="timed rounds per client (default 5)")
    parser.add_argument("--requests", type=int, help="requests per round (default 2000)")
    parser.add_argument("--import-runs", type=int, help="interpreters per subject (default 20)")
    parser.add_argument("--page-size", type=int, default=100, help="calls per list-calls page")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (2 if quick else 5)
    args.requests = args.requests or (300 if quick else 2000)
    args.import_runs = args.import_runs or (5 if quick else 20)
    args.decode_repeat = 3 if quick else 7
    args.decode_time = 0.05 if quick else 0.2
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    report = Report()
    sections = {"client": client_section, "decode": decode_section, "import": import_section}
    for name in SECTIONS:
        if name in args.sections:
            print(f"running {name} benchmarks ...", file=sys.stderr, flush=True)
            sections[name](report, args)
    env = environment(argv)
    print(report.render(env))
    if args.json is not None:
        args.json.write_text(json.dumps({"environment": env, **report.raw}, indent=2) + "\n")
        print(f"\nraw numbers written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
