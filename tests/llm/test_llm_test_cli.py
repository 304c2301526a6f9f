"""``aioretell llm-test`` as a stranger runs it: a real process against servers on loopback,
every bad option, an unreachable server, a refused socket, a stale-answer server, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from aioretell.llm.llm_test import LLMTestReport, run_conversations
from aioretell.llm.retell_side import RetellSide
from aioretell.llm.script import DEFAULT_SCRIPT

from .handwritten_llm import handwritten_llm

ROOT = Path(__file__).resolve().parents[2]
# Only a guard against a hung test, never an assertion about speed.
SAFETY_TIMEOUT = 60.0


async def start_llm_test(*args: str, **options: Any) -> asyncio.subprocess.Process:
    """Start ``python -m aioretell llm-test ARGS`` from this checkout, its stdout and stderr
    piped; ``options`` go to :func:`asyncio.create_subprocess_exec` and win."""
    settings: dict[str, Any] = {
        "stdout": asyncio.subprocess.PIPE,
        "stderr": asyncio.subprocess.PIPE,
        "env": {**os.environ, "PYTHONPATH": str(ROOT)},
        **options,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aioretell", "llm-test", *args, **settings
    )


async def llm_test(*args: str, **options: Any) -> tuple[int, str, str]:
    """Run :func:`start_llm_test` to the end; returns (exit status, stdout, stderr)."""
    process = await start_llm_test(*args, **options)
    out, err = await asyncio.wait_for(process.communicate(), SAFETY_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1/llm"], "must be a ws:// or wss:// URL with a host"),
        ([""], "must be a ws:// or wss:// URL with a host"),
        (["ws:///nohost"], "must be a ws:// or wss:// URL with a host"),
        (["ws://h/llm", "--calls", "0"], "argument --calls: must be between 1 and 10000, got 0"),
        (["ws://h/llm", "--calls", "-5"], "argument --calls: must be between 1 and 10000"),
        (["ws://h/llm", "--calls", "1000000"], "argument --calls: must be between 1 and 10000"),
        (["ws://h/llm", "--calls", "ten"], "argument --calls: must be a whole number, got 'ten'"),
        (["ws://h/llm", "--calls", "nan"], "argument --calls: must be a whole number"),
        (["ws://h/llm", "--calls", ""], "argument --calls: must be a whole number"),
        (["ws://h/llm", "--ping-interval", "nan"], "argument --ping-interval: must be more than 0"),
        (["ws://h/llm", "--ping-interval", "inf"], "argument --ping-interval: must be more than 0"),
        (["ws://h/llm", "--ping-interval", "-1"], "argument --ping-interval: must be more than 0"),
        (["ws://h/llm", "--ping-interval", "0"], "argument --ping-interval: must be more than 0"),
        (["ws://h/llm", "--response-timeout", "1e9"], "argument --response-timeout: must be"),
        (["ws://h/llm", "--open-timeout", "soon"], "argument --open-timeout: must be a number"),
        (["ws://h/llm", "--script", "/no/such/file.yaml"], "cannot read /no/such/file.yaml"),
        (["ws://h/llm", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "the following arguments are required: URL"),
    ],
)
async def test_bad_arguments_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    status, out, err = await llm_test(*args)
    assert status == 2
    assert message in err
    assert "Traceback" not in err
    assert out == ""
    # One line says what is wrong (argparse puts its usage summary above it).
    last = err.splitlines()[-1]
    assert message in last
    assert last.startswith(("aioretell llm-test: ", "aioretell: "))
    assert len([line for line in err.splitlines() if line.startswith("aioretell")]) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("turns:\n  - user: hi\n    pause: -1\n", "turns[0].pause must be between 0"),
        ("turns: []\n", "'turns' must be a non-empty list"),
        ("turns: [unclosed\n", "not valid YAML at line"),
        ("", "a script is a mapping"),
        ("turns:\n  - user: hi\n    pause: .nan\n", "turns[0].pause must be between 0"),
    ],
)
async def test_a_bad_script_is_one_line_and_exit_2(
    content: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "conversation.yaml"
    path.write_text(content)
    status, out, err = await llm_test("ws://127.0.0.1:9/llm", "--script", str(path))
    assert status == 2
    assert err.splitlines() == [err.strip()]
    assert message in err and str(path) in err
    assert out == ""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
async def test_more_calls_than_open_files_allowed_is_refused_up_front() -> None:
    import resource

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    status, out, err = await llm_test(
        "ws://127.0.0.1:9/llm", "--calls", "1000", preexec_fn=few_files
    )
    assert status == 2
    assert out == ""
    assert err.strip() == (
        "aioretell llm-test: --calls 1000 needs a socket each, but this process may open only "
        "256 files (raise the limit with 'ulimit -n')"
    )


async def test_nothing_listening_is_one_line_and_exit_1() -> None:
    url = f"ws://127.0.0.1:{free_port()}/llm"
    status, out, err = await llm_test(url, "--calls", "3")
    assert status == 1
    assert out == ""
    assert err.splitlines() == [err.strip()]
    assert err.startswith(f"aioretell llm-test: cannot open {url}: cannot connect:")


async def test_a_refused_socket_is_one_line_and_exit_1() -> None:
    async with handwritten_llm(refuse_status=403) as llm:
        status, out, err = await llm_test(llm.url)
    assert status == 1
    assert out == ""
    assert err.strip() == (
        f"aioretell llm-test: cannot open {llm.url}: the server refused the WebSocket: HTTP 403"
    )


async def test_a_good_server_passes_with_every_turn_answered(tmp_path: Path) -> None:
    script = tmp_path / "conversation.json"
    script.write_text(json.dumps({"turns": ["Hi there", "Book a table"], "hang_up_after": 0}))
    async with handwritten_llm() as llm:
        status, out, err = await llm_test(
            llm.url, "--calls", "20", "--script", str(script), "--ping-interval", "0.05"
        )
    assert status == 0, out + err
    assert err == ""
    assert f"20 conversations with {llm.url} (script {script}, 2 user turns)" in out
    assert "ended: 20 user_hangup" in out
    assert "turns: 60 asked, 60 answered (0 cut short by a barge-in), 0 unanswered" in out
    assert "stale responses (sent after being superseded): 0" in out
    assert "protocol violations: 0" in out
    assert "  Agent: You said: Book a table" in out
    assert out.rstrip().endswith(
        "OK: every turn answered, no stale responses, no protocol violations"
    )
    assert llm.connections == 20


async def test_the_default_script_runs_without_a_file() -> None:
    async with handwritten_llm() as llm:
        status, out, _ = await llm_test(llm.url, "--calls", "2")
    assert status == 0, out
    assert "(built-in script, 4 user turns)" in out
    assert "turns: 10 asked, 10 answered" in out


async def test_stale_answers_fail_the_run_and_are_counted(tmp_path: Path) -> None:
    script = tmp_path / "conversation.yaml"
    script.write_text(
        "hang_up_after: 0\n"
        "turns:\n"
        "  - Tell me something slow\n"
        "  - user: Stop\n"
        "    interrupt_after_chunks: 1\n"
        "    pause: 0\n"
    )
    async with handwritten_llm(stale_after_newer=2) as llm:
        status, out, _ = await llm_test(llm.url, "--calls", "3", "--script", str(script))
    assert status == 1
    assert "stale responses (sent after being superseded): 6" in out
    assert "turns: 9 asked, 9 answered (3 cut short by a barge-in), 0 unanswered" in out
    assert "FAILED: 6 stale responses" in out


async def test_protocol_violations_and_socket_errors_fail_the_run() -> None:
    frames = ['{"response_type": "mystery"}']
    async with handwritten_llm(extra_frames=frames, fail_at=2, failure="close_1011") as llm:
        status, out, _ = await llm_test(llm.url, "--calls", "2")
    assert status == 1
    assert "ended: 2 error_llm_websocket_runtime" in out
    assert (
        "  error_llm_websocket_runtime, e.g.: "
        "the server closed the socket with code 1011: handler failed"
    ) in out
    assert "  2 x unknown response_type, e.g. response_type 'mystery'" in out
    # Each conversation's request 2 got no answer: the server closed instead.
    assert (
        "FAILED: 2 conversations ended with error_llm_websocket_runtime; "
        "2 turns unanswered; 2 protocol violations"
    ) in out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_ctrl_c_prints_what_was_measured_and_exits_130(tmp_path: Path) -> None:
    script = tmp_path / "conversation.json"
    script.write_text(json.dumps({"turns": ["Hi", {"silence": 600}]}))
    async with handwritten_llm() as llm:
        process = await start_llm_test(llm.url, "--calls", "4", "--script", str(script))

        # Wait until every conversation has been answered once, then press Ctrl-C.
        async def answered() -> None:
            while sum(llm.types(c).count("response_required") for c in llm.received) < 4:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(answered(), SAFETY_TIMEOUT)
        process.send_signal(signal.SIGINT)
        out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), SAFETY_TIMEOUT)
    out, err = out_bytes.decode(), err_bytes.decode()
    assert process.returncode == 130
    assert err.strip() == "aioretell llm-test: interrupted"
    assert "Traceback" not in out + err
    assert "4 conversations with" in out
    assert "ended: 4 (still running when stopped)" in out
    assert "interrupted: these are the numbers measured until Ctrl-C" in out


# -- against the README's example server, started the way the README says --------------------


async def wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    async def attempt() -> None:
        while True:
            assert process.returncode is None, "the example server exited"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return

    await asyncio.wait_for(attempt(), SAFETY_TIMEOUT)


EXAMPLE_SERVERS = {
    "aiohttp": ["examples/llm_echo_server.py", "--port"],
    "fastapi": ["-m", "uvicorn", "--app-dir", "examples", "llm_echo_fastapi:app", "--port"],
}


@pytest.mark.parametrize("adapter", EXAMPLE_SERVERS)
async def test_20_conversations_with_the_example_server(adapter: str) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        *EXAMPLE_SERVERS[adapter],
        str(port),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        await wait_listening(port, server)
        status, out, err = await llm_test(f"ws://127.0.0.1:{port}/llm-websocket", "--calls", "20")
    finally:
        server.send_signal(signal.SIGINT)
        await asyncio.wait_for(server.wait(), SAFETY_TIMEOUT)
    assert status == 0, out + err
    assert "ended: 20 user_hangup" in out
    # The default script: the greeting and 4 user turns each, one cut short by a barge-in.
    assert "turns: 100 asked, 100 answered (20 cut short by a barge-in), 0 unanswered" in out
    assert "stale responses (sent after being superseded): 0" in out
    assert "protocol violations: 0" in out
    assert "  Agent: Hi! I repeat whatever you say. Say goodbye to hang up." in out


async def test_a_failure_of_our_own_ends_that_conversation_not_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = RetellSide._on_config

    async def broken(self: RetellSide, config: object) -> None:
        if self.result.call_id.endswith("00001"):
            raise RuntimeError("a bug")
        await real(self, config)  # type: ignore[arg-type]

    monkeypatch.setattr(RetellSide, "_on_config", broken)
    async with handwritten_llm() as llm:
        results = await run_conversations(llm.url, DEFAULT_SCRIPT, calls=3)
    assert [r.disconnection_reason for r in results] == [
        "user_hangup",
        "error_retell",
        "user_hangup",
    ]
    assert results[1].detail is not None and "RuntimeError: a bug" in results[1].detail
    report = LLMTestReport.of(results)
    assert not report.passed
    assert report.problems()[0] == "1 conversation ended with error_retell"


async def test_a_reader_that_goes_away_is_no_error() -> None:
    """``aioretell llm-test URL | head -1``: the report stops quietly when the pipe closes."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read the report
    async with handwritten_llm() as llm:
        process = await start_llm_test(llm.url, stdout=write_end)
        os.close(write_end)
        _, err = await asyncio.wait_for(process.communicate(), SAFETY_TIMEOUT)
    assert err.decode() == ""
    assert process.returncode == 0
