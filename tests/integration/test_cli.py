"""The command line: the demo against its in-process emulator, and ``aioretell emulator``."""

from __future__ import annotations

import asyncio
import re
import socket
import sys

import pytest

from aioretell import AsyncRetell
from aioretell.demo import run_demo


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
