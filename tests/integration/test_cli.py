"""The command line: the demo, ``aioretell emulator``, help and version, one-line errors for
bad options, unusable addresses, wrong keys, no server and Ctrl-C, and bench's extras check."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import aioretell
from aioretell import AsyncRetell
from aioretell.cli import main
from aioretell.demo import EMULATOR_LLM_ID, run_demo
from aioretell.emulator import Emulator, EmulatorConfig, Fault


async def test_demo_runs_against_in_process_emulator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    await run_demo(api_key=None, base_url=None, calls=25)
    out = capsys.readouterr().out
    assert "Retell emulator started in-process" in out
    assert "Created chat agent" in out
    assert out.count("agent: ") == 2
    assert "is ended" in out
    assert re.search(r"Placed 25 calls concurrently", out)
    assert re.search(r"latency: p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms", out)


async def test_emulator_command_serves_over_a_socket() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = "key_cli_secret"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioretell",
        "emulator",
        "--port",
        str(port),
        "--api-key",
        key,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), timeout=30)).decode()
        assert f"http://127.0.0.1:{port}" in line
        assert key not in line
        async with AsyncRetell(api_key=key, base_url=f"http://127.0.0.1:{port}") as client:
            limits = await client.concurrency.retrieve()
        assert limits.concurrency_limit == 20
    finally:
        proc.terminate()
        await proc.wait()


# -- every subcommand: help with defaults, version, one-line usage errors --------------------


def _default_sigint() -> None:
    # A shell running the tests in the background may ignore SIGINT; the child must not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RETELL_API_KEY", "RETELL_BASE_URL")}
    return {**env, "PYTHONUNBUFFERED": "1"}


async def _aioretell(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aioretell", *args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
        preexec_fn=_default_sigint,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"aioretell {aioretell.__version__}"


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (
            ["dial"],
            [
                "--concurrency N       create requests in flight at most (default: 20)",
                "(default: 60)",  # --redial-delay
                "calls (default: 1)",  # --poll-interval
                "for lost webhooks (default: 30)",  # --reconcile-interval
                "(default: LEADS.journal.db",
                "$RETELL_BASE_URL, else",
                "none means the in-process",
                "--encoding ENCODING",
                "--yes",
            ],
        ),
        (
            ["emulator"],
            [
                "--port PORT           (default: 8080",
                "how long a connected call lasts (default: 5)",
                "concurrency_limit_reached (default: 20)",
                "--host HOST           (default: 127.0.0.1)",
            ],
        ),
        (["demo"], ["--base-url BASE_URL  the server (default:", "(default: 100)"]),
        (["bench"], ["usage: aioretell bench", 'pip install -e ".[bench]"']),
    ],
)
def test_help_shows_defaults(
    capsys: pytest.CaptureFixture[str], command: list[str], shown: list[str]
) -> None:
    assert main([*command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in shown:
        assert " ".join(text.split()) in out


BAD = [
    (["demo", "--calls", "0"], "--calls"),
    (["demo", "--calls", "-3"], "--calls"),
    (["demo", "--calls", "nan"], "--calls"),
    (["demo", "--calls", "10000000000"], "--calls"),
    (["demo", "--calls", ""], "--calls"),
    (["demo", "--base-url", "localhost:8080", "--api-key", "k"], "--base-url"),
    (["demo", "--base-url", "http://127.0.0.1:9"], "--base-url"),  # a URL but no key
    (["demo", "--api-key", ""], "--api-key"),
    *(
        (["emulator", "--api-key", "k", option, value], option)
        for option, values in {
            "--port": ["-1", "65536", "", "http", "8080.5"],
            "--call-duration": ["nan", "inf", "-1", "", "1e300"],
            "--ring-duration": ["-0.5", "nan"],
            "--concurrency-limit": ["0", "-1", "1e3", "99999999999999999999"],
            "--rate-limit": ["0", "-1", "nan", "inf"],
            "--seed": ["-1", "x", "1" * 40],
            "--webhook-duplicates": ["-1", "1000"],
            "--webhook-url": ["", "not a url"],
            "--host": [""],
        }.items()
        for value in values
    ),
    (["emulator"], "--api-key"),
    (["emulator", "--api-key", ""], "--api-key"),
    (["bench", "--rounds", "0"], "--rounds"),
    (["bench", "--round-seconds", "nan"], "--round-seconds"),
    (["bench", "--round-seconds", "inf"], "--round-seconds"),
    (["bench", "--concurrency", "1,-64"], "--concurrency"),
    (["bench", "--concurrency", ""], "--concurrency"),
    (["bench", "--max-requests", "1e99"], "--max-requests"),
    (["bench", "--rss-requests", "99999999"], "--rss-requests"),
    (["bench", "--rss-deadline", "-1"], "--rss-deadline"),
    (["bench", "--slow-round-seconds", "0"], "--slow-round-seconds"),
    (["bench", "--page-size", "0"], "--page-size"),
    (["bench", "--import-runs", "-2"], "--import-runs"),
    (["bench", "--only", ""], "--only"),
    (["nope"], "COMMAND"),
]


@pytest.mark.parametrize(("command", "option"), BAD)
def test_bad_option_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    option: str,
) -> None:
    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    _no_benchmark_runs(monkeypatch)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert option in err
    assert "Traceback" not in err


def _no_benchmark_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure a test never starts the real (minutes long) benchmarks."""
    import benchmarks.run

    def started(*_: object) -> None:
        raise AssertionError("a benchmark section started")

    for name in ("client", "decode", "import", "rss", "fanout", "pacing"):
        monkeypatch.setattr(benchmarks.run, f"{name}_section", started)


@pytest.mark.parametrize(
    ("hidden", "sections", "named"),
    [
        (["matplotlib"], "client", "matplotlib is not installed"),
        (["retell"], "decode,import", "retell-sdk is not installed"),
        (["matplotlib", "retell"], "client,rss", "retell-sdk and matplotlib are not installed"),
    ],
)
def test_bench_checks_its_extras_before_running(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    hidden: list[str],
    sections: str,
    named: str,
) -> None:
    _no_benchmark_runs(monkeypatch)
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name in hidden else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert main(["bench", "--only", sections, "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f'aioretell bench: {named}; run pip install -e ".[bench]" (or nox -s bench) from the '
        "repository root"
    ]


def test_bench_without_extras_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """``import matplotlib`` blocked the way a missing package fails; nothing runs."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import benchmarks.run as run\n"
        "def started(*_): raise SystemExit('a benchmark section started')\n"
        "run.client_section = started\n"
        "from aioretell.cli import main\n"
        f"sys.exit(main(['bench', '--only', 'client', '--out', {str(tmp_path)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "matplotlib is not installed" in done.stderr
    assert "Traceback" not in done.stderr


# -- the emulator command ---------------------------------------------------------------------


async def test_emulator_on_a_busy_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = await _aioretell("emulator", "--port", str(port), "--api-key", "k")
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    (line,) = err.decode().strip().splitlines()
    # asyncio words the OS error its own way (3.13 adds "[errno 98]"); the line is ours.
    assert line.startswith(f"aioretell emulator: cannot listen on 127.0.0.1:{port}: ")
    assert line.endswith("address already in use"), line


@pytest.mark.parametrize("host", ["no-such-host.invalid", "192.0.2.1"])
async def test_emulator_on_an_unusable_host_is_one_line(host: str) -> None:
    proc = await _aioretell("emulator", "--host", host, "--port", "0", "--api-key", "k")
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    (line,) = err.decode().strip().splitlines()
    assert line.startswith(f"aioretell emulator: cannot listen on {host}:0: ")


async def test_emulator_ctrl_c_is_one_line_and_130() -> None:
    port = _free_port()
    proc = await _aioretell("emulator", "--port", str(port), "--api-key", "k")
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), timeout=30)
    assert f"127.0.0.1:{port}" in line.decode()
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 130
    assert err.decode().strip() == "Emulator stopped."


# -- the demo ---------------------------------------------------------------------------------


@pytest.fixture
async def demo_emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(api_key=DEMO_SERVER_KEY, concurrency_limit=50)) as emu:
        yield emu


DEMO_SERVER_KEY = "key_demo_server"


async def test_demo_runs_the_tour_on_an_emulator_given_by_url(demo_emulator: Emulator) -> None:
    proc = await _aioretell(
        *("demo", "--api-key", DEMO_SERVER_KEY, "--base-url", demo_emulator.base_url),
        *("--calls", "12"),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert f"Connected to {demo_emulator.base_url}" in text
    assert "RETELL_API_KEY" not in text  # no advice about a variable that was never set
    assert "Created chat agent" in text
    assert "Placed 12 calls concurrently" in text
    assert len(demo_emulator.state.dialed_numbers()) == 12


async def test_demo_on_another_server_places_no_call(demo_emulator: Emulator) -> None:
    # Without the emulator's built-in LLM the server is taken for the real API.
    async with AsyncRetell(api_key=DEMO_SERVER_KEY, base_url=demo_emulator.base_url) as client:
        await client.llm.delete(EMULATOR_LLM_ID)
    proc = await _aioretell(
        "demo", "--api-key", DEMO_SERVER_KEY, "--base-url", demo_emulator.base_url
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "is not an aioretell emulator" in out.decode()
    assert demo_emulator.state.dialed_numbers() == []
    assert "createChatAgent" not in {op for op, _, _ in demo_emulator.requests}


async def test_demo_with_a_wrong_key_is_one_line(demo_emulator: Emulator) -> None:
    proc = await _aioretell("demo", "--api-key", "key_wrong", "--base-url", demo_emulator.base_url)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    (line,) = err.decode().strip().splitlines()
    assert line.startswith("aioretell demo: the server refused the API key (401")
    assert "key_wrong" not in line
    assert out == b""


def test_demo_with_no_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        assert main(["demo", "--api-key", "k", "--base-url", url]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"aioretell demo: cannot reach {url}: ")


async def test_demo_ctrl_c_mid_run_is_one_line_and_130(demo_emulator: Emulator) -> None:
    demo_emulator.faults.script("createChat", [Fault.delay(60)])
    proc = await _aioretell(
        "demo", "--api-key", DEMO_SERVER_KEY, "--base-url", demo_emulator.base_url
    )
    assert proc.stdout is not None
    while True:  # until the tour is under way (the chat then waits on the delayed create)
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, "the demo ended before its tour started"
        if b"Created chat agent" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 130
    assert err.decode().strip() == "Interrupted."
