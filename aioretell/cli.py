"""The ``aioretell`` command: ``demo``, ``dial``, ``campaign``, ``llm-test``, ``emulator`` and
``bench``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ._cli_args import OneLineParser, http_url, integer, non_empty, number, seconds
from ._client import DEFAULT_BASE_URL
from ._version import __version__

#: The demo starts its calls all at once, one connection each.
MAX_DEMO_CALLS = 1_000


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="aioretell",
        description="aioretell's commands: a campaign dialer, a local Retell emulator, a demo "
        "and the benchmarks. 'aioretell COMMAND --help' for each.",
    )
    parser.add_argument("--version", action="version", version=f"aioretell {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="an agent, a chat and 100 concurrent calls against the emulator",
        description="A tour: a chat agent, a chat with two completions, then concurrent phone "
        "calls, against a Retell emulator started in-process (no key) or an 'aioretell "
        "emulator' given by --base-url and --api-key. Against the real API it only reads the "
        "account's concurrency: the demo never dials real numbers.",
    )
    demo.add_argument(
        "--api-key",
        type=non_empty,
        help="default: $RETELL_API_KEY; none runs the tour on an in-process emulator",
    )
    demo.add_argument(
        "--base-url",
        type=http_url,
        help=f"the server (default: $RETELL_BASE_URL, else {DEFAULT_BASE_URL}); needs a key",
    )
    demo.add_argument(
        "--calls",
        type=integer(1, MAX_DEMO_CALLS),
        default=100,
        metavar="N",
        help="phone calls to place at once (default: %(default)s)",
    )

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

    emulator = commands.add_parser(
        "emulator",
        help="serve a local Retell emulator",
        description="Serve an emulated Retell account over HTTP until Ctrl-C. Point any client "
        "at it with its base URL and the --api-key given here; no real call is placed.",
    )
    emulator.add_argument(
        "--host", type=non_empty, default="127.0.0.1", help="(default: %(default)s)"
    )
    emulator.add_argument(
        "--port",
        type=integer(0, 65_535),
        default=8080,
        help="(default: %(default)s; 0 picks a free port)",
    )
    emulator.add_argument(
        "--api-key", required=True, type=non_empty, help="the Bearer key clients must send"
    )
    emulator.add_argument(
        "--call-duration",
        type=seconds(allow_zero=True),
        default=5.0,
        metavar="SECONDS",
        help="how long a connected call lasts (default: %(default)g)",
    )
    emulator.add_argument(
        "--ring-duration",
        type=seconds(allow_zero=True),
        default=0.5,
        metavar="SECONDS",
        help="how long a call rings before it connects (default: %(default)g)",
    )
    emulator.add_argument(
        "--concurrency-limit",
        type=integer(1, 1_000_000),
        default=20,
        metavar="N",
        help="live calls at most; calls beyond it end as concurrency_limit_reached "
        "(default: %(default)s)",
    )
    emulator.add_argument(
        "--rate-limit",
        type=number(0, 1_000_000, above_low=True),
        default=None,
        metavar="RPS",
        help="answer 429 beyond this many requests per second (default: no limit)",
    )
    emulator.add_argument(
        "--seed",
        type=integer(0, 2**63 - 1),
        default=0,
        help="seeds ids and call outcomes (default: %(default)s)",
    )
    emulator.add_argument(
        "--webhook-url",
        type=http_url,
        default=None,
        help="deliver signed webhooks here (agents may override; default: none)",
    )
    emulator.add_argument(
        "--webhook-duplicates",
        type=integer(0, 100),
        default=0,
        metavar="N",
        help="extra copies of each webhook, to test deduplication (default: %(default)s)",
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
        help="run the benchmark suite of a source checkout (needs the bench extra); arguments "
        "go to the benchmark runner (see 'aioretell bench --help')",
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

    try:
        result: int = run_benchmarks(list(argv), prog="aioretell bench")
    except SystemExit as exc:  # --help, or a usage error already printed
        return _status(exc)
    return result


def _status(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["bench"]:  # every later argument is the benchmark runner's
            return _bench(argv[1:])
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error already printed
            return _status(exc)
        if args.command == "demo":
            return _demo(args)
        if args.command == "dial":
            from .dial.cli import run as run_dial

            return run_dial(args)
        if args.command == "campaign":
            from .dial.status import run as run_campaign_status

            return run_campaign_status(args)
        if args.command == "llm-test":
            from .llm.llm_test import run as run_llm_test

            return run_llm_test(args)
        return _emulator(args)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130


def _demo(args: argparse.Namespace) -> int:
    from ._exceptions import APIConnectionError, AuthenticationError, RetellError
    from .demo import run_demo

    if args.base_url is not None and not (args.api_key or os.environ.get("RETELL_API_KEY")):
        print(
            "aioretell demo: --base-url needs --api-key or $RETELL_API_KEY (with neither, the "
            "demo starts its own emulator)",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(run_demo(api_key=args.api_key, base_url=args.base_url, calls=args.calls))
    except AuthenticationError as exc:
        print(f"aioretell demo: the server refused the API key ({exc})", file=sys.stderr)
        return 1
    except APIConnectionError as exc:
        server = args.base_url or os.environ.get("RETELL_BASE_URL") or DEFAULT_BASE_URL
        print(f"aioretell demo: cannot reach {server}: {exc}", file=sys.stderr)
        return 1
    except RetellError as exc:
        print(f"aioretell demo: {exc}", file=sys.stderr)
        return 1
    return 0


def _emulator(args: argparse.Namespace) -> int:
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
    try:
        asyncio.run(serve(config))
    except OSError as exc:  # the address: busy, not this machine's, or no such host
        print(
            f"aioretell emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("\nEmulator stopped.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
