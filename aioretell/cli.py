"""The ``aioretell`` command: ``demo``, ``dial``, ``campaign``, ``llm-test``, ``emulator`` and
``bench``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aioretell", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="an agent, a chat and 100 concurrent calls against the emulator"
    )
    demo.add_argument("--api-key", help="defaults to $RETELL_API_KEY; none runs the emulator")
    demo.add_argument("--base-url", help="defaults to $RETELL_BASE_URL or Retell's production API")
    demo.add_argument("--calls", type=_positive_int, default=100, help="phone calls to place")

    from .dial.cli import add_arguments as add_dial_arguments

    add_dial_arguments(
        commands.add_parser("dial", help="call every lead of a CSV once, crash-safe (journal)")
    )

    from .dial.status import add_arguments as add_campaign_arguments

    add_campaign_arguments(
        commands.add_parser(
            "campaign",
            help="show a dial campaign: leads by state and outcome, live calls, rate, workers",
        )
    )

    emulator = commands.add_parser("emulator", help="serve a local Retell emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8080)
    emulator.add_argument("--api-key", required=True, help="the Bearer key clients must send")
    emulator.add_argument("--call-duration", type=float, default=5.0, metavar="SECONDS")
    emulator.add_argument("--ring-duration", type=float, default=0.5, metavar="SECONDS")
    emulator.add_argument("--concurrency-limit", type=_positive_int, default=20, metavar="N")
    emulator.add_argument("--rate-limit", type=float, default=None, metavar="RPS")
    emulator.add_argument("--seed", type=int, default=0)
    emulator.add_argument(
        "--webhook-url", default=None, help="deliver signed webhooks here (agents may override)"
    )
    emulator.add_argument(
        "--webhook-duplicates", type=int, default=0, metavar="N", help="extra copies of each"
    )

    from .llm.llm_test import add_arguments as add_llm_test_arguments

    add_llm_test_arguments(
        commands.add_parser(
            "llm-test",
            help="drive a custom-LLM WebSocket server the way Retell would; measure it",
            description="Play scripted calls against a custom-LLM server (ours or any other) "
            "the way Retell would, and print latency, stale answers, protocol violations and a "
            "transcript. Exit status 0 only if every turn was answered with no stale answer, "
            "violation or socket error.",
        )
    )

    commands.add_parser(
        "bench",
        add_help=False,
        help="run the benchmark suite of a source checkout; arguments go to 'python -m "
        "benchmarks' (see 'aioretell bench --help')",
    )
    return parser


def _bench(argv: Sequence[str]) -> int:
    """``python -m benchmarks`` with ``argv``, from the checkout this package was loaded from."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / "benchmarks" / "run.py").is_file():
            sys.path.insert(0, str(root))
            break
    else:
        print(
            "aioretell bench runs the benchmarks/ folder of a source checkout, and none was "
            "found (this aioretell was installed from a wheel, and the current directory is not "
            "the repository). Clone the repository, run 'pip install -e \".[dev,bench]\"' and "
            "then 'aioretell bench' (or 'nox -s bench') from its root.",
            file=sys.stderr,
        )
        return 2
    from benchmarks.run import main as run_benchmarks  # type: ignore[import-not-found,unused-ignore]

    result: int = run_benchmarks(list(argv))
    return result


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # every later argument is the benchmark runner's
        return _bench(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        asyncio.run(run_demo(api_key=args.api_key, base_url=args.base_url, calls=args.calls))
        return 0
    if args.command == "dial":
        from .dial.cli import run as run_dial

        return run_dial(args)
    if args.command == "campaign":
        from .dial.status import run as run_campaign_status

        return run_campaign_status(args)
    if args.command == "llm-test":
        from .llm.llm_test import run as run_llm_test

        return run_llm_test(args)
    from .emulator import EmulatorConfig, serve

    config = EmulatorConfig(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        call_duration_s=args.call_duration,
        ring_duration_s=args.ring_duration,
        concurrency_limit=args.concurrency_limit,
        rate_limit_rps=args.rate_limit,
        seed=args.seed,
        webhook_url=args.webhook_url,
        webhook_duplicates=args.webhook_duplicates,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
