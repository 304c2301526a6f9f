"""Run the benchmark suite and write the report: ``docs/benchmarks.md`` and ``docs/benchmarks.png``.

``python -m benchmarks`` (or ``aioretell bench``, or ``nox -s bench``) from the repository root.
The ratios are of numbers measured in this one run on this one machine; nothing is compared
with stored numbers and nothing is asserted. ``--quick`` for a short smoke run (it writes the
report too), ``--out DIR`` to write it elsewhere, ``--json PATH`` to also keep every raw sample.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.util
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aioretell._cli_args import OneLineParser, integer, number
from benchmarks import bodies, client_cpu, decode, import_time, rss, stats, targets
from benchmarks import sections as doc_sections
from benchmarks.client_cpu import Comparison

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("client", "decode", "import", "rss", "fanout", "pacing")
LIBRARIES = ("retell-sdk", "httpx-aiohttp", "aiohttp", "msgspec", "tenacity", "httpx", "pydantic")
#: aioretell further than this from the floor is listed at the end of the report.
FLOOR_TOLERANCE = 1.25
CONCURRENCY = (1, 16, 64, 256, 1024)
CLIENT_ORDER = ("aioretell", "floor", "retell-sdk", "retell-sdk aiohttp")
#: What each section imports beyond aioretell's own dependencies: (module, distribution). All of
#: them come with the ``bench`` extra; they are looked for before anything runs, not after.
NEEDS = {
    "client": (("retell", "retell-sdk"), ("matplotlib", "matplotlib")),
    "decode": (("retell", "retell-sdk"),),
    "import": (("retell", "retell-sdk"),),
    "rss": (("retell", "retell-sdk"),),
}
INSTALL_HINT = 'pip install -e ".[bench]"'


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(argv: Sequence[str], seconds: float) -> dict[str, str]:
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
        "run time": f"{seconds / 60:.1f} min",
    }


# -- formatting ------------------------------------------------------------------------------


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(*header), _row(*["---"] * len(header)), *(_row(*r) for r in rows)]


def _n(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def _x(value: float) -> str:
    return f"{value:.2f}x"


def _spread(values: Sequence[float], fmt: Callable[[float], str] = _n) -> str:
    med, lo, hi = stats.summary(values)
    return f"{fmt(med)} ({fmt(lo)} to {fmt(hi)})"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


class Report:
    """Everything measured, kept as data, rendered once at the end."""

    def __init__(self) -> None:
        self.comparisons: list[Comparison] = []
        self.decodes: list[decode.DecodeTiming] = []
        self.imports: list[import_time.ImportTiming] = []
        self.rss: list[rss.RssResult] = []
        self.notes: list[str] = []
        #: (title, markdown) of the fan_out and pacing sections, rendered as they come
        self.extra: list[tuple[str, str]] = []

    # -- the rows over the tolerance ---------------------------------------------------------

    def far_from_floor(self) -> list[str]:
        """Each (server, operation, concurrency) where aioretell is over 1.25x the floor."""
        out = []
        for c in self.comparisons:
            if "aioretell" not in c.samples or "floor" not in c.samples:
                continue
            cpu = _median(c.paired_ratios("aioretell", "floor"))
            rps = _median(c.rps("floor")) / _median(c.rps("aioretell"))
            parts = []
            if cpu > FLOOR_TOLERANCE:
                parts.append(f"CPU/request {_x(cpu)} the floor's")
            if rps > FLOOR_TOLERANCE:
                parts.append(f"requests/s {_x(1 / rps)} the floor's")
            if parts:
                out.append(
                    f"{c.target} server, {c.operation}, c={c.concurrency}: " + "; ".join(parts)
                )
        return out

    # -- rendering ---------------------------------------------------------------------------

    def headline(self, target: str) -> list[str]:
        cells = [c for c in self.comparisons if c.target == target]
        if not cells:
            return []
        clients = [n for n in CLIENT_ORDER if n in cells[0].samples]
        header = ["operation", "c", *(f"{n} req/s" for n in clients)]
        header += ["aioretell ÷ floor, CPU", "retell-sdk ÷ aioretell, CPU"]
        rows = []
        for c in cells:
            row: list[object] = [c.operation, c.concurrency]
            row += [_n(_median(c.rps(n))) for n in clients]
            row.append(_x(_median(c.paired_ratios("aioretell", "floor"))))
            row.append(_x(_median(c.paired_ratios("retell-sdk", "aioretell"))))
            rows.append(row)
        return _table(header, rows)

    def client_details(self) -> list[str]:
        header = [
            "server",
            "operation",
            "c",
            "client",
            "requests x rounds",
            "errors",
            "µs CPU / request",
            "requests / s",
            "CPU ÷ floor",
            "CPU ÷ retell-sdk",
        ]
        rows = []
        for c in self.comparisons:
            for name in [n for n in CLIENT_ORDER if n in c.samples]:
                rows.append(
                    [
                        c.target,
                        c.operation,
                        c.concurrency,
                        name,
                        f"{c.requests[name]:,} x {len(c.samples[name])}",
                        c.errors(name),
                        _spread(c.cpu_us(name)),
                        _spread(c.rps(name)),
                        _spread(c.paired_ratios(name, "floor"), _x),
                        _spread(c.paired_ratios(name, "retell-sdk"), _x),
                    ]
                )
        return _table(header, rows)

    def decode_table(self) -> list[str]:
        header = ["body", "bytes", "decoder", "µs / decode", "÷ json.loads", "÷ aioretell"]
        rows = []
        by_key = {(t.body, t.decoder): t for t in self.decodes}
        for t in self.decodes:
            loads, ours = by_key[(t.body, "json.loads")], by_key[(t.body, "aioretell")]
            rows.append(
                [
                    t.body,
                    f"{t.size:,}",
                    t.decoder,
                    _spread(t.us),
                    _spread(stats.ratios(t.us, loads.us), _x),
                    _spread(stats.ratios(t.us, ours.us), _x),
                ]
            )
        return _table(header, rows)

    def import_table(self) -> list[str]:
        header = ["subject", "fresh interpreters", "ms"]
        return _table(header, [[t.name, len(t.ms), _spread(t.ms)] for t in self.imports])

    def rss_table(self) -> list[str]:
        header = [
            "client",
            "requests",
            "runs",
            "RSS before (MiB)",
            "peak - before (MiB)",
            "answered when measured",
            "seconds",
            "errors",
        ]
        rows = []
        for r in self.rss:
            answered = ", ".join(f"{a:,}" for a in r.answered())
            rows.append(
                [
                    r.client,
                    f"{r.requests:,}",
                    len(r.samples),
                    _spread(r.baseline_mib()),
                    _spread(r.delta_mib()),
                    answered,
                    _spread(r.wall_s()),
                    r.errors(),
                ]
            )
        return _table(header, rows)

    def render(self, env: dict[str, str], chart: str | None, args: argparse.Namespace) -> str:
        lines = [
            "# Benchmarks",
            "",
            "Written by `python -m benchmarks` (`nox -s bench`, `aioretell bench`); do not edit by "
            "hand. How each number is measured is in `benchmarks/README.md` and the docstrings of "
            "`benchmarks/*.py`. Every ratio is taken within this one run; nothing is asserted.",
            "",
            *_table(["", ""], list(env.items())),
        ]
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        if self.comparisons:
            lines += [
                "",
                "## Throughput",
                "",
                "Requests per second, median of the rounds; the ratios are client CPU per "
                "request, the median of round-by-round pairs. c is the number of requests in "
                "flight. `floor` is raw aiohttp + msgspec with no client logic.",
            ]
            for target in dict.fromkeys(c.target for c in self.comparisons):
                lines += ["", f"### {target} server", "", *self.headline(target)]
            if chart:
                lines += ["", f"![requests per second against concurrency]({chart})"]
            far = self.far_from_floor()
            lines += ["", f"### aioretell more than {FLOOR_TOLERANCE}x from the floor", ""]
            lines += [f"- {row}" for row in far] if far else ["None."]
            lines += [
                "",
                "### Every client, every cell",
                "",
                "Median (min to max) over the rounds. Each client's requests per round were sized "
                f"from a discarded calibration round to last about {args.round_seconds} s "
                f"(at least c, at most {args.max_requests:,}); a client whose round took over "
                f"{args.slow_round_seconds} s ran {args.slow_rounds} rounds instead of "
                f"{args.rounds}. Errors are requests that raised (none are retried).",
                "",
                *self.client_details(),
            ]
        if self.decodes:
            lines += [
                "",
                "## Decode",
                "",
                "µs to turn one response body into objects, median (min to max) of "
                f"{args.decode_repeat} timed runs. `aioretell` is a msgspec Struct decode; "
                "`retell-sdk` is `json.loads` + `construct_type`, its default; `retell-sdk strict`"
                " is `model_validate`.",
                "",
                *self.decode_table(),
            ]
        if self.imports:
            lines += ["", "## Cold import", "", *self.import_table()]
        if self.rss:
            lines += [
                "",
                "## Memory with requests in flight",
                "",
                f"{self.rss[0].requests:,} `chat.retrieve` calls started at once, each client "
                "with its library's default pool (100 connections) in a fresh process; the "
                f"server answers each after {rss.DELAY_S * 1000:.0f} ms. Peak RSS (`ru_maxrss`; on "
                "Linux `VmHWM`, the same peak but not inherited from the parent) minus its value "
                "just before the requests, read when all are answered or at the "
                f"{args.rss_deadline:.0f} s deadline, whichever is first.",
                "",
                *self.rss_table(),
            ]
        for title, markdown in self.extra:
            lines += ["", f"## {title}", "", markdown]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "client_cpu": [c.to_json() for c in self.comparisons],
            "decode": [
                {"body": t.body, "bytes": t.size, "decoder": t.decoder, "us": t.us}
                for t in self.decodes
            ],
            "import_ms": {t.name: t.ms for t in self.imports},
            "rss": [
                {
                    "client": r.client,
                    "requests": r.requests,
                    "samples": [vars_(s) for s in r.samples],
                }
                for r in self.rss
            ],
        }


def vars_(sample: rss.RssSample) -> dict[str, Any]:
    return {name: getattr(sample, name) for name in sample.__slots__}


# -- sections -----------------------------------------------------------------------------------


def client_section(report: Report, args: argparse.Namespace) -> None:
    if not client_cpu.sdk_aiohttp_available():
        report.notes.append(
            "`retell-sdk aiohttp` was left out: install `retell-sdk[aiohttp]` (httpx-aiohttp)."
        )
    for target_name in args.targets:
        for operation in args.operations:
            with targets.running(target_name, page_size=args.page_size) as target:
                for concurrency in args.concurrency:
                    started = time.perf_counter()
                    comparison = asyncio.run(
                        client_cpu.compare(
                            target,
                            operation=operation,
                            concurrency=concurrency,
                            rounds=args.rounds,
                            round_seconds=args.round_seconds,
                            max_requests=args.max_requests,
                            slow_rounds=args.slow_rounds,
                            slow_round_seconds=args.slow_round_seconds,
                        )
                    )
                    report.comparisons.append(comparison)
                    log(
                        f"  {target_name} {operation} c={concurrency}: "
                        f"{time.perf_counter() - started:.1f} s"
                    )


def decode_section(report: Report, args: argparse.Namespace) -> None:
    report.decodes = decode.run(repeat=args.decode_repeat, min_time=args.decode_time)


def import_section(report: Report, args: argparse.Namespace) -> None:
    report.imports = import_time.run(runs=args.import_runs)


def rss_section(report: Report, args: argparse.Namespace) -> None:
    clients = [c for c in rss.CLIENTS if c != "retell-sdk aiohttp"]
    if client_cpu.sdk_aiohttp_available():
        clients = list(rss.CLIENTS)
    report.rss = rss.run(
        requests=args.rss_requests,
        rounds=args.rss_rounds,
        clients=clients,
        deadline=args.rss_deadline,
    )


# -- command line -------------------------------------------------------------------------------


def fanout_section(report: Report, args: argparse.Namespace) -> None:
    from benchmarks import fan_out

    items = 100_000 if args.quick else 1_000_000
    report.extra.append(("fan_out over lazy input", fan_out.report(items, 100)))


def pacing_section(report: Report, args: argparse.Namespace) -> None:
    import asyncio

    from benchmarks import pacing

    report.extra.append(("Pacing against the emulator", asyncio.run(pacing.run(args.quick))))


def _ints(low: int, high: int) -> Callable[[str], list[int]]:
    one = integer(low, high)

    def parse(text: str) -> list[int]:
        values = [one(x.strip()) for x in text.split(",") if x.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected numbers like 1,64, got {text!r}")
        return values

    return parse


def _names(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [x.strip() for x in text.split(",") if x.strip()]
        unknown = set(names) - set(choices)
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {sorted(unknown) or repr(text)}; choose from {', '.join(choices)}"
            )
        return names

    return parse


def parse_args(argv: Sequence[str], prog: str = "python -m benchmarks") -> argparse.Namespace:
    parser = OneLineParser(
        prog=prog,
        description=__doc__,
        epilog=f"Needs the bench extra: {INSTALL_HINT} from the repository root.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    some = integer(1, 1_000)
    secs = number(0, 3_600, above_low=True)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about 2 min)")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs",
        help="folder for benchmarks.md and .png (default: docs/ of the checkout)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write raw numbers here")
    parser.add_argument("--only", type=_names(SECTIONS), default=list(SECTIONS), help="sections")
    parser.add_argument("--targets", type=_names(targets.TARGETS), default=list(targets.TARGETS))
    parser.add_argument(
        "--operations", type=_names(client_cpu.OPERATIONS), default=list(client_cpu.OPERATIONS)
    )
    parser.add_argument(
        "--concurrency", type=_ints(1, 10_000), help="e.g. 1,16,64,256,1024 (the default)"
    )
    parser.add_argument("--rounds", type=some, help="timed rounds per client (default 5)")
    parser.add_argument("--round-seconds", type=secs, help="target length of a round (0.3)")
    parser.add_argument(
        "--max-requests", type=integer(1, 1_000_000), help="most requests per round (4000)"
    )
    parser.add_argument("--slow-rounds", type=some, default=3, help="rounds of a slow client")
    parser.add_argument("--slow-round-seconds", type=secs, default=2.0)
    parser.add_argument(
        "--page-size", type=integer(1, 1_000), default=100, help="calls per list-calls page"
    )
    parser.add_argument("--import-runs", type=some, help="interpreters per subject (default 20)")
    parser.add_argument(
        "--rss-requests", type=integer(1, 100_000), help="requests in flight (default 10,000)"
    )
    parser.add_argument("--rss-rounds", type=some, help="runs per client (default 2)")
    parser.add_argument("--rss-deadline", type=secs, help="seconds, at most (20)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.concurrency = args.concurrency or ([1, 64] if quick else list(CONCURRENCY))
    args.rounds = args.rounds or (2 if quick else 5)
    args.slow_rounds = min(args.slow_rounds, args.rounds)
    args.round_seconds = args.round_seconds or (0.1 if quick else 0.3)
    args.max_requests = args.max_requests or (1000 if quick else 4000)
    args.import_runs = args.import_runs or (3 if quick else 20)
    args.rss_requests = args.rss_requests or (2000 if quick else 10_000)
    args.rss_rounds = args.rss_rounds or (1 if quick else 2)
    args.decode_repeat = 3 if quick else 7
    args.decode_time = 0.02 if quick else 0.1
    args.rss_deadline = args.rss_deadline or (10.0 if quick else 20.0)
    problem = missing_extras(args.only) or unwritable(args)
    if problem:
        parser.exit(2, f"{prog}: {problem}\n")
    return args


def missing_extras(sections: Sequence[str]) -> str | None:
    """Why the chosen sections cannot run here (a module of the bench extra is missing)."""
    missing = {
        dist: None
        for section in sections
        for module, dist in NEEDS.get(section, ())
        if importlib.util.find_spec(module) is None
    }
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed; run "
        f"{INSTALL_HINT} (or nox -s bench) from the repository root"
    )


def unwritable(args: argparse.Namespace) -> str | None:
    """Why the report could not be written where asked, found before the minutes of running."""
    out: Path = args.out
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file; give a folder"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--out {out}: cannot create it ({exc.strerror})"
    if not os.access(out, os.W_OK):
        return f"--out {out} is not writable"
    json_path: Path | None = args.json
    if json_path is not None:
        if json_path.is_dir():
            return f"--json {json_path} is a folder; give a file name"
        if not json_path.resolve().parent.is_dir():
            return f"--json {json_path}: its folder does not exist"
    return None


def write_results(
    report: Report,
    env: dict[str, str],
    args: argparse.Namespace,
    draw: Callable[[Sequence[Comparison], Path, str], None] | None = None,
) -> int:
    """The report, then the raw numbers, then the chart: a chart that cannot be drawn costs the
    chart alone (the report is rewritten without it), never the numbers. 1 when it failed."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    chart = "benchmarks.png" if report.comparisons else None
    markdown = out / "benchmarks.md"
    # The standalone benchmarks' sections (shared pacing, scale-out, ...) stay as they were.
    kept = doc_sections.sections(markdown.read_text("utf-8")) if markdown.exists() else {}

    def render(chart_name: str | None) -> str:
        text = report.render(env, chart_name, args)
        return text + "".join("\n" + block for block in kept.values())

    markdown.write_text(render(chart), encoding="utf-8")
    log(f"wrote {markdown}")
    if args.json is not None:
        args.json.write_text(json.dumps({"environment": env, **report.to_json()}, indent=2) + "\n")
        log(f"raw numbers written to {args.json}")
    if chart is None:
        return 0
    if draw is None:
        from benchmarks.chart import draw
    title = f"aioretell benchmarks: {env['python']}, {env['machine']}, {env['date']}"
    try:
        draw(report.comparisons, out / chart, title)
    except Exception as exc:  # noqa: BLE001 - whatever the plotting library raises, keep the numbers
        markdown.write_text(render(None), encoding="utf-8")
        log(f"the chart was not drawn ({type(exc).__name__}: {exc}); every number is in {markdown}")
        return 1
    log(f"wrote {out / chart}")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv, prog)
    started = time.perf_counter()
    report = Report()
    sections = {
        "client": client_section,
        "decode": decode_section,
        "import": import_section,
        "rss": rss_section,
        "fanout": fanout_section,
        "pacing": pacing_section,
    }
    for name in SECTIONS:
        if name in args.only:
            log(f"running {name} benchmarks ...")
            section_started = time.perf_counter()
            sections[name](report, args)
            log(f"{name}: {time.perf_counter() - section_started:.0f} s")
    env = environment(argv, time.perf_counter() - started)
    status = write_results(report, env, args)
    far = report.far_from_floor()
    if report.comparisons:
        print(f"aioretell more than {FLOOR_TOLERANCE}x from the floor:")
        for line in far or ["none"]:
            print(f"  {line}")
    print(f"run time {time.perf_counter() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
